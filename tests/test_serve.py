"""A real OpenAI-protocol peer that nobody on this team wrote: ``transformers serve`` with a tiny random Qwen3 chat
model built here, driven by ``rag ask``. It differs from tests/openai_server.py where real servers differ: usage on
the finishing chunk, no ``[DONE]``, ``finish_reason: "length"``, FastAPI-style ``{"detail": ...}`` errors."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
from conftest import cli_env, free_port

from rag.random_models import build_chat_model

pytestmark = pytest.mark.slow
QUESTION = "Where does Milvus store data?"


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, str]]:
    """(base URL, model name) of ``transformers serve`` on 127.0.0.1, pinned to a tiny random chat model."""
    folder = str(build_chat_model(tmp_path_factory.mktemp("chat") / "tiny-chat", ["Milvus stores data."] * 20))
    port = free_port()
    exe = shutil.which("transformers", path=str(Path(sys.executable).parent)) or "transformers"
    log = open(tmp_path_factory.mktemp("serve") / "serve.log", "w+")  # noqa: SIM115 - closed below
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"}
    proc = subprocess.Popen([exe, "serve", folder, "--host", "127.0.0.1", "--port", str(port), "--device", "cpu",
                             "--dtype", "float32"], stdout=log, stderr=subprocess.STDOUT, env=env)
    url = f"http://127.0.0.1:{port}/v1"
    try:
        deadline = time.monotonic() + 240
        while True:  # up once it lists the model (it loads the pinned model before answering)
            try:
                with urllib.request.urlopen(f"{url}/models", timeout=2) as r:
                    if folder in r.read().decode():
                        break
            except OSError:
                pass
            if proc.poll() is not None or time.monotonic() > deadline:
                log.seek(0)
                raise AssertionError(f"transformers serve did not come up:\n{log.read()[-3000:]}")
            time.sleep(0.5)
        yield url, folder
    finally:
        proc.terminate()
        proc.wait(30)
        log.close()


@pytest.fixture(scope="module")
def indexed(tmp_path_factory: pytest.TempPathFactory, tiny_models, faq_dir: Path) -> Path:
    """A folder whose data/milvus.db holds the FAQ, indexed by ``rag ingest`` with the tiny models."""
    cwd = tmp_path_factory.mktemp("cwd")
    proc = subprocess.run([sys.executable, "-m", "rag", "ingest", str(faq_dir)], env=cli_env(*tiny_models), cwd=cwd,
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    return cwd


def ask(args: list[str], served: tuple[str, str], tiny_models, cwd: Path, **extra: str):
    url, model = served
    env = cli_env(*tiny_models, **{"OPENAI_BASE_URL": url, "RAG_LLM_MODEL": model, "RAG_MAX_TOKENS": "12", **extra})
    return subprocess.run([sys.executable, "-m", "rag", "ask", *args], env=env, cwd=cwd, capture_output=True,
                          text=True, timeout=300)


def test_rag_ask_streams_an_answer_from_transformers_serve(served, tiny_models, indexed: Path) -> None:
    proc = ask([QUESTION, "--json"], served, tiny_models, indexed)
    assert proc.returncode == 0, proc.stderr
    reply = json.loads(proc.stdout)
    assert reply["generated"] is True and reply["error"] is None and len(reply["sources"]) == 3
    assert reply["timings"]["first_token_s"] is not None  # streamed: the first delta came before the end
    # a random model does not stop by itself: transformers serve ends the stream with finish_reason "length",
    # which the answer says, under the text that came
    assert reply["finish_reason"] == "length"
    text, notice = reply["answer"].rsplit("\n\n", 1)
    assert text.strip()
    assert notice == "⚠ The answer reached the length cap of 12 tokens (RAG_MAX_TOKENS) and stops here."

    plain = ask([QUESTION], served, tiny_models, indexed)
    assert plain.returncode == 0 and plain.stderr == "", plain.stderr
    assert plain.stdout.startswith(text) and "RAG_MAX_TOKENS" in plain.stdout and "\nSources:\n  [1] " in plain.stdout


def test_its_errors_become_one_line(served, tiny_models, indexed: Path) -> None:
    # transformers serve answers 400 {"detail": "..."} (FastAPI's shape, not OpenAI's {"error": {"message"}})
    proc = ask([QUESTION], served, tiny_models, indexed, RAG_LLM_MODEL="no-such-model")
    assert proc.returncode == 2
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: The LLM server at ") and "(400)" in lines[0], proc.stderr
    assert "requested 'no-such-model'" in lines[0] and "Traceback" not in proc.stderr


def test_the_app_answers_through_transformers_serve(served, tiny_models, faq_dir: Path, tmp_path: Path) -> None:
    from apprun import start_app, stop
    from gradio_client import Client

    url, model = served
    app_url, proc = start_app(tmp_path, tiny_models, faq_dir, url, "", env={"RAG_LLM_MODEL": model,
                                                                          "RAG_MAX_TOKENS": "12"})
    try:
        reply = Client(app_url, verbose=False).predict(QUESTION, api_name="/ask")
        assert reply["generated"] is True and reply["error"] is None and reply["finish_reason"] == "length"
        assert reply["answer"].endswith("(RAG_MAX_TOKENS) and stops here.") and len(reply["sources"]) == 3
    finally:
        stop(proc)
