"""A planted OPENAI_API_KEY must not appear in logs, the page, /config, API responses or error messages."""

from __future__ import annotations

import urllib.request
from pathlib import Path

import pytest
from apprun import start_app, stop
from openai_server import FakeOpenAI, Reply

KEY = "sk-PLANTED-9f8e7d6c5b4a39281706"

pytestmark = pytest.mark.slow


def test_the_key_never_leaks(tiny_models, faq_dir: Path, tmp_path: Path) -> None:
    from gradio_client import Client

    with FakeOpenAI() as server:
        url, proc = start_app(tmp_path, tiny_models, faq_dir, server.url, KEY)
        try:
            client = Client(url, verbose=False)
            seen = [str(client.predict("Where does Milvus store data?", api_name="/ask"))]
            # The server echoes the key in its 401 message, as OpenAI's does.
            server.enqueue(Reply(status=401, error=f"Incorrect API key provided: {KEY}"))
            failed = client.predict("Where does Milvus store data?", api_name="/ask")
            assert "401" in failed["error"]
            seen.append(str(failed))
            server.enqueue(Reply(status=500, error=f"upstream said {KEY}"))
            seen.append(str(client.predict("What is etcd?", api_name="/ask")))
            for path in ("", "config", "gradio_api/info", "gradio_api/openapi.json"):
                try:
                    with urllib.request.urlopen(url + path, timeout=30) as r:
                        seen.append(r.read().decode("utf-8", "replace"))
                except OSError as exc:  # an endpoint this Gradio does not have
                    seen.append(str(exc))
            assert server.requests and all(r["headers"]["authorization"] == f"Bearer {KEY}" for r in server.requests)
        finally:
            stop(proc)
    seen.append((tmp_path / "app.log").read_text())
    for text in seen:
        assert KEY not in text
    assert "Incorrect API key" not in seen[1]
