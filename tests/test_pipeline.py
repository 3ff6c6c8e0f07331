"""The pipeline end to end with tiny Qwen3 models and a real Milvus Lite file."""

from __future__ import annotations

from pathlib import Path

import pytest

from rag.errors import EmptyCorpusError, EmptyQuestionError, IncompatibleCollectionError
from rag.pipeline import Pipeline


@pytest.fixture
def pipeline(make_settings) -> Pipeline:
    return Pipeline(make_settings())


def test_ingest_twice_adds_nothing_the_second_time(pipeline: Pipeline, faq_dir: Path) -> None:
    steps: list[tuple[int, int]] = []
    first = pipeline.ingest([faq_dir / "*.md"], progress=lambda d, t: steps.append((d, t)))
    assert first.files == 4 and first.chunks_added > 50 and first.chunks_skipped == 0
    assert steps[0] == (0, first.chunks_added) and steps[-1] == (first.chunks_added, first.chunks_added)
    assert pipeline.store.count() == first.chunks_added
    second = pipeline.ingest([faq_dir / "*.md"])
    assert (second.chunks_added, second.chunks_skipped) == (0, first.chunks_added)
    assert pipeline.store.count() == first.chunks_added


def test_retrieve_returns_both_rankings(pipeline: Pipeline, faq_dir: Path) -> None:
    pipeline.ingest([faq_dir])
    r = pipeline.retrieve("Where does Milvus store data?", candidates=10, top_k=3)
    assert len(r.candidates) == 10 and len(r.dense) == 3 and len(r.reranked) == 3
    assert [h.dense_rank for h in r.candidates] == list(range(1, 11))
    dense_scores = [h.dense_score for h in r.candidates]
    assert dense_scores == sorted(dense_scores, reverse=True)
    assert sorted(h.id for h in r.reranked_all) == sorted(h.id for h in r.candidates)
    assert [h.rerank_rank for h in r.reranked_all] == list(range(1, 11))
    rerank_scores = [h.rerank_score for h in r.reranked_all]
    assert rerank_scores == sorted(rerank_scores, reverse=True) and all(0 <= s <= 1 for s in rerank_scores)
    # The reranker's scores are those of the reranker for exactly these texts.
    direct = pipeline.reranker.score(r.question, [h.text for h in r.candidates])
    assert [h.rerank_score for h in r.candidates] == pytest.approx(direct, abs=1e-6)
    assert r.timings.embed_s > 0 and r.timings.search_s > 0 and r.timings.rerank_s > 0
    d = r.to_dict()
    assert set(d) == {"question", "dense", "reranked", "candidates", "timings", "sources"}
    assert set(d["dense"][0]) == {"id", "text", "source", "heading", "dense_rank", "dense_score", "rerank_rank",
                                  "rerank_score", "document"}


def test_empty_question_and_empty_corpus(pipeline: Pipeline, tmp_path: Path) -> None:
    with pytest.raises(EmptyQuestionError):
        pipeline.retrieve("   \n")
    with pytest.raises(EmptyCorpusError, match="rag ingest"):
        pipeline.retrieve("anything")
    (tmp_path / "empty.md").write_text("")
    with pytest.raises(EmptyCorpusError, match="empty file"):
        pipeline.ingest([tmp_path / "empty.md"])


def test_another_embedding_model_is_refused(make_settings, minilm: str, faq_dir: Path) -> None:
    Pipeline(make_settings()).ingest([faq_dir / "product_faq.md"])
    other = Pipeline(make_settings(embedding_model=minilm))
    with pytest.raises(IncompatibleCollectionError, match="RAG_COLLECTION"):
        other.ingest([faq_dir / "product_faq.md"])


def test_info_loads_no_model(make_settings) -> None:
    p = Pipeline(make_settings())
    info = p.info()
    assert info["chunks"] == 0 and info["device"] == "cpu" and p._embedder is None and p._reranker is None


def test_a_huge_question_is_cut_with_a_notice(make_settings, faq_dir: Path) -> None:
    p = Pipeline(make_settings(max_question_tokens=40))
    p.ingest([faq_dir / "product_faq.md"])
    question = "Where does Milvus store data? " + "🙂 ünïcödé 数据 \x07 " * 20_000  # ~100,000 characters
    r = p.retrieve(question)
    assert "only its first 40 were used" in r.notice and "RAG_MAX_QUESTION_TOKENS" in r.notice
    assert len(p.embedder.token_spans(r.question)) == 40 and question.startswith(r.question)
    assert len(r.candidates) == 10 and "notice" not in r.to_dict()
    assert p.retrieve("Where does Milvus store data?").notice == ""
