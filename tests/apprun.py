"""``python app.py`` as a subprocess for the browser, secrets, access, load and restart tests."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

from conftest import free_port, wait_for_port

from rag.settings import ROOT


def start_app(
    tmp: Path, models: tuple[Path, Path], docs: Path, llm_url: str, key: str, env: dict[str, str] | None = None,
    auth: tuple[str, str] | None = None, log: str = "app.log", wait: bool = True, port: int | None = None,
) -> tuple[str, subprocess.Popen]:
    """The app with the tiny models, ``docs`` as RAG_DOCS, the loopback LLM and a Lite file in ``tmp``; returns
    (url, process) once the index answers (at once without ``wait``). ``env`` adds variables; ``auth`` is the
    login to wait with; the app's output goes to ``tmp/log``; ``port`` is a free one unless given (a restart that a
    browser's storage should find again needs the same origin)."""
    port = port or free_port()
    full = {k: v for k, v in os.environ.items() if not k.startswith(("RAG_", "OPENAI_", "GRADIO_"))}
    full.update({"HF_HUB_OFFLINE": "1", "GRADIO_SERVER_NAME": "127.0.0.1", "GRADIO_SERVER_PORT": str(port),
                 "GRADIO_ANALYTICS_ENABLED": "False", "RAG_DEVICE": "cpu", "RAG_MILVUS_URI": str(tmp / "m.db"),
                 "RAG_DATA_DIR": str(tmp / "data"), "RAG_EMBEDDING_MODEL": str(models[0]),
                 "RAG_RERANKER_MODEL": str(models[1]), "RAG_DOCS": str(docs), "OPENAI_API_KEY": key,
                 "OPENAI_BASE_URL": llm_url, **(env or {})})
    out = open(tmp / log, "w")  # noqa: SIM115 - closed with the process
    proc = subprocess.Popen([sys.executable, str(ROOT / "app.py")], env=full, cwd=tmp, stdout=out,
                            stderr=subprocess.STDOUT)
    proc.log = tmp / log  # type: ignore[attr-defined]  # for stacks_and_log()
    url = f"http://127.0.0.1:{port}/"
    if not wait:
        return url, proc
    try:
        wait_for_port(port, proc, seconds=120)
        wait_until_indexed(url, auth)
    except BaseException:  # a failure, the test's time limit, Ctrl-C: say where the app was, then stop it
        print(stacks_and_log(proc), file=sys.stderr)
        stop(proc)
        raise
    return url, proc


def wait_until_indexed(url: str, auth: tuple[str, str] | None = None, seconds: float = 180) -> None:
    from gradio_client import Client

    deadline = time.monotonic() + seconds
    while True:
        try:  # a search that never ends fails here too, instead of waiting for ever
            job = Client(url, verbose=False, auth=auth).submit("ready?", 3, 3, api_name="/search")
            job.result(timeout=max(1.0, deadline - time.monotonic()))
            return
        except Exception:
            if time.monotonic() > deadline:
                raise
            time.sleep(1)


def stop(proc: subprocess.Popen) -> int | None:
    """SIGTERM, as ``docker stop`` sends it; after 15 s its thread stacks are printed and it gets SIGKILL. Returns
    the exit code."""
    proc.terminate()
    try:
        return proc.wait(15)
    except subprocess.TimeoutExpired:
        print(stacks_and_log(proc), file=sys.stderr)
        proc.kill()
        return proc.wait()


def stacks_and_log(proc: subprocess.Popen) -> str:
    """The end of the app's log, with every thread's stack in it while the app still runs (SIGUSR1: the app's
    faulthandler writes them): what a failure message needs to say where the app was stuck."""
    if proc.poll() is None:
        proc.send_signal(signal.SIGUSR1)
        time.sleep(1)
    log = getattr(proc, "log", None)
    return log.read_text()[-8000:] if log and log.exists() else "(no log)"


def wait_for_line(path: Path, pattern: str, proc: subprocess.Popen, seconds: float = 180) -> re.Match[str]:
    """The first match of ``pattern`` in the log at ``path``, waiting for it to be written."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if found := re.search(pattern, path.read_text() if path.exists() else ""):
            return found
        if proc.poll() is not None:
            break
        time.sleep(0.05)
    raise AssertionError(f"{pattern!r} did not appear in {path}:\n{stacks_and_log(proc)}")


def sign_in(browser, url: str, user: str, password: str):  # noqa: ANN001, ANN201 - Playwright's Browser and Page
    """A new browser context's page, signed in to the app's login form (RAG_AUTH) as ``user``."""
    page = browser.new_context(viewport={"width": 1280, "height": 900}).new_page()
    page.goto(url)
    page.get_by_label("username").fill(user)
    page.get_by_label("password").fill(password)
    page.get_by_role("button", name="Login").click()
    return page
