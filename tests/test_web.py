"""Web pages: fetched from a real HTTP server on 127.0.0.1, with redirects, timeouts, content types and size caps;
the app's address rules (no loopback, private or link-local address, also after a redirect or a DNS answer)."""

from __future__ import annotations

import ipaddress
import json
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import formats
import pytest
from conftest import cli_env

from rag.library import Library
from rag.pipeline import Pipeline
from rag.web import fetch_documents, public_only

MB = 10_000_000
PAGE = (b"<html><head><title>Vector search</title></head><body><h1>Vector search</h1>"
        b"<p>Milvus builds an HNSW graph over the vectors it stores.</p></body></html>")


class Handler(BaseHTTPRequestHandler):
    routes: dict[str, tuple[int, dict[str, str], bytes]] = {}

    def do_GET(self) -> None:  # noqa: N802 - the http.server name
        if self.path == "/slow":
            time.sleep(3)
        status, headers, body = self.routes.get(self.path, (404, {"Content-Type": "text/plain"}, b"no such page"))
        self.send_response(status)
        for k, v in headers.items():
            self.send_header(k, v)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        try:
            self.wfile.write(body)
        except OSError:  # the client gave up (size cap, timeout)
            pass

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    pdf = formats.pdf(tmp_path_factory.mktemp("site") / "paper.pdf", ["Page one of the paper.", "Page two of it."])
    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    base = f"http://127.0.0.1:{server.server_address[1]}"
    Handler.routes = {
        "/page.html": (200, {"Content-Type": "text/html; charset=utf-8"}, PAGE),
        "/notes.txt": (200, {"Content-Type": "text/plain"}, b"Plain notes about index building."),
        "/paper.pdf": (200, {"Content-Type": "application/pdf"}, pdf.read_bytes()),
        "/moved": (301, {"Location": "/page.html"}, b""),
        "/loop": (302, {"Location": "/loop"}, b""),
        "/to-file": (302, {"Location": "file:///etc/passwd"}, b""),
        "/image.png": (200, {"Content-Type": "image/png"}, b"\x89PNG\r\n\x1a\n" + bytes(100)),
        "/big.html": (200, {"Content-Type": "text/html"}, b"<p>" + b"x" * 50_000 + b"</p>"),
        "/slow": (200, {"Content-Type": "text/html"}, PAGE),
    }
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield base
    server.shutdown()


def fetch_all(urls: list[str], **options: object) -> dict[str, tuple[list, str]]:
    values = {"timeout_s": 10.0, "max_bytes": MB, "allow_private": True, **options}
    return {url: (docs, reason) for url, docs, reason in fetch_documents(urls, **values)}


def test_pages_text_and_documents_are_fetched_with_the_url_as_source(site: str) -> None:
    got = fetch_all([f"{site}/page.html", f"{site}/notes.txt", f"{site}/paper.pdf", f"{site}/moved"])
    page_docs, reason = got[f"{site}/page.html"]
    assert reason == "" and page_docs[0].source == f"{site}/page.html"
    assert page_docs[0].text.startswith("# Vector search") and "HNSW graph" in page_docs[0].text
    assert got[f"{site}/notes.txt"][0][0].text == "Plain notes about index building."
    pdf_docs, _ = got[f"{site}/paper.pdf"]
    assert [d.source for d in pdf_docs] == [f"{site}/paper.pdf#page=1", f"{site}/paper.pdf#page=2"]
    assert {d.origin for d in pdf_docs} == {f"{site}/paper.pdf"}
    moved, reason = got[f"{site}/moved"]  # a redirect is followed; the source is the URL asked for
    assert reason == "" and "HNSW graph" in moved[0].text and moved[0].source == f"{site}/moved"


def test_bad_urls_are_each_named_with_a_reason(site: str) -> None:
    got = fetch_all([f"{site}/loop", f"{site}/to-file", f"{site}/image.png", f"{site}/big.html", f"{site}/missing",
                     "file:///etc/passwd", "ftp://example.org/x", "http://no-such-host.invalid/"],
                    max_bytes=20_000)
    reasons = {url: reason for url, (docs, reason) in got.items() if not docs}
    assert len(reasons) == len(got)
    assert "more than 5 redirects" in reasons[f"{site}/loop"]
    assert "only http:// and https://" in reasons[f"{site}/to-file"]
    assert "image/png" in reasons[f"{site}/image.png"]
    assert "MB limit (RAG_MAX_FILE_MB)" in reasons[f"{site}/big.html"]
    assert "HTTP 404" in reasons[f"{site}/missing"]
    assert "only http:// and https://" in reasons["file:///etc/passwd"]
    assert "only http:// and https://" in reasons["ftp://example.org/x"]
    assert "could not be resolved" in reasons["http://no-such-host.invalid/"]


