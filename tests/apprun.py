"""``python app.py`` as a subprocess for the browser, secrets, access, load and restart tests."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

from conftest import free_port, wait_for_port

from rag.settings import ROOT


def start_app(
    tmp: Path, models: tuple[Path, Path], docs: Path, llm_url: str, key: str, env: dict[str, str] | None = None,
    auth: tuple[str, str] | None = None, log: str = "app.log",
) -> tuple[str, subprocess.Popen]:
    """The app with the tiny models, ``docs`` as RAG_DOCS, the loopback LLM and a Lite file in ``tmp``; returns
    (url, process) once the index answers. ``env`` adds variables; ``auth`` is the login to wait with."""
    port = free_port()
    full = {k: v for k, v in os.environ.items() if not k.startswith(("RAG_", "OPENAI_", "GRADIO_"))}
    full.update({"HF_HUB_OFFLINE": "1", "GRADIO_SERVER_NAME": "127.0.0.1", "GRADIO_SERVER_PORT": str(port),
                 "GRADIO_ANALYTICS_ENABLED": "False", "RAG_DEVICE": "cpu", "RAG_MILVUS_URI": str(tmp / "m.db"),
                 "RAG_DATA_DIR": str(tmp / "data"), "RAG_EMBEDDING_MODEL": str(models[0]),
                 "RAG_RERANKER_MODEL": str(models[1]), "RAG_DOCS": str(docs), "OPENAI_API_KEY": key,
                 "OPENAI_BASE_URL": llm_url, **(env or {})})
    out = open(tmp / log, "w")  # noqa: SIM115 - closed with the process
    proc = subprocess.Popen([sys.executable, str(ROOT / "app.py")], env=full, cwd=tmp, stdout=out,
                            stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}/"
    try:
        wait_for_port(port, proc, seconds=120)
        wait_until_indexed(url, auth)
    except BaseException:
        stop(proc)
        raise
    return url, proc


def wait_until_indexed(url: str, auth: tuple[str, str] | None = None, seconds: float = 180) -> None:
    from gradio_client import Client

    deadline = time.monotonic() + seconds
    while True:
        try:
            Client(url, verbose=False, auth=auth).predict("ready?", 3, 3, api_name="/search")
            return
        except Exception:
            if time.monotonic() > deadline:
                raise
            time.sleep(1)


def stop(proc: subprocess.Popen) -> None:
    proc.terminate()
    try:
        proc.wait(15)
    except subprocess.TimeoutExpired:
        proc.kill()
