"""Several app replicas, one Milvus server, one inference server: the layout of the README's "From one machine to a
cluster". Two ``python app.py`` processes on 127.0.0.1 share a ``milvus-lite server`` and llama.cpp's servers; only
the one with RAG_INDEX_ON_START=true indexes the empty collection; a document uploaded through one is found through
the other; 16 users at once across both all get their own answers."""

from __future__ import annotations

import re
import time
from pathlib import Path

import pytest
from apprun import start_app, stop, wait_for_port, wait_until_indexed
from llama_server import serve_pair
from openai_server import FakeOpenAI, Reply

from rag.library import Library
from rag.load import default_questions, run_users
from rag.pipeline import Pipeline
from rag.store import MilvusStore


def test_an_empty_collection_is_left_to_the_replica_that_indexes(make_settings, faq_dir, tmp_path) -> None:
    settings = make_settings(index_on_start=False, docs=str(faq_dir), data_dir=str(tmp_path / "data"))
    waiting = Library(Pipeline(settings))
    waiting.start().join(120)
    assert waiting.pipeline.store.count() == 0 and waiting.status == ""
    indexing = Library(Pipeline(settings.replace(index_on_start=True)))
    indexing.start().join(120)
    assert indexing.pipeline.store.count() > 50


@pytest.mark.slow
@pytest.mark.timeout(600)
def test_two_replicas_one_milvus_one_inference_server(browser, tiny_models, faq_dir, milvus_server,
                                                      tmp_path: Path) -> None:
    collection = f"replicas_{int(time.time())}"
    with serve_pair(tiny_models, tmp_path) as (emb, rr), \
            FakeOpenAI(Reply(chunks=["From the passages [1]."], first_delay=0.2, echo=True)) as llm:
        shared = {"RAG_MILVUS_URI": milvus_server, "RAG_COLLECTION": collection, "RAG_EMBEDDING_URL": emb.url,
                  "RAG_RERANK_URL": rr.url, "RAG_HYBRID": "true"}  # BM25 finds the note's words; these
        # random-weight models' dense rankings are noise
        replicas = []
        for name, indexes in (("a", "true"), ("b", "false")):  # started together, on an empty collection
            (tmp_path / name).mkdir()
            replicas.append(start_app(tmp_path / name, tiny_models, faq_dir, llm.url, "sk-x", wait=False,
                                      env={**shared, "RAG_INDEX_ON_START": indexes}))
        try:
            for (url, proc) in replicas:
                wait_for_port(int(url.rsplit(":", 1)[1].strip("/")), proc, seconds=120)
            for (url, _) in replicas:
                wait_until_indexed(url)
            (url_a, proc_a), (url_b, proc_b) = replicas
            _wait_for(lambda: "indexed 5 files" in (tmp_path / "a" / "app.log").read_text(), 180)
            log_a, log_b = (tmp_path / "a" / "app.log").read_text(), (tmp_path / "b" / "app.log").read_text()
            indexed = int(re.search(r"indexed 5 files, (\d+) chunks", log_a).group(1))
            assert "another replica indexes it" in log_b and "indexed 5 files" not in log_b
            assert MilvusStore(milvus_server, collection).count() == indexed  # indexed once, no duplicates

            # a document uploaded through replica a is found through replica b
            note = tmp_path / "replica-note.md"
            note.write_text("# Replica note\n\nThe zebra protocol pins every shard to the lighthouse node.")
            page = browser.new_page()
            page.goto(url_a)
            page.get_by_role("tab", name="Documents").click()
            page.locator("input[type=file]").set_input_files([str(note)])
            page.wait_for_timeout(1000)
            page.locator("#add").click()
            page.locator("#report").get_by_text("Added").first.wait_for(timeout=60000)
            from gradio_client import Client

            found = Client(url_b, verbose=False).predict("zebra protocol lighthouse node", 20, 3, api_name="/search")
            assert any("zebra protocol" in h["text"] for h in found["candidates"])

            # 16 users at once, shared between the two replicas: all answered, none crossed
            report = run_users([url_a, url_b], default_questions(16))
            assert report.failed == 0 and report.cross_talk == 0, [r.error for r in report.results]
            assert all(r.answer.endswith(f"({r.question})") and len(r.sources) == 3 for r in report.results)
            print(f"\ntwo replicas, 16 users: p50 {report.p50_s:.2f} s, p95 {report.p95_s:.2f} s, "
                  f"max {report.max_s:.2f} s")
        finally:
            for _, proc in replicas:
                stop(proc)


def _wait_for(condition, seconds: float) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        if time.monotonic() > deadline:
            raise TimeoutError("condition not met in time")
        time.sleep(0.5)


def test_rag_load_takes_one_url_or_several() -> None:
    from rag.cli import build_parser

    assert build_parser().parse_args(["load", "http://a/"]).url == ["http://a/"]
    assert build_parser().parse_args(["load", "http://a/", "http://b/", "--users", "4"]).url == ["http://a/",
                                                                                                 "http://b/"]
