"""The library in a real browser (Chromium, tiny models, the loopback LLM): two uploads listed beside the FAQ pages,
a question asked of one of them only, an edited upload that replaces it, and its removal."""

from __future__ import annotations

from pathlib import Path

import pytest
from apprun import start_app, stop
from openai_server import FakeOpenAI, Reply

from rag.settings import ROOT

SHOTS = ROOT / "screenshots"
RERANKED = ("document.querySelectorAll('#rerank-col .rag-card').length >= 1 && "
            "!document.querySelector('#rerank-col .rag-pending')")
pytestmark = pytest.mark.slow


ANSWER = "Customer data is kept [1]."


def ask(page, question: str) -> list[str]:
    """Ask on the Ask tab; the sources of every card in both columns once the answer (which comes after the
    complete reranked column) is in the chat."""
    page.get_by_role("tab", name="Ask").click()
    answers = page.locator("#chat").get_by_text(ANSWER).count()
    page.locator("#question textarea").fill(question)
    page.locator("#ask").click()
    page.wait_for_function(f"document.querySelector('#chat').innerText.split({ANSWER!r}).length > {answers + 1}",
                           timeout=60000)
    page.wait_for_function(RERANKED, timeout=10000)
    return [s.get_attribute("title") for s in page.locator("#comparison .rag-source").all()]


def upload(page, files: list[Path], expect: str) -> str:
    """Upload on the Documents tab; the report once it says ``expect``."""
    page.get_by_role("tab", name="Documents").click()
    page.locator("input[type=file]").first.set_input_files([str(f) for f in files])
    page.wait_for_timeout(1000)
    page.locator("#add").click()
    page.locator("#report").get_by_text(expect).first.wait_for(timeout=60000)
    return page.locator("#report").inner_text()


def choose(page, dropdown: str, name: str) -> None:
    box = page.locator(f"#{dropdown} input")
    box.click()
    box.fill(name)
    page.keyboard.press("Enter")
    page.keyboard.press("Escape")
    page.locator(f"#{dropdown}").get_by_text(name, exact=True).first.wait_for(timeout=10000)  # the chosen token


def test_upload_choose_replace_and_remove_in_the_browser(browser, tiny_models, faq_dir, tmp_path) -> None:
    contract = tmp_path / "contract.md"
    contract.write_text("# Retention\n\nThe contract keeps customer data for seven years in the vault.")
    manual = tmp_path / "manual.md"
    manual.write_text("# Storage\n\nThe manual keeps customer data in object storage.")
    with FakeOpenAI(Reply(chunks=[ANSWER])) as llm:
        url, proc = start_app(tmp_path, tiny_models, faq_dir, llm.url, "sk-x")
        try:
            page = browser.new_page(viewport={"width": 1440, "height": 1100})
            page.goto(url)
            report = upload(page, [contract, manual], "added: contract.md")
            assert "added: contract.md" in report and "added: manual.md" in report, report
            table = page.locator("#documents").inner_text()
            assert "contract.md" in table and "manual.md" in table and "milvus_faq/product_faq.md" in table
            SHOTS.mkdir(exist_ok=True)
            page.screenshot(path=str(SHOTS / "library.png"), full_page=True)

            from gradio_client import Client  # the same scope through the API

            client = Client(url, verbose=False)
            listed = [d["source"] for d in client.predict(api_name="/documents")["documents"]]
            assert {"contract.md", "manual.md", "milvus_faq/product_faq.md"} <= set(listed) and len(listed) == 7
            found = client.predict("How long is customer data kept?", 10, 3, ["manual.md"], api_name="/search")
            assert {h["document"] for h in found["candidates"]} == {"manual.md"} and found["sources"] == ["manual.md"]
            assert len(client.predict("How long is customer data kept?", 10, 3, api_name="/search")["candidates"]) == 10

            page.get_by_role("tab", name="Ask").click()
            choose(page, "scope-choice", "contract.md")
            sources = ask(page, "How long is customer data kept?")
            assert sources and set(sources) == {"contract.md"}, sources
            assert "Searched 1 of 7 documents: contract.md" in page.locator("#scope").inner_text()
            assert "seven years" in page.locator("#comparison").inner_text()
            page.screenshot(path=str(SHOTS / "scoped.png"), full_page=True)

            contract.write_text("# Retention\n\nThe contract keeps customer data for twelve years in the bunker.")
            report = upload(page, [contract], "replaced: contract.md")
            assert "chunks" in report, report
            ask(page, "How long is customer data kept?")
            panel = page.locator("#comparison").inner_text()
            assert "twelve years" in panel and "seven years" not in panel

            page.get_by_role("tab", name="Documents").click()
            choose(page, "remove-choice", "contract.md")
            page.locator("#remove").click()
            page.locator("#report").get_by_text("Removed").wait_for(timeout=30000)
            page.wait_for_function("!document.querySelector('#documents').innerText.includes('contract.md')",
                                   timeout=30000)
            sources = ask(page, "How long is customer data kept?")  # the selection lost the removed document
            assert "contract.md" not in sources and "Searched all 6 documents" in page.locator("#scope").inner_text()
            assert "twelve years" not in page.locator("#comparison").inner_text()

            page.reload()  # the chat is kept: reloaded, then after a restart of the app on the same address
            page.locator("#chat").get_by_text("How long is customer data kept?").first.wait_for(timeout=30000)
            assert page.locator("#chat").inner_text().count(ANSWER) == 3
        finally:
            stop(proc)
        port = int(url.rstrip("/").rsplit(":", 1)[1])
        url, proc = start_app(tmp_path, tiny_models, faq_dir, llm.url, "sk-x", log="restart.log", port=port)
        try:
            page.goto(url)
            page.locator("#chat").get_by_text("How long is customer data kept?").first.wait_for(timeout=30000)
            assert page.locator("#chat").inner_text().count(ANSWER) == 3
            page.get_by_role("tab", name="Documents").click()
            page.locator("#documents").get_by_text("manual.md").wait_for(timeout=30000)
            assert "contract.md" not in page.locator("#documents").inner_text()
            page.screenshot(path=str(SHOTS / "restarted.png"), full_page=True)
        finally:
            stop(proc)
