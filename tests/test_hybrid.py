"""BM25 and hybrid search on a real Milvus Lite file: the store, the pipeline's modes, the setting, the CLI and app
toggles, and the message for a collection made before it had the BM25 field."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from rag.errors import SettingsError
from rag.pipeline import Pipeline
from rag.settings import load_settings
from rag.store import RRF_K, MilvusStore
from rag.types import Chunk

TEXTS = ["the cat sat on the mat", "dogs bark loudly at night", "milvus stores vectors on disk",
         "cats and dogs live together", "a quiet night with the cat"]


@pytest.fixture
def store(tmp_path: Path) -> MilvusStore:
    s = MilvusStore(str(tmp_path / "h.db"), "hybrid")
    yield s
    s.close()


def filled(store: MilvusStore) -> np.ndarray:
    vectors = np.random.default_rng(0).normal(size=(len(TEXTS), 8)).astype(np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    store.ensure("m", 8)
    store.insert([Chunk(f"id{i}", t, f"doc{i}.md", f"H{i}") for i, t in enumerate(TEXTS)], vectors)
    store.flush()
    return vectors


def test_bm25_search_ranks_by_the_words(store: MilvusStore) -> None:
    filled(store)
    found = store.search_bm25("cat mat", 5)
    assert found[0][0].id == "id0" and {c.id for c, _ in found} == {"id0", "id4"}  # "cats" is another word here
    scores = [s for _, s in found]
    assert all(s > 0 for s in scores) and scores == sorted(scores, reverse=True)
    assert store.search_bm25("zebra", 5) == []


def test_hybrid_search_fuses_both_rankings_by_rrf(store: MilvusStore) -> None:
    vectors = filled(store)
    found = store.search_hybrid(vectors[2], "dogs bark at night", 5)
    dense_rank = {c.id: r for r, (c, _) in enumerate(store.search(vectors[2], 5), 1)}
    bm25_rank = {c.id: r for r, (c, _) in enumerate(store.search_bm25("dogs bark at night", 5), 1)}
    assert dense_rank["id2"] == 1 and bm25_rank["id1"] == 1 and "id2" not in bm25_rank
    expected = {i: sum(1 / (RRF_K + ranks[i]) for ranks in (dense_rank, bm25_rank) if i in ranks) for i in dense_rank}
    assert len(found) == 5 and [s for _, s in found] == pytest.approx(sorted(expected.values(), reverse=True), rel=1e-4)
    for chunk, score in found:
        assert score == pytest.approx(expected[chunk.id], rel=1e-4)
    assert found[0][0].id == "id1"  # first by BM25 and found by both


def test_an_old_collection_without_the_bm25_and_document_fields_is_upgraded_in_place(tmp_path: Path) -> None:
    from pymilvus import DataType, MilvusClient

    uri = str(tmp_path / "old.db")
    client = MilvusClient(uri)
    schema = client.create_schema(auto_id=False)
    schema.add_field("id", DataType.VARCHAR, max_length=64, is_primary=True)
    schema.add_field("vector", DataType.FLOAT_VECTOR, dim=4)
    for name in ("text", "source", "heading"):
        schema.add_field(name, DataType.VARCHAR, max_length=1024)
    index = client.prepare_index_params()
    index.add_index("vector", index_type="AUTOINDEX", metric_type="IP")
    client.create_collection("old", schema=schema, index_params=index)
    client.alter_collection_properties("old", properties={"rag.embedding_model": "m", "rag.embedding_dim": "4"})
    client.insert("old", [{"id": "a", "vector": [1, 0, 0, 0], "text": "alpha text", "source": "x.pdf#page=2",
                           "heading": "h"},
                          {"id": "b", "vector": [0, 1, 0, 0], "text": "beta text", "source": "y.md", "heading": ""}])
    client.close()
    store = MilvusStore(uri, "old")
    assert store.exists()  # the first open upgrades it
    assert store.recorded() == ("m", 4)
    hit, score = store.search(np.array([1, 0, 0, 0], np.float32), 1)[0]
    assert (hit.id, hit.document, score) == ("a", "x.pdf", pytest.approx(1.0))  # the vector copied, not re-made
    assert [c.id for c, _ in store.search_bm25("beta", 3)] == ["b"]  # BM25 now works on it too
    assert [(d.source, d.chunks, d.pages) for d in store.documents()] == [("x.pdf", 1, 2), ("y.md", 1, 1)]
    assert [c.id for c, _ in store.search(np.array([1, 0, 0, 0], np.float32), 3, ["y.md"])] == ["b"]
    assert sorted(store.client.list_collections()) == ["old"]  # the copy took the old one's name
    store.close()


def test_hybrid_setting() -> None:
    assert load_settings(env_file=None, environ={}).hybrid is False
    assert load_settings(env_file=None, environ={"RAG_HYBRID": "true"}).hybrid is True
    assert load_settings(env_file=None, environ={"RAG_HYBRID": "0"}).hybrid is False
    with pytest.raises(SettingsError, match="RAG_HYBRID='maybe' is not true or false"):
        load_settings(env_file=None, environ={"RAG_HYBRID": "maybe"})


def test_pipeline_modes_cli_and_app_toggle(make_settings, faq_dir: Path, tmp_path: Path, monkeypatch, capsys) -> None:
    from app import chat_turn
    from rag.cli import main

    settings = make_settings()
    pipeline = Pipeline(settings)
    pipeline.ingest([faq_dir / "*.md"])
    question = "Where does Milvus store data?"
    bm25 = pipeline.first_stage(question, "bm25", 10)
    assert bm25.first_stage == "bm25" and bm25.candidates[0].heading == question and bm25.timings.embed_s < 1e-3
    hybrid = pipeline.dense(question, 10, hybrid=True)
    assert hybrid.first_stage == "hybrid" and len(hybrid.candidates) == 10
    assert all(0 < h.dense_score <= 2 / (RRF_K + 1) for h in hybrid.candidates)  # fused RRF scores
    assert pipeline.dense(question, 10).first_stage == "dense"  # RAG_HYBRID is off by default
    on = Pipeline(settings.replace(hybrid=True), store=pipeline.store)
    ranked = on.retrieve(question, 10, 3)
    assert ranked.first_stage == "hybrid" and [h.id for h in ranked.candidates] == [h.id for h in hybrid.candidates]
    assert ranked.to_dict().keys() == {"question", "dense", "reranked", "candidates", "timings", "sources"}

    steps = list(chat_turn(pipeline, question, [], 10, 3, "", "", "", True))
    html = [s[1] for s in steps if isinstance(s[1], str)][-1]
    assert "Hybrid retrieval" in html and "RRF 0.0" in html

    pipeline.store.close()
    monkeypatch.chdir(tmp_path)
    for key, value in {"RAG_EMBEDDING_MODEL": settings.embedding_model, "RAG_RERANKER_MODEL": settings.reranker_model,
                       "RAG_DEVICE": "cpu", "RAG_MILVUS_URI": settings.milvus_uri}.items():
        monkeypatch.setenv(key, value)
    assert main(["search", question, "--hybrid", "--candidates", "10", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert [h["id"] for h in out["candidates"]] == [h.id for h in hybrid.candidates]
