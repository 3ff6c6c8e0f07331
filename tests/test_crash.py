"""Crashes in the middle of work: ``kill -9`` during ingest, and a restart of the app that must not embed again."""

from __future__ import annotations

import json
import random
import re
import signal
import subprocess
import sys
from pathlib import Path

import pytest
from apprun import start_app, stop, wait_for_line
from conftest import cli_env
from openai_server import FakeOpenAI

from rag.store import MilvusStore

pytestmark = pytest.mark.slow
WORDS = "milvus vector index search collection segment shard replica query node proxy flush compaction".split()


def write_corpus(folder: Path, files: int = 12, sections: int = 100, seed: int = 7) -> None:
    rng = random.Random(seed)
    folder.mkdir(exist_ok=True)
    for f in range(files):
        body = "".join(f"# Section {f}-{s}\n\n{' '.join(rng.choices(WORDS, k=50))}\n\n" for s in range(sections))
        (folder / f"doc{f}.md").write_text(body)


def kill_after(proc: subprocess.Popen, chunks: int) -> None:
    """SIGKILL ``proc`` (an ingest) once its progress bar says ``chunks`` or more are stored."""
    seen = b""
    while not (m := re.search(rb"\| *(\d+)/(\d+) ", seen[-200:])) or int(m[1]) < chunks:
        byte = proc.stderr.read(1)
        assert byte, f"ingest ended before it could be killed: {seen[-500:]!r}"
        seen += byte
    proc.send_signal(signal.SIGKILL)
    proc.wait(30)


def ingest(env: dict[str, str], uri: Path, docs: Path) -> subprocess.Popen:
    """``rag ingest docs`` run from the folder above it, so its documents are named ``docs/docN.md``: the names
    the app gives them as RAG_DOCS (relative to its parent), which the chunk ids include."""
    return subprocess.Popen([sys.executable, "-m", "rag", "ingest", docs.name, "--json"],
                            env={**env, "RAG_MILVUS_URI": str(uri)}, cwd=docs.parent, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE)


def stored_ids(uri: Path) -> list[str]:
    store = MilvusStore(str(uri), "documents")
    try:
        return [r["id"] for r in store.rows(["id"])]
    finally:
        store.close()


@pytest.fixture(scope="module")
def corpus(tmp_path_factory: pytest.TempPathFactory, tiny_models) -> tuple[Path, dict[str, str], set[str]]:
    """1,200 chunks of generated text, the CLI's environment, and the chunk ids of a clean, uninterrupted ingest."""
    tmp = tmp_path_factory.mktemp("crash")
    docs = tmp / "docs"
    write_corpus(docs)
    env = cli_env(*tiny_models)
    clean = ingest(env, tmp / "clean.db", docs)
    assert clean.wait(300) == 0, clean.stderr.read()
    ids = stored_ids(tmp / "clean.db")
    assert len(ids) == len(set(ids)) == 1200
    return docs, env, set(ids)


def test_kill_9_during_ingest_then_ingest_again_equals_a_clean_run(corpus, tmp_path: Path, tiny_models) -> None:
    docs, env, clean = corpus
    crashed = ingest(env, tmp_path / "crashed.db", docs)
    kill_after(crashed, 192)  # 3 batches of 64 stored
    partial = stored_ids(tmp_path / "crashed.db")
    assert 192 <= len(partial) < len(clean)  # the kill landed in the middle, and the stored batches survived it

    again = ingest(env, tmp_path / "crashed.db", docs)
    out, err = again.communicate(timeout=300)
    assert again.returncode == 0, err
    assert b'"chunks_skipped": %d' % len(partial) in out  # what survived was not embedded again
    after = stored_ids(tmp_path / "crashed.db")
    assert len(after) == len(set(after)) == len(clean) and set(after) == clean  # nothing duplicated or lost
    store = MilvusStore(str(tmp_path / "crashed.db"), "documents")
    assert store.recorded() == (str(tiny_models[0]), 64)
    store.close()


