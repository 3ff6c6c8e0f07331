"""Fetch web pages (and documents at a URL) for indexing, with the URL as their source.

``fetch_documents(urls, ...)`` yields each URL with its ``Document``s or the reason it was skipped. HTML becomes
Markdown through ``rag.convert`` (as do PDF, Office and EPUB files served over HTTP); ``text/plain`` and
``text/markdown`` are taken as they are; other content types are refused with their type named.

Guards, for an app whose visitors type URLs (server-side request forgery): only ``http``/``https``; every host name
is resolved here and each address it answers with is checked, then the connection goes to that checked address
(so a second DNS answer cannot swap it); redirects are followed by hand, at most ``MAX_REDIRECTS``, each one checked
again. Unless ``allow_private`` is set, loopback, private, link-local (cloud metadata at 169.254.169.254), multicast,
reserved and unspecified addresses are refused. Each request has a socket timeout and a total deadline; a body
larger than ``max_bytes`` is refused, whatever ``Content-Length`` said.

Leaves out: JavaScript-rendered pages, logins and cookies, robots.txt, and crawling links (one URL is one page).
"""

from __future__ import annotations

import http.client
import ipaddress
import socket
import ssl
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from urllib.parse import urljoin, urlsplit

from rag import convert
from rag.types import Document

MAX_REDIRECTS = 5
USER_AGENT = "ask-your-documents/0.1 (+rag ingest)"
_TEXT_TYPES = ("text/plain", "text/markdown", "text/x-markdown")
_CONVERTED_TYPES = {"text/html": ".html", "application/xhtml+xml": ".html", "application/pdf": ".pdf",
                    "text/csv": ".csv", "application/epub+zip": ".epub",
                    "application/vnd.openxmlformats-officedocument.wordprocessingml.document": ".docx",
                    "application/vnd.openxmlformats-officedocument.presentationml.presentation": ".pptx",
                    "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet": ".xlsx"}
Policy = Callable[[ipaddress.IPv4Address | ipaddress.IPv6Address], bool]  # may this address be fetched?


class FetchError(Exception):
    """Why one URL was not fetched (becomes its skip reason)."""


def is_url(text: str) -> bool:
    return "://" in text[:12]


def public_only(address: ipaddress.IPv4Address | ipaddress.IPv6Address) -> bool:
    """Only addresses on the public internet (no loopback, private, link-local, multicast, reserved or unspecified)."""
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped:
        address = address.ipv4_mapped
    return address.is_global and not address.is_multicast


def any_address(address: ipaddress.IPv4Address | ipaddress.IPv6Address) -> bool:
    return True


def resolve(host: str, port: int, allowed: Policy) -> str:
    """The first address of ``host`` to connect to; every address it resolves to must pass ``allowed``."""
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (socket.gaierror, UnicodeError) as exc:
        raise FetchError(f"the host {host!r} could not be resolved ({exc})") from None
    addresses = [ipaddress.ip_address(info[4][0].split("%")[0]) for info in infos]
    refused = [a for a in addresses if not allowed(a)]
    if refused or not addresses:
        raise FetchError(f"{host} resolves to {refused[0] if refused else 'nothing'}, a loopback, private or "
                         "link-local address; the app fetches public addresses only (RAG_ALLOW_PRIVATE_URLS=true "
                         "allows them)")
    return str(addresses[0])


class _Pinned(http.client.HTTPSConnection):
    """A connection to an address checked beforehand, with the URL's host name for TLS (SNI, certificate) and the
    Host header; plain HTTP unless ``tls``."""

    def __init__(self, host: str, port: int, address: str, timeout: float, tls: bool) -> None:
        super().__init__(host, port, timeout=timeout, context=ssl.create_default_context())
        self.address, self.tls = address, tls

    def connect(self) -> None:
        sock = socket.create_connection((self.address, self.port), self.timeout)
        self.sock = self._context.wrap_socket(sock, server_hostname=self.host) if self.tls else sock


