"""The document view: texts kept on ingest and removed with their document; a passage found and highlighted in a
Markdown file, a PDF page (with its image) and a web page; a hostile document inert in the view."""

from __future__ import annotations

import base64
from html.parser import HTMLParser
from pathlib import Path

import formats
import pytest
from test_web import site  # noqa: F401 (the loopback HTTP server, a fixture)

from rag import render
from rag.errors import RAGError
from rag.library import Library
from rag.pageimage import PageImageError, render_page
from rag.pipeline import Pipeline
from rag.texts import Texts, locate
from rag.types import Document, DocumentText
from rag.ui_passage import passage_by_id, passage_view

DOC = ("# Guide\n\nIntro line.\n\n## Backups\n\nBackups run every night at two.\nThey are kept for thirty days.\n\n"
       "## Restore\n\nRestore from the newest backup first.\n")
HOSTILE = ('# <script>alert(1)</script>\n\n<img src=x onerror="alert(2)"> a [link](javascript:alert(3)) and '
           '<a href="javascript:alert(4)">here</a> <iframe src="http://evil"></iframe> "quoted" & done.\n')
ALLOWED = {"div": {"class", "id"}, "span": {"class", "title"}, "pre": {"class", "id"}, "mark": {"class", "id"},
           "figure": {"class", "id"}, "img": {"src", "alt"}, "figcaption": set()}