def test_kill_9_in_the_middle_of_a_replace_then_ingest_again_leaves_exactly_the_new_version(
    tiny_models, tmp_path: Path
) -> None:
    env, docs = cli_env(*tiny_models), tmp_path / "docs"
    write_corpus(docs, files=4, seed=1)
    first = ingest(env, tmp_path / "m.db", docs)
    assert first.wait(300) == 0, first.stderr.read()
    old = set(stored_ids(tmp_path / "m.db"))
    write_corpus(docs, files=4, seed=2)  # every section edited: each file is replaced as a whole
    fresh = ingest(env, tmp_path / "fresh.db", docs)  # what the edited files give on their own
    assert fresh.wait(300) == 0, fresh.stderr.read()
    new = set(stored_ids(tmp_path / "fresh.db"))
    assert len(old) == len(new) == 400 and not old & new

    crashed = ingest(env, tmp_path / "m.db", docs)
    kill_after(crashed, 192)
    middle = set(stored_ids(tmp_path / "m.db"))
    assert old <= middle and 192 <= len(middle & new) < 400  # never neither version: the old one is whole

    again = ingest(env, tmp_path / "m.db", docs)
    out, err = again.communicate(timeout=300)
    assert again.returncode == 0, err
    report = json.loads(out)
    assert {d["status"] for d in report["documents"]} == {"replaced"}
    assert report["chunks_skipped"] == len(middle & new)  # what the killed run stored is not embedded again
    assert set(stored_ids(tmp_path / "m.db")) == new  # exactly the new version answers


def test_the_app_killed_while_indexing_finishes_on_restart(corpus, tmp_path: Path, tiny_models) -> None:
    docs, _, clean = corpus
    with FakeOpenAI() as llm:
        _, proc = start_app(tmp_path, tiny_models, docs, llm.url, "sk-x", log="killed.log", wait=False)
        try:
            wait_for_line(tmp_path / "killed.log", r"default documents: (19[2-9]|[2-9]\d\d|1[01]\d\d)/1200", proc)
        finally:
            proc.send_signal(signal.SIGKILL)
            proc.wait(30)
        partial = stored_ids(tmp_path / "m.db")
        assert 192 <= len(partial) < len(clean)
        _, proc = start_app(tmp_path, tiny_models, docs, llm.url, "sk-x", log="restart.log")
        try:
            wait_for_line(tmp_path / "restart.log", r"ready in", proc)
        finally:
            stop(proc)
    log = (tmp_path / "restart.log").read_text()
    assert "an indexing job was interrupted" in log and f"{1200 - len(partial)} chunks embedded" in log, log
    after = stored_ids(tmp_path / "m.db")
    assert len(after) == len(set(after)) == len(clean) and set(after) == clean


def test_a_restart_keeps_the_index_and_embeds_nothing(tiny_models, faq_dir: Path, tmp_path: Path) -> None:
    with FakeOpenAI() as llm:
        url, proc = start_app(tmp_path, tiny_models, faq_dir, llm.url, "sk-x", log="first.log")
        assert stop(proc) == 0  # SIGTERM (docker stop) closes the app cleanly, as Ctrl-C does
        url, proc = start_app(tmp_path, tiny_models, faq_dir, llm.url, "sk-x", log="second.log")
        try:
            from gradio_client import Client

            found = Client(url, verbose=False).predict("Where does Milvus store data?", 10, 3, api_name="/search")
        finally:
            stop(proc)
    first, second = (tmp_path / "first.log").read_text(), (tmp_path / "second.log").read_text()
    embedded = re.search(r"indexed 5 files, (\d+) chunks embedded", first)
    assert embedded and int(embedded[1]) > 50, first
    assert f"the index holds {embedded[1]} chunks; nothing to embed" in second, second
    assert "embedded" not in second and "ready in" in second
    assert len(found["reranked"]) == 3
