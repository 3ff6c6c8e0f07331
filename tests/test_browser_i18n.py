"""The UI in three languages in a real browser: Chromium with ``locale`` zh-TW, zh-CN and en-US (its
Accept-Language and ``navigator.language``). Tabs, buttons and labels (Gradio's ``gr.I18n``), the status line, the
comparison panel, the passages-only answer and an upload's report with a skipped file (the server's text, in the
language of the request) are in that language, and the English texts of the labels are nowhere on the Chinese pages.

The app starts with a RAG_DOCS that does not exist, so its status line keeps saying so (a line that stays, to be
read in each language); a note uploaded in the first language is what the questions find. Screenshots go to
``$SHOTS_DIR`` (default ``screenshots/``, not committed).
"""

from __future__ import annotations

import os
import re
from pathlib import Path

import pytest
from apprun import start_app, stop
from conftest import wait_for_port

from rag import locales
from rag.settings import ROOT

SHOTS = Path(os.environ.get("SHOTS_DIR") or ROOT / "screenshots")
pytestmark = pytest.mark.slow
RERANKED = ("document.querySelectorAll('#rerank-col .rag-card').length >= 1 && "
            "!document.querySelector('#rerank-col .rag-pending')")
# what each language must show, written out (not looked up in the tables)
SHOWN = {
    "zh-TW": {"tabs": ["提問", "比較", "文件", "評估"], "ask": "提問", "status": "不存在；請把它設為一個文件資料夾",
              "report": ["已略過", "空白檔案", "note.md"], "dense": "密集檢索", "reranked": "重新排序後",
              "answer": "未啟用生成", "timing": "總計", "new_chat": "新對話", "add": "加入索引",
              "compare": "比較", "overlap": "重疊", "setup": "設定 A"},
    "zh-CN": {"tabs": ["提问", "对比", "文档", "评估"], "ask": "提问", "status": "不存在；请把它设为一个文档文件夹",
              "report": ["已跳过", "空文件", "note.md"], "dense": "密集检索", "reranked": "重排序后",
              "answer": "未启用生成", "timing": "总计", "new_chat": "新对话", "add": "添加到索引",
              "compare": "对比", "overlap": "重叠", "setup": "设置 A"},
    "en-US": {"tabs": ["Ask", "Compare", "Documents", "Evaluate"], "ask": "Ask", "status": "does not exist; set it",
              "report": ["skipped", "empty file", "note.md"], "dense": "Dense retrieval", "reranked": "Reranked",
              "answer": "Generation is off", "timing": "total", "new_chat": "New chat", "add": "Add to the index",
              "compare": "Compare", "overlap": "Overlap", "setup": "Setup A"},
}
BROWSER_SECTIONS = ("app.intro", "tab.", "ask.", "chats.new", "chats.delete", "chats.export", "chats.earlier",
                    "compare_tab.", "marks.passage", "marks.save", "docs.filter", "docs.re", "docs.fetch", "docs.add",
                    "docs.clear", "eval.intro", "eval.path", "eval.split", "eval.limit", "eval.marks")


def english_labels() -> list[str]:
    """The English texts of labels, tabs and buttons that are more than one word (a single word such as "Top-k"
    or "BM25" may be the same in Chinese)."""
    en = locales.table("en")
    texts = [en[k].split("\n")[-1] for k in en if k.startswith(BROWSER_SECTIONS) and "{" not in en[k]]
    return sorted({x for x in texts if re.search(r"[A-Za-z]{2,} [A-Za-z]{2,}", x)})


def visible_text(page) -> str:  # noqa: ANN001 - Playwright's Page
    """The page's visible text, with the placeholders of its text boxes (innerText leaves those out)."""
    return page.evaluate("""() => document.body.innerText + '\\n' + [...document.querySelectorAll(
        'textarea[placeholder], input[placeholder]')].map(e => e.placeholder).join('\\n')""")


def switched_by_gradio(page) -> None:  # noqa: ANN001 - Playwright's Page
    """Gradio's own language switch (its settings panel) changes the labels at once, and not the server's text:
    the status line stays in the language of the browser's Accept-Language (README: Languages)."""
    page.get_by_role("tab", name="Ask", exact=True).click()
    page.locator("footer").get_by_text("Settings").click()
    box = page.get_by_role("combobox", name="Language")
    box.click()
    box.fill("繁體中文")
    page.get_by_role("option", name="繁體中文").first.click()
    page.get_by_role("tab", name="提問", exact=True).wait_for(timeout=10000)
    assert page.locator("#ask").inner_text().strip() == "提問"
    page.wait_for_timeout(2000)  # the status line is renewed every second: still the Accept-Language's English
    assert "does not exist; set it" in page.locator("#status").inner_text()
    page.screenshot(path=str(SHOTS / "en-US-switched-to-zh-TW.png"), full_page=True)