class Tags(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.seen: list[tuple[str, dict[str, str | None]]] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.seen.append((tag, dict(attrs)))


def tags(html: str) -> list[tuple[str, dict[str, str | None]]]:
    parser = Tags()
    parser.feed(html)
    return parser.seen


def marked(html: str) -> str:
    """The text inside the <mark> (unescaped)."""
    from html import unescape

    return unescape(html.split('class="rag-passage-mark">', 1)[1].split("</mark>", 1)[0])


def test_locate_finds_the_passage_after_its_heading_with_the_text_around_it() -> None:
    kept = DocumentText("guide.md", (("guide.md", DOC),))
    chunk = "Backups\n\nBackups run every night at two.\nThey are kept for thirty days."
    view = locate(kept, "guide.md", "guide.md", chunk, "Backups")
    assert view.found and view.passage == "Backups run every night at two.\nThey are kept for thirty days."
    assert view.before.endswith("## Backups\n\n") and view.before.startswith("# Guide")
    assert view.after.startswith("\n\n## Restore") and view.page is None
    assert view.before + view.passage + view.after == DOC


def test_locate_tolerates_whitespace_prefers_the_heading_and_cuts_long_pages() -> None:
    text = "# A\n\nsame words here\n\n# B\n\nsame   words\nhere\n\n" + "filler " * 5000
    view = locate(DocumentText("d.md", (("d.md", text),)), "d.md", "d.md", "B\n\nsame words here", "B")
    assert view.found and view.passage == "same   words\nhere" and "# B" in view.before
    cut = locate(DocumentText("d.md", (("d.md", text),)), "d.md", "d.md", "B\n\nsame words here", "B", context=10)
    assert cut.cut_after == len(text) - text.index("here\n\nfiller") - 4 - 10 and len(cut.after) == 10
    missing = locate(DocumentText("d.md", (("d.md", text),)), "d.md", "d.md", "not in it", "")
    assert not missing.found and missing.passage == "not in it" and missing.kept
    assert not locate(None, "d.md", "d.md", "x").kept


def test_a_slide_is_named_as_a_slide_and_a_plain_text_file_has_no_heading_to_skip() -> None:
    kept = DocumentText("deck.pptx", (("deck.pptx#slide=1", "# Intro\n\nhello"),
                                      ("deck.pptx#slide=2", "# Plan\n\nThe plan is to ship.")))
    view = locate(kept, "deck.pptx", "deck.pptx#slide=2", "Plan\n\nThe plan is to ship.", "Plan")
    assert view.page == 2 and view.passage == "The plan is to ship." and "hello" not in view.before
    assert "slide 2" in render.passage_html(view) and "page 2" not in render.passage_html(view)
    notes = "line one\nline two\nline three"
    view = locate(DocumentText("n.txt", (("n.txt", notes),)), "n.txt", "n.txt", "line two\nline three")
    assert (view.before, view.passage, view.after) == ("line one\n", "line two\nline three", "")


def test_a_hostile_document_is_inert_in_the_view(tmp_path: Path) -> None:
    texts = Texts(tmp_path, "c")
    texts.save("<b>evil</b>.md", [Document("/x/<b>evil</b>.md", HOSTILE)])
    body = HOSTILE.split("\n\n", 1)[1].strip()
    view = locate(texts.load("<b>evil</b>.md"), "<b>evil</b>.md", "<b>evil</b>.md", body, "<script>alert(1)</script>")
    html = render.passage_html(view, "data:image/png;base64,AAAA\" onerror=\"alert(5)")
    assert view.found and marked(html) == body
    for tag, attrs in tags(html):  # only the view's own markup: no tag or attribute of the document's
        assert tag in ALLOWED and set(attrs) <= ALLOWED[tag], (tag, attrs)
    assert "<script" not in html and "<iframe" not in html and "<a " not in html and "onerror=\"alert" not in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html and "&lt;b&gt;evil&lt;/b&gt;.md" in html
    assert "img" not in {t for t, _ in tags(html)}  # the bad image URI was refused, not placed


def test_texts_are_kept_by_a_hash_of_the_name_never_as_a_path(tmp_path: Path) -> None:
    texts = Texts(tmp_path / "data", "docs")
    texts.save("../../escape.md", [Document("../../escape.md", "# T\n\nbody")])
    files = list((tmp_path / "data").rglob("*"))
    assert all(f.is_relative_to(tmp_path / "data" / "texts") for f in files)
    assert texts.load("../../escape.md").pages == (("../../escape.md", "# T\n\nbody"),)
    assert texts.load("other.md") is None
    texts.remove(["../../escape.md"])
    assert texts.load("../../escape.md") is None


@pytest.fixture
def library(make_settings, tmp_path: Path, faq_dir: Path) -> Library:
    return Library(Pipeline(make_settings(data_dir=str(tmp_path / "data"), docs=str(faq_dir))))


def yellow(png: bytes) -> int:
    """Pixels of the highlighter's yellow (multiplied over white paper) in a PNG."""
    import io

    from PIL import Image

    image = Image.open(io.BytesIO(png)).convert("RGB")
    return sum(1 for r, g, b in image.getdata() if r > 240 and 210 < g < 235 and b < 90)


def hit_of(library: Library, document: str, words: str):
    found = library.pipeline.dense(words, 20, sources=[document]).candidates
    return next(h for h in found if words in h.text)


def test_texts_kept_on_ingest_shown_highlighted_and_removed_with_the_document(library: Library,
                                                                             tmp_path: Path) -> None:
    guide = tmp_path / "guide.md"
    guide.write_text(DOC)
    paper = formats.pdf(tmp_path / "paper.pdf", ["The first page speaks of vectors.",
                                                 "The second page explains the vault retention rule.",
                                                 "The third page closes."])
    report = library.add([guide, paper])
    assert {d.source for d in report.documents} == {"guide.md", "paper.pdf"}
    texts = library.pipeline.texts
    assert texts.load("guide.md").pages == (("guide.md", DOC),)
    kept = texts.load("paper.pdf")
    assert [s for s, _ in kept.pages] == ["paper.pdf#page=1", "paper.pdf#page=2", "paper.pdf#page=3"] and kept.pdf
    assert texts.pdf("paper.pdf").read_bytes() == paper.read_bytes()

    hit = hit_of(library, "guide.md", "thirty days")
    html = passage_by_id(library.pipeline, hit.id)
    assert "thirty days" in marked(html) and "Restore from the newest backup" in html.split("</mark>")[1]
    assert "Intro line." in html.split("<mark")[0] and 'id="passage-mark"' in html

    hit = hit_of(library, "paper.pdf", "vault retention")
    assert hit.source == "paper.pdf#page=2"
    html = passage_by_id(library.pipeline, hit.id)
    assert "vault retention rule" in marked(html) and "page 2" in html and "first page" not in html
    src = next(a["src"] for t, a in tags(html) if t == "img")
    png = base64.b64decode(src.split(",", 1)[1])
    assert png.startswith(b"\x89PNG") and png == render_page(texts.pdf("paper.pdf"), 2, passage=marked(html))
    assert yellow(png) > 200 and yellow(render_page(texts.pdf("paper.pdf"), 2)) == 0  # the passage marked on it

    store = library.pipeline.store  # an id from the browser is looked up only if it has the form of one
    assert [c.id for c in store.chunks([hit.id])] == [hit.id]
    assert store.chunks([f"{hit.id}'] or id != ['", "x' or 'a'=='a", ""]) == []
    with pytest.raises(RAGError, match="no longer in the index"):
        passage_by_id(library.pipeline, "' or id != '")
    library.remove(["paper.pdf"])
    assert texts.load("paper.pdf") is None and texts.pdf("paper.pdf") is None and texts.load("guide.md")
    guide.write_text(DOC.replace("thirty", "ninety"))  # replaced: the new text is kept
    library.add([guide])
    assert "ninety days" in texts.load("guide.md").pages[0][1]
    library.clear()
    assert texts.load("guide.md") is None


def test_a_passage_of_a_web_page_is_shown_as_fetched(site: str, make_settings, tmp_path: Path) -> None:  # noqa: F811
    library = Library(Pipeline(make_settings(data_dir=str(tmp_path / "data"), allow_private_urls=True)))
    library.add_urls([f"{site}/page.html", f"{site}/paper.pdf"])
    hit = hit_of(library, f"{site}/page.html", "HNSW graph")
    html = passage_by_id(library.pipeline, hit.id)
    assert "Milvus builds an HNSW graph over the vectors it stores." in marked(html) and "# Vector search" in html
    hit = hit_of(library, f"{site}/paper.pdf", "Page two")
    html = passage_view(library.pipeline, hit.document, hit.source, hit.text, hit.heading)
    assert "Page two of it." in marked(html) and "page 2" in html  # a fetched PDF: its page, no image kept
    assert "<img" not in html


def test_a_broken_pdf_costs_its_image_only(tmp_path: Path) -> None:
    bad = tmp_path / "bad.pdf"
    bad.write_bytes(b"%PDF-1.4\n" + bytes(200))
    with pytest.raises(PageImageError, match="page 1 could not be drawn"):
        render_page(bad, 1)
    good = formats.pdf(tmp_path / "one.pdf", ["only page"])
    with pytest.raises(PageImageError, match="has 1 pages, not a page 3"):
        render_page(good, 3)
