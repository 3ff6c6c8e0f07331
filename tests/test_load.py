"""16 users at once through gradio_client against the running app: all answered, each with its own sources."""

from __future__ import annotations

from pathlib import Path

import pytest
from apprun import start_app, stop
from openai_server import FakeOpenAI, Reply

from rag.load import default_questions, percentile, run_users

pytestmark = pytest.mark.slow


def test_percentile_is_nearest_rank() -> None:
    values = [float(v) for v in range(1, 17)]
    assert (percentile(values, 50), percentile(values, 95), percentile([3.0], 95)) == (8.0, 16.0, 3.0)


def test_sixteen_users_at_once_each_get_their_own_answer(tiny_models, faq_dir: Path, tmp_path: Path) -> None:
    questions = default_questions(16)
    assert len(set(questions)) == 16
    # The LLM ends each answer with the question it was given, so an answer sent to the wrong session shows.
    with FakeOpenAI(Reply(chunks=["From the passages [1]."], first_delay=0.2, echo=True)) as llm:
        url, proc = start_app(tmp_path, tiny_models, faq_dir, llm.url, "sk-x")
        try:
            report = run_users(url, questions)
        finally:
            stop(proc)
    assert report.users == 16 and report.failed == 0, [r.error for r in report.results]
    for r in report.results:
        assert r.answer == f"From the passages [1]. ({r.question})"
        assert len(r.sources) == 3 and r.sources == r.alone  # the same sources as the question asked alone
    assert report.cross_talk == 0
    assert len({r.sources for r in report.results}) > 1  # different questions got different sources
    assert len([q for q in llm.requests if q["body"].get("stream")]) == 16
    assert 0 < report.p50_s <= report.p95_s <= report.max_s <= report.wall_s + 1e-6