def fetch(url: str, timeout_s: float, max_bytes: int, allowed: Policy) -> tuple[str, str, bytes]:
    """(final URL, content type, body) of ``url``, following checked redirects."""
    deadline = time.monotonic() + timeout_s
    for _ in range(MAX_REDIRECTS + 1):
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https"):
            raise FetchError(f"only http:// and https:// URLs are fetched, not {parts.scheme or 'this'}://")
        if not parts.hostname:
            raise FetchError("the URL has no host")
        port = parts.port or (443 if parts.scheme == "https" else 80)
        address = resolve(parts.hostname, port, allowed)
        conn = _Pinned(parts.hostname, port, address, max(0.1, deadline - time.monotonic()), parts.scheme == "https")
        try:
            conn.request("GET", (parts.path or "/") + (f"?{parts.query}" if parts.query else ""),
                         headers={"User-Agent": USER_AGENT, "Accept": "text/html,text/plain;q=0.9,*/*;q=0.5"})
            response = conn.getresponse()
            if response.status in (301, 302, 303, 307, 308):
                location = response.getheader("Location")
                if not location:
                    raise FetchError(f"HTTP {response.status} without a Location to follow")
                url = urljoin(url, location)
                continue
            if response.status != 200:
                raise FetchError(f"HTTP {response.status} {response.reason}")
            length = response.getheader("Content-Length")
            if length and length.isdigit() and int(length) > max_bytes:
                raise FetchError(f"larger than the {max_bytes / 1e6:g} MB limit (RAG_MAX_FILE_MB)")
            body = bytearray()
            while chunk := response.read(65536):
                body += chunk
                if len(body) > max_bytes:
                    raise FetchError(f"larger than the {max_bytes / 1e6:g} MB limit (RAG_MAX_FILE_MB)")
                if time.monotonic() > deadline:
                    raise FetchError(f"took longer than {timeout_s:g} s (RAG_FETCH_TIMEOUT_S)")
            kind = (response.getheader("Content-Type") or "").split(";")[0].strip().lower()
            return url, kind, bytes(body)
        except TimeoutError:
            raise FetchError(f"no answer within {timeout_s:g} s (RAG_FETCH_TIMEOUT_S)") from None
        except ssl.SSLError as exc:
            raise FetchError(f"TLS failed ({exc.reason or exc})") from None
        except (OSError, http.client.HTTPException) as exc:
            raise FetchError(f"could not be fetched ({type(exc).__name__}: {exc})") from None
        finally:
            conn.close()
    raise FetchError(f"more than {MAX_REDIRECTS} redirects")


def fetch_documents(
    urls: Sequence[str], timeout_s: float, max_bytes: int, allow_private: bool, convert_timeout_s: float = 60.0,
    memory_mb: int = 2048, allowed: Policy | None = None,
) -> Iterator[tuple[str, list[Document], str]]:
    """Each URL with its documents (source: the URL, ``#page=N`` for a PDF's pages), or with why it was skipped, in
    order. Pages that need converting are converted together, by one converter worker (``rag.convert``)."""
    policy = allowed or (any_address if allow_private else public_only)
    results: list[tuple[str, list[Document], str]] = []
    to_convert: dict[Path, int] = {}  # a fetched body's file -> its place in ``results``
    with tempfile.TemporaryDirectory(prefix="rag-web-") as tmp:
        for n, url in enumerate(urls):
            results.append((url, [], ""))
            try:
                _, kind, body = fetch(url, timeout_s, max_bytes, policy)
            except FetchError as exc:
                results[n] = (url, [], str(exc))
                continue
            if kind in _TEXT_TYPES:
                text = body.decode("utf-8", errors="replace")
                results[n] = (url, [Document(url, text)], "") if text.strip() else (url, [], "an empty page")
            elif kind not in _CONVERTED_TYPES:
                why = f"its content type is {kind or 'not given'}, not a page or document that is read"
                results[n] = (url, [], why)
            else:
                path = Path(tmp) / f"page{n}{_CONVERTED_TYPES[kind]}"
                path.write_bytes(body)
                to_convert[path] = n
        for path, docs, reason in convert.convert_files(list(to_convert), convert_timeout_s, memory_mb, max_bytes):
            url = urls[to_convert[path]]
            moved = [Document(d.source.replace(str(path), url, 1), d.text, url if d.file else "") for d in docs]
            results[to_convert[path]] = (url, moved, reason)
    yield from results