@pytest.mark.slow
def test_a_page_past_the_timeout_is_skipped(site: str) -> None:
    got = fetch_all([f"{site}/slow", f"{site}/page.html"], timeout_s=0.5)  # the server waits 3 s before answering
    assert "within 0.5 s (RAG_FETCH_TIMEOUT_S)" in got[f"{site}/slow"][1]
    assert got[f"{site}/page.html"][1] == ""


def test_the_app_refuses_loopback_private_and_link_local_addresses(site: str) -> None:
    port = site.rsplit(":", 1)[1]
    urls = [f"{site}/page.html", f"http://localhost:{port}/page.html", "http://169.254.169.254/latest/meta-data/",
            "http://10.0.0.1/", "http://192.168.1.1/", "http://[::1]/", "http://0.0.0.0/"]
    got = fetch_all(urls, allow_private=False)
    for url in urls:  # refused before any connection: no traffic leaves for these addresses
        docs, reason = got[url]
        assert docs == [] and "public addresses only" in reason and "RAG_ALLOW_PRIVATE_URLS" in reason, url
    assert "localhost resolves to 127.0.0.1" in got[f"http://localhost:{port}/page.html"][1]  # the DNS answer counts


def test_a_redirect_is_checked_again(site: str) -> None:
    """The first hop is allowed, the redirect's target is not: the policy is asked again for every hop."""
    port = site.rsplit(":", 1)[1]
    Handler.routes["/away"] = (302, {"Location": f"http://127.0.0.2:{port}/page.html"}, b"")

    def only_first_hop(address: ipaddress.IPv4Address | ipaddress.IPv6Address) -> bool:
        return str(address) == "127.0.0.1"

    [(_, docs, reason)] = fetch_documents([f"{site}/away"], 10.0, MB, False, allowed=only_first_hop)
    assert docs == [] and "127.0.0.2" in reason and "public addresses only" in reason


def test_public_only() -> None:
    assert public_only(ipaddress.ip_address("93.184.216.34"))
    for private in ("127.0.0.1", "10.1.2.3", "172.16.0.1", "192.168.0.1", "169.254.169.254", "::1", "fe80::1",
                    "fc00::1", "::ffff:127.0.0.1", "0.0.0.0", "224.0.0.1", "100.64.0.1"):
        assert not public_only(ipaddress.ip_address(private)), private


def test_cli_ingests_a_loopback_url_and_the_app_library_refuses_it(site: str, tiny_models, tmp_path: Path,
                                                                   make_settings) -> None:
    proc = subprocess.run([sys.executable, "-m", "rag", "ingest", f"{site}/page.html", f"{site}/image.png", "--json"],
                          env=cli_env(*tiny_models), cwd=tmp_path, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    report = json.loads(proc.stdout)
    assert report["files"] == 1 and report["chunks_added"] >= 1
    assert [s["path"] for s in report["skipped_files"]] == [f"{site}/image.png"]
    assert f"skipped {site}/image.png: its content type is image/png" in proc.stderr

    library = Library(Pipeline(make_settings(data_dir=str(tmp_path / "data"))))
    with pytest.raises(Exception, match="public addresses only"):
        library.add_urls([f"{site}/page.html"])
    allowed = Library(Pipeline(make_settings(data_dir=str(tmp_path / "data2"), allow_private_urls=True)))
    report = allowed.add_urls([f"{site}/page.html", ""])
    assert report.files == 1 and (tmp_path / "data2" / "urls.txt").read_text() == f"{site}/page.html\n"
    assert allowed.pipeline.dense("HNSW graph", 5).candidates[0].source == f"{site}/page.html"
    again = allowed.add_urls([f"{site}/page.html"])  # the same URL fetched again: the same document
    assert [(d.source, d.status) for d in again.documents] == [(f"{site}/page.html", "unchanged")]
    assert allowed.remove([f"{site}/page.html"]).removed == {f"{site}/page.html": report.chunks_added}
    assert (tmp_path / "data2" / "urls.txt").read_text() == ""  # so that a rebuild does not fetch it again
    assert allowed.documents() == []
