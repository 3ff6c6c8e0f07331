"""Two setups side by side (``rag.compare``), relevance marks (``rag.marks``) and their metrics: the comparison is
the same as two searches, the overlap is over the final lists, and the live metrics are ``rag eval``'s."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import cli_env

from rag.compare import compare, setup
from rag.errors import SettingsError
from rag.evalsets import load_set, marks_set, read_marks
from rag.evaluation import evaluate, question_scores
from rag.marks import Marks, hit_key
from rag.pipeline import Pipeline
from rag.render import compare_view
from rag.settings import load_settings
from rag.types import Comparison, Hit, Retrieval

QUESTION = "Where does Milvus store data?"


def hits(ids: str) -> tuple[Hit, ...]:
    return tuple(Hit(i, f"text {i}", f"{i}.md", f"H{i}", n, 1.0 / n) for n, i in enumerate(ids, 1))


def test_overlap_and_moves_are_over_the_final_top_k() -> None:
    s = setup(load_settings(env_file=None, environ={}), {"rerank": "off", "top_k": "3"})
    # A's first stage is x y z w; reranked, its top 3 is y x q. B is not reranked: its top 3 is x q r
    first_a = Retrieval("q", hits("xyzwq"), (), 3)
    ranked_a = Retrieval("q", first_a.candidates, tuple(first_a.candidates[i] for i in (1, 0, 4, 2, 3)), 3)
    b = Retrieval("q", hits("xqrs"), (), 3)
    c = Comparison("q", ranked_a, b, s, s)
    assert c.overlap == pytest.approx(2 / 3)  # x and q: A's reranked top 3 against B's first-stage top 3
    assert [(h.id, a, bb) for h, a, bb in c.moves()] == [("y", 1, None), ("x", 2, 1), ("q", 3, 2), ("r", None, 3)]
    html = compare_view(c)
    assert "Overlap 2 of 3 (0.67)" in html and "only in A" in html and "only in B" in html and "↓" not in html


def test_a_setup_takes_the_settings_for_what_it_leaves_out_and_refuses_bad_values() -> None:
    settings = load_settings(env_file=None, environ={}, candidates=12, top_k=4, hybrid=True)
    s = setup(settings, {"sources": ["a.md", "a.md", "b.md"]})
    assert (s.stage, s.candidates, s.top_k, s.rerank, s.sources) == ("hybrid", 12, 4, True, ("a.md", "b.md"))
    assert s.query_instruction == settings.query_instruction
    for bad, message in (({"stage": "magic"}, "stage='magic'"), ({"top_k": "x"}, "whole number"),
                         ({"rerank": "maybe"}, "on or off"), ({"colour": "red"}, "Unknown setup key"),
                         ({"candidates": 0}, "between 1 and")):
        with pytest.raises(SettingsError, match=message):
            setup(settings, bad)


@pytest.fixture(scope="module")
def indexed(tiny_models, faq_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Pipeline:
    tmp = tmp_path_factory.mktemp("compare")
    settings = load_settings(env_file=None, environ={}, embedding_model=str(tiny_models[0]),
                             reranker_model=str(tiny_models[1]), device="cpu", dtype="float32",
                             milvus_uri=str(tmp / "m.db"), data_dir=str(tmp / "data"))
    pipeline = Pipeline(settings)
    pipeline.ingest(sorted(faq_dir.glob("*.md")))
    return pipeline


def ids(hits: tuple[Hit, ...]) -> list[str]:
    return [h.id for h in hits]


def test_the_comparison_is_two_searches_and_reuses_what_it_shares(indexed: Pipeline) -> None:
    a, b = setup(indexed.settings, {"stage": "dense"}), setup(indexed.settings, {"stage": "hybrid", "top_k": 5})
    c = compare(indexed, QUESTION, a, b)
    alone_a = indexed.retrieve(QUESTION, a.candidates, a.top_k, stage="dense")
    alone_b = indexed.retrieve(QUESTION, b.candidates, b.top_k, stage="hybrid")
    for got, alone in ((c.a, alone_a), (c.b, alone_b)):
        assert ids(got.candidates) == ids(alone.candidates) and ids(got.reranked) == ids(alone.reranked)
        assert [h.rerank_score for h in got.reranked] == pytest.approx([h.rerank_score for h in alone.reranked])
    assert c.shared == () and len(c.b.reranked) == 5

    other = setup(indexed.settings, {"stage": "dense", "rerank_instruction": "Judge whether the passage is about "
                                     "storage"})
    again = compare(indexed, QUESTION, a, other)
    assert again.shared == ("first stage",) and ids(again.b.candidates) == ids(again.a.candidates)
    assert again.b.timings.search_s == again.a.timings.search_s  # the candidates were found once
    off = compare(indexed, QUESTION, a, setup(indexed.settings, {"stage": "dense", "rerank": "off"}))
    assert off.b.reranked == () and ids(off.b.passages) == ids(c.a.dense)  # B's final list is its first stage
    assert off.overlap == pytest.approx(len(set(ids(c.a.reranked)) & set(ids(c.a.dense))) / 3)
    d = off.to_dict()
    assert set(d) == {"question", "a", "b", "overlap"} and d["b"]["setup"]["rerank"] is False
    assert set(d["a"]) >= {"question", "dense", "reranked", "candidates", "timings", "sources", "setup"}


def test_live_metrics_are_what_rag_eval_computes_over_the_same_marks(indexed: Pipeline, tmp_path: Path) -> None:
    marks = Marks(tmp_path / "marks.csv")
    a = setup(indexed.settings, {"stage": "dense", "candidates": 100, "top_k": 10, "rerank": "off"})
    c = compare(indexed, QUESTION, a, setup(indexed.settings, {"stage": "bm25", "candidates": 100, "top_k": 10,
                                                               "rerank": "off"}))
    second, fifth = c.a.candidates[1], c.a.candidates[4]
    marks.mark(QUESTION, second, True)
    marks.mark(QUESTION, fifth, True)
    marks.mark(QUESTION, c.a.candidates[0], False)
    marks.mark(QUESTION, c.a.candidates[2], True)
    marks.mark(QUESTION, c.a.candidates[2], None)  # unmarked again
    assert [m.relevant for m in marks.all()] == [True, True, False]
    assert marks.of(f"  {QUESTION} ") == {hit_key(second): True, hit_key(fifth): True,
                                          hit_key(c.a.candidates[0]): False}

    evalset = marks_set(marks.all(), question=QUESTION)
    live = question_scores(evalset, "1", c.a.candidates, 10)
    assert live["first_relevant"] == 2 and live["precision@10"] == pytest.approx(0.2)
    report = evaluate(indexed, read_marks(marks.path), ("dense", "bm25"))
    assert live["ndcg@10"] == pytest.approx(report.metrics["dense"]["ndcg@10"])
    bm25 = question_scores(evalset, "1", c.b.candidates, 10)
    assert bm25["ndcg@10"] == pytest.approx(report.metrics["bm25"]["ndcg@10"])
    assert load_set(marks.path).passages  # the Evaluate tab's reader takes the marks file as a CSV
    html = compare_view(c, marks.of(QUESTION), {"a": live})
    assert "✓ relevant" in html and "✗ not relevant" in html and "first relevant</b> #2" in html


@pytest.mark.slow
def test_cli_compare_search_stage_marks_and_eval(tiny_models, faq_dir: Path, tmp_path: Path) -> None:
    env = cli_env(*tiny_models, RAG_MILVUS_URI=str(tmp_path / "m.db"), RAG_DATA_DIR=str(tmp_path / "data"))

    def run(*args: str) -> subprocess.CompletedProcess:
        proc = subprocess.run([sys.executable, "-m", "rag", *args], env=env, cwd=tmp_path, capture_output=True,
                              text=True, timeout=300)
        assert proc.returncode == 0, proc.stderr
        return proc

    run("ingest", *map(str, sorted(faq_dir.glob("*.md"))))
    c = json.loads(run("compare", QUESTION, "--a", "stage=dense", "--b", "stage=hybrid", "top_k=4", "--json").stdout)
    dense = json.loads(run("search", QUESTION, "--json").stdout)
    hybrid = json.loads(run("search", QUESTION, "--stage", "hybrid", "--top-k", "4", "--json").stdout)
    synonym = json.loads(run("search", QUESTION, "--hybrid", "--top-k", "4", "--json").stdout)
    for side, alone in (("a", dense), ("b", hybrid), ("b", synonym)):
        for ranking in ("candidates", "reranked"):
            assert [h["id"] for h in c[side][ranking]] == [h["id"] for h in alone[ranking]], (side, ranking)
    assert c["b"]["setup"]["stage"] == "hybrid" and 0 <= c["overlap"] <= 1
    bm25 = json.loads(run("search", QUESTION, "--stage", "bm25", "--json").stdout)
    assert all(0 <= h["dense_score"] for h in bm25["candidates"])
    text = run("compare", QUESTION, "--b", "stage=bm25", "rerank=off").stdout
    assert "A: dense, reranked" in text and "B: bm25, not reranked" in text and "overlap" in text

    Marks(tmp_path / "data" / "marks.csv").mark(QUESTION, Hit(**{**dense["reranked"][0]}), True)
    listed = json.loads(run("marks", "--json").stdout)["marks"]
    assert len(listed) == 1 and listed[0]["relevant"] is True and listed[0]["document"].endswith(".md")
    scored = json.loads(run("eval", "--marks", "--modes", "dense,rerank", "--json").stdout)
    assert set(scored) == {"dense", "rerank"} and scored["rerank"]["mrr@10"] == 1.0  # marked: reranked #1
