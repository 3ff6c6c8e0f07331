"""The Compare tab in a real browser (Chromium, tiny models): A dense against B hybrid, both columns, the overlap
and the rank moves; two passages marked, their metrics shown, the marks downloaded and scored by the Evaluate tab;
and ``/compare`` through gradio_client gives the rankings of ``/search``."""

from __future__ import annotations

import csv

import pytest
from apprun import start_app, stop
from openai_server import FakeOpenAI

from rag.settings import ROOT

SHOTS = ROOT / "screenshots"
QUESTION = "Where does Milvus store data?"
pytestmark = pytest.mark.slow


def test_compare_mark_and_score_in_the_browser(browser, tiny_models, faq_dir, tmp_path) -> None:
    with FakeOpenAI() as llm:
        url, proc = start_app(tmp_path, tiny_models, faq_dir, llm.url, "sk-x")
        try:
            from gradio_client import Client

            client = Client(url, verbose=False)
            c = client.predict(QUESTION, {"stage": "dense"}, {"stage": "hybrid", "top_k": 4}, api_name="/compare")
            dense = client.predict(QUESTION, 10, 3, api_name="/search")
            assert [h["id"] for h in c["a"]["reranked"]] == [h["id"] for h in dense["reranked"]]
            assert len(c["b"]["reranked"]) == 4 and c["b"]["setup"]["stage"] == "hybrid"

            page = browser.new_page(viewport={"width": 1440, "height": 1400})
            page.goto(url)
            page.get_by_role("tab", name="Compare").click()
            page.locator("#b-stage").get_by_text("hybrid", exact=True).click()
            page.locator("#compare-question textarea").fill(QUESTION)
            page.locator("#compare").click()
            page.locator("#overlap").wait_for(timeout=60000)
            assert page.locator("#setup-a .rag-card").count() == 3 and page.locator("#setup-b .rag-card").count() == 3
            assert "A: dense · reranked" in page.locator("#setup-a h4").inner_text()
            assert "B: hybrid · reranked" in page.locator("#setup-b h4").inner_text()
            assert page.locator("#moves tr").count() >= 4  # a header and at least three passages
            for n in (1, 2):  # mark the first two passages of the list relevant
                page.locator("#mark-choice input").click()
                page.locator("#mark-choice input").press("ArrowDown")
                for _ in range(n - 1):
                    page.locator("#mark-choice input").press("ArrowDown")
                page.locator("#mark-choice input").press("Enter")
                page.locator("#mark").click()
                page.wait_for_function(f"document.querySelector('#comparison-ab').innerText.split('✓ relevant')"
                                       f".length > {n}", timeout=30000)
            metrics = page.locator("#setup-a .rag-metrics").inner_text()
            assert "precision@3" in metrics and "ndcg@3" in metrics and "first relevant" in metrics
            SHOTS.mkdir(exist_ok=True)
            page.screenshot(path=str(SHOTS / "compare.png"), full_page=True)

            with page.expect_download() as got:
                page.locator("#marks-download").click()
            rows = list(csv.DictReader(open(got.value.path(), encoding="utf-8")))
            assert len(rows) == 2 and {r["relevant"] for r in rows} == {"1"} and rows[0]["question"] == QUESTION

            page.get_by_role("tab", name="Ask").click()  # a card of the Ask tab is marked the same way
            page.locator("#question textarea").fill("How much does Milvus cost?")
            page.locator("#ask").click()
            page.wait_for_function("document.querySelectorAll('#rerank-col .rag-card').length === 3 && "
                                   "!document.querySelector('#rerank-col .rag-pending')", timeout=60000)
            page.wait_for_function("/total [0-9.]+ s/.test(document.querySelector('#timings').innerText)",
                               timeout=60000)  # the answer is complete: the passages to mark follow it
            page.get_by_role("button", name="Mark passages relevant or not").click()
            page.locator("#ask-mark-choice input").click()
            page.locator("ul.options li, [role=option]").first.wait_for(timeout=30000)
            box = page.locator("#ask-mark-choice input")
            box.click()
            box.press("ArrowDown")
            box.press("Enter")
            page.locator("#ask-mark").click()
            page.locator("#ask-marked").get_by_text("How much does Milvus cost?").wait_for(timeout=30000)
            rows = list(csv.DictReader(open(tmp_path / "data" / "marks.csv", encoding="utf-8")))
            assert [r["question"] for r in rows] == [QUESTION, QUESTION, "How much does Milvus cost?"]

            page.get_by_role("tab", name="Evaluate").click()
            page.locator("#evaluate-marks").click()
            page.locator("#eval-metrics table").wait_for(timeout=120000)
            assert "marks: 2 questions" in page.locator("#eval-metrics").inner_text()
        finally:
            stop(proc)
