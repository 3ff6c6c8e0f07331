"""The document view in a real browser (Chromium, tiny models, the loopback LLM): a card clicked opens its passage
in its document, highlighted and scrolled into view; a citation [n] in the answer opens the n-th reranked passage;
a PDF's passage shows its page number and the page's image; a card of the Compare tab opens its passage in that
tab's viewer. Screenshots under screenshots/."""

from __future__ import annotations

import formats
import pytest
from apprun import start_app, stop
from openai_server import FakeOpenAI, Reply
from test_browser_documents import ANSWER, ask, choose, upload

from rag.settings import ROOT

SHOTS = ROOT / "screenshots"
pytestmark = pytest.mark.slow

# the <mark> is visible: inside the window and inside its scrolling text box
IN_VIEW = """(viewer) => {
  const m = document.querySelector(`#${viewer || 'passage'} #passage-mark`);
  const box = document.querySelector(`#${viewer || 'passage'} .rag-passage-scroll`);
  if (!m) return false;
  const r = m.getBoundingClientRect(), b = box.getBoundingClientRect();
  return r.top >= 0 && r.top < window.innerHeight && r.top >= b.top - 1 && r.top < b.bottom;
}"""
CITATION = """(n) => {  // the middle of the first "[n]" in the chat's answer, in page coordinates
  const chat = document.querySelector('#chat');
  const walk = document.createTreeWalker(chat, NodeFilter.SHOW_TEXT);
  for (let node = walk.nextNode(); node; node = walk.nextNode()) {
    const at = node.data.indexOf(`[${n}]`);
    if (at < 0 || node.data.includes('Sources')) continue;
    const range = document.createRange();
    range.setStart(node, at + 1); range.setEnd(node, at + 2);
    const r = range.getBoundingClientRect();
    return {x: r.left + r.width / 2, y: r.top + r.height / 2};
  }
  return null;
}"""


def opened(page, text: str, viewer: str = "passage") -> str:
    """Wait for the viewer ``#viewer`` to hold ``text`` in its highlight, scrolled into view; its inner text."""
    page.wait_for_function("([v, t]) => (document.querySelector(`#${v} #passage-mark`) || {}).innerText?.includes(t)",
                           arg=[viewer, text], timeout=30000)
    page.wait_for_function(IN_VIEW, arg=viewer, timeout=10000)
    return page.locator(f"#{viewer}").inner_text()


def test_a_card_and_a_citation_open_the_passage_in_its_document(browser, tiny_models, faq_dir, tmp_path) -> None:
    # 160 lines before the passage, in an HTML comment: the chunker drops it (so the manual's only chunks are the
    # two sections below, both in the top 3 whatever the tiny model ranks), the view shows the text as kept
    filler = "".join(f"Shelving rule number {i} of the archive.\n" for i in range(1, 161))
    manual = tmp_path / "manual.md"
    manual.write_text(f"# Manual\n\n<!--\n{filler}-->\n\n## Retention\n\nThe manual keeps customer data for nine "
                      "years in the vault, then shreds it.\n\n## After\n\nThe text after the passage.\n")
    paper = formats.pdf(tmp_path / "paper.pdf", ["The first page is about indexes.",
                                                 "The second page keeps customer data in the cold store.",
                                                 "The third page ends it."])
    hostile = tmp_path / "hostile.md"
    hostile.write_text('# <img src=x onerror="window.pwned=1">\n\n<script>window.pwned=2</script> customer data '
                       'kept <a href="javascript:window.pwned=3">here</a>.\n')
    with FakeOpenAI(Reply(chunks=[ANSWER])) as llm:
        url, proc = start_app(tmp_path, tiny_models, faq_dir, llm.url, "sk-x")
        try:
            page = browser.new_page(viewport={"width": 1440, "height": 1000})
            page.goto(url)
            upload(page, [manual, paper, hostile], "added: manual.md")
            page.get_by_role("tab", name="Ask").click()
            choose(page, "scope-choice", "manual.md")
            ask(page, "How long is customer data kept?")
            card = page.locator("#dense-col .rag-card").filter(has_text="nine years").first
            card.locator(".rag-heading").click()
            text = opened(page, "nine years in the vault")
            assert "manual.md" in text and "rule number 160" in text and "The text after the passage." in text
            SHOTS.mkdir(exist_ok=True)
            page.screenshot(path=str(SHOTS / "passage.png"))

            page.locator("#passage .rag-passage-scroll").evaluate("b => { b.scrollTop = 0; }")
            page.evaluate("window.scrollTo(0, 0)")
            first = page.locator("#rerank-col .rag-card").first.get_attribute("data-id")
            where = page.evaluate(CITATION, 1)
            assert where, "no [1] in the answer"
            page.evaluate("document.querySelector('#passage-view').dataset.old = '1'")  # gone once it is new
            page.mouse.click(where["x"], where["y"])
            page.wait_for_function("!document.querySelector('#passage-view').dataset.old", timeout=30000)
            page.wait_for_function(IN_VIEW, timeout=10000)
            assert first and "manual.md" in page.locator("#passage").inner_text()

            choose(page, "scope-choice", "paper.pdf")
            ask(page, "Where is customer data kept?")
            page.locator("#comparison .rag-card").filter(has_text="cold store").first.locator(".rag-snippet").click()
            text = opened(page, "cold store")
            assert "paper.pdf" in text and "page 2" in text and "first page" not in text
            page.wait_for_function("(document.querySelector('#passage img') || {}).naturalWidth > 500",
                                   timeout=30000)
            page.screenshot(path=str(SHOTS / "passage-pdf.png"))
            page.evaluate("document.querySelector('#passage-view').dataset.old = '1'")
            where = page.evaluate(CITATION, 1)  # the first answer's [1]: an older answer, whose cards are gone
            page.mouse.click(where["x"], where["y"])
            page.wait_for_timeout(1500)
            assert page.evaluate("document.querySelector('#passage-view').dataset.old") == "1"

            choose(page, "scope-choice", "hostile.md")
            ask(page, "Is customer data kept?")
            page.locator("#comparison .rag-card").filter(has_text="window.pwned=2").first.locator(".rag-source").click()
            text = opened(page, "window.pwned=2")
            assert "<script>window.pwned=2</script>" in text and '<img src=x onerror="window.pwned=1">' in text
            assert page.evaluate("window.pwned") is None
            assert page.locator("#passage script, #passage a, #passage iframe").count() == 0
            assert page.locator("#passage img").count() == 0

            page.get_by_role("tab", name="Compare").click()  # the Compare tab's cards open theirs in its own viewer
            page.locator("#b-stage").get_by_text("hybrid", exact=True).click()
            page.locator("#compare-question textarea").fill("How long is customer data kept?")
            page.locator("#compare").click()
            page.locator("#overlap").wait_for(timeout=60000)
            card = page.locator("#setup-b .rag-card").first
            heading = card.locator(".rag-heading").inner_text()
            card.locator(".rag-snippet").click()
            text = opened(page, card.locator(".rag-snippet").inner_text().split()[0], "compare-passage")
            assert heading in text or heading == "(no heading)"
            page.screenshot(path=str(SHOTS / "passage-compare.png"))
        finally:
            stop(proc)
