"""``python -m rag ask`` end to end: MiniLM retrieval over the FAQ, the loopback OpenAI-protocol server, the CLI."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import cli_env
from openai_server import FakeOpenAI, Reply

from rag.settings import ROOT

KEY = "sk-test-PLANTED-KEY-abcdef"


@pytest.fixture(scope="module")
def env(tmp_path_factory, minilm: str, tiny_models, faq_dir: Path) -> dict[str, str]:
    """An environment whose collection already holds the FAQ, embedded with MiniLM."""
    env = cli_env(minilm, tiny_models[1], RAG_MILVUS_URI=str(tmp_path_factory.mktemp("ask") / "m.db"))
    proc = subprocess.run([sys.executable, "-m", "rag", "ingest", str(faq_dir / "*.md")], env=env,
                          capture_output=True, text=True, cwd=ROOT)
    assert proc.returncode == 0, proc.stderr
    return env


@pytest.fixture
def server():
    with FakeOpenAI() as s:
        yield s


def ask(env: dict[str, str], *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "rag", "ask", *args], env=env, capture_output=True, text=True,
                          cwd=ROOT, timeout=300)


def test_streams_an_answer_with_the_storage_passage(env, server: FakeOpenAI) -> None:
    proc = ask({**env, "OPENAI_API_KEY": KEY, "OPENAI_BASE_URL": server.url},
               "Where does Milvus store data?", "--candidates", "3")
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.startswith("Milvus stores inserted data in MinIO [1].")
    assert "Sources:" in proc.stdout and "Where does Milvus store data?" in proc.stdout
    body = server.requests[-1]["body"]
    assert body["stream"] is True
    assert "Inserted data, including vector data, scalar data, and collection-specific schema, are stored in " \
           "persistent storage as incremental log." in body["messages"][-1]["content"]
    assert KEY not in proc.stdout + proc.stderr


def test_json_output(env, server: FakeOpenAI) -> None:
    proc = ask({**env, "OPENAI_API_KEY": KEY, "OPENAI_BASE_URL": server.url}, "Where does Milvus store data?",
               "--json")
    assert proc.returncode == 0, proc.stderr
    out = json.loads(proc.stdout)
    assert out["answer"] == "Milvus stores inserted data in MinIO [1]." and len(out["sources"]) == 3
    assert {"embed_s", "search_s", "rerank_s", "first_token_s", "generate_s"} <= set(out["timings"])
    assert out["sources"][0]["rerank_rank"] == 1


def test_without_a_key_prints_the_passages_and_the_hint(env) -> None:
    proc = ask(env, "Where does Milvus store data?")
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.startswith("Generation is off: set OPENAI_API_KEY")
    assert proc.stdout.count("\n[") >= 3 and "product_faq.md" in proc.stdout


def test_401_gives_one_clear_line(env, server: FakeOpenAI) -> None:
    server.enqueue(Reply(status=401, error=f"Incorrect API key provided: {KEY}"))
    proc = ask({**env, "OPENAI_API_KEY": KEY, "OPENAI_BASE_URL": server.url}, "Where does Milvus store data?")
    assert proc.returncode != 0
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and "401" in lines[0] and "OPENAI_API_KEY" in lines[0] and "Traceback" not in proc.stderr
    assert KEY not in proc.stdout + proc.stderr


def test_cut_stream_keeps_the_text(env, server: FakeOpenAI, monkeypatch, capsys) -> None:
    from rag.cli import main

    server.enqueue(Reply(chunks=["Milvus keeps ", "data in ", "MinIO"], cut_after=2))
    for k, v in {**env, "OPENAI_API_KEY": KEY, "OPENAI_BASE_URL": server.url}.items():
        if k.startswith(("RAG_", "OPENAI_")):
            monkeypatch.setenv(k, v)
    assert main(["ask", "Where does Milvus store data?"]) == 0
    out, err = capsys.readouterr()
    assert out.startswith("Milvus keeps data in ") and "cut off" in err