def test_the_ui_in_three_languages(browser, tiny_models, tmp_path) -> None:
    note = tmp_path / "note.md"
    note.write_text("# Storage\n\nMilvus keeps the note in object storage, on MinIO or S3.", encoding="utf-8")
    empty = tmp_path / "empty.md"
    empty.write_text("", encoding="utf-8")
    url, proc = start_app(tmp_path, tiny_models, tmp_path / "nowhere", "", "", wait=False)  # no LLM
    try:
        wait_for_port(int(url.rstrip("/").rsplit(":", 1)[1]), proc, seconds=120)
        SHOTS.mkdir(parents=True, exist_ok=True)
        english = english_labels()
        assert "New chat" in english and "Clear the index" in english and len(english) > 25
        for locale, want in SHOWN.items():
            context = browser.new_context(locale=locale, viewport={"width": 1440, "height": 1100})
            page = context.new_page()
            page.goto(url)
            # the status line (first start failed: RAG_DOCS is missing), tabs and buttons
            page.locator("#status").get_by_text(want["status"]).wait_for(timeout=60000)
            for name in want["tabs"]:
                assert page.get_by_role("tab", name=name, exact=True).count() == 1, (locale, name)
            assert page.locator("#ask").inner_text().strip() == want["ask"]
            assert page.locator("#new-chat").inner_text().strip() == want["new_chat"]
            # an upload's report: the note added (or unchanged), the empty file skipped and why
            page.get_by_role("tab", name=want["tabs"][2], exact=True).click()
            assert page.locator("#add").inner_text().strip() == want["add"]
            page.locator("input[type=file]").first.set_input_files([str(note), str(empty)])
            page.wait_for_timeout(1000)
            page.locator("#add").click()
            page.locator("#report").get_by_text(want["report"][1]).first.wait_for(timeout=120000)
            report = page.locator("#report").inner_text()
            assert all(w in report for w in want["report"]), (locale, report)
            documents_text = visible_text(page)
            page.screenshot(path=str(SHOTS / f"{locale}-documents.png"), full_page=True)
            # the comparison panel, the timing line and the passages-only answer
            page.get_by_role("tab", name=want["tabs"][0], exact=True).click()
            page.locator("#question textarea").fill("Where does Milvus keep the note?")
            page.locator("#ask").click()
            page.wait_for_function(RERANKED, timeout=120000)
            page.locator("#chat").get_by_text(want["answer"]).first.wait_for(timeout=60000)
            assert want["dense"] in page.locator("#dense-col h4").inner_text()
            assert want["reranked"] in page.locator("#rerank-col h4").inner_text()
            page.wait_for_function(f"document.querySelector('#timings').innerText.includes({want['timing']!r})",
                                   timeout=30000)
            ask_text = visible_text(page)
            page.screenshot(path=str(SHOTS / f"{locale}-ask.png"), full_page=True)
            # the Compare tab, run once
            page.get_by_role("tab", name=want["tabs"][1], exact=True).click()
            assert page.locator("#compare").inner_text().strip() == want["compare"]
            page.locator("#compare-question textarea").fill("Where does Milvus keep the note?")
            page.locator("#compare").click()
            page.locator("#overlap").wait_for(timeout=120000)
            assert want["overlap"] in page.locator("#overlap").inner_text() and want["setup"] in visible_text(page)
            compare_text = visible_text(page)
            page.screenshot(path=str(SHOTS / f"{locale}-compare.png"), full_page=True)
            page.get_by_role("tab", name=want["tabs"][3], exact=True).click()
            evaluate_text = visible_text(page)
            shown = "\n".join((documents_text, ask_text, compare_text, evaluate_text))
            left = [x for x in english if x in shown]
            if locale == "en-US":
                assert len(left) > 15, left  # the check reads the page: English shows where it should
                switched_by_gradio(page)
            else:
                assert left == [], (locale, left)
            context.close()
    finally:
        stop(proc)
