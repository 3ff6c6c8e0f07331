"""Retrieval quality with real weights: all-MiniLM-L6-v2 (offline) on the tutorial's Milvus FAQ corpus."""

from __future__ import annotations

from pathlib import Path

import pytest

from rag.pipeline import Pipeline

# question -> the FAQ heading that answers it
CASES = {
    "Where does Milvus store data?": "Where does Milvus store data?",
    "How is data stored in milvus?": "Where does Milvus store data?",
    "How much does it cost to use Milvus?": "How much does Milvus cost?",
    "Can Milvus run on ARM processors?": "Does Milvus support non-x86 architectures?",
    "What is the largest amount of data Milvus can hold?": "What is the maximum dataset size Milvus can handle?",
    "Why do I get an error when pulling the Milvus image from Docker Hub?":
        "What if I failed to pull the Milvus Docker image from Docker Hub?",
}


@pytest.fixture(scope="module")
def minilm_pipeline(tmp_path_factory, minilm: str, faq_dir: Path, tiny_models) -> Pipeline:
    from rag.settings import load_settings

    settings = load_settings(
        env_file=None, environ={}, embedding_model=minilm, reranker_model=str(tiny_models[1]), device="cpu",
        dtype="float32", milvus_uri=str(tmp_path_factory.mktemp("q") / "m.db"),
    )
    p = Pipeline(settings)
    p.ingest([faq_dir / "*.md"])
    return p


@pytest.mark.parametrize("question", list(CASES))
def test_right_faq_entry_in_dense_top3(minilm_pipeline: Pipeline, question: str) -> None:
    top3 = [h.heading for h in minilm_pipeline.dense(question).dense]
    assert CASES[question] in top3, top3
