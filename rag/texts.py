"""The converted text of every document, kept when it is ingested, and the passage found in it.

``Texts(data_dir, collection)`` keeps one JSON file per document under ``data_dir/texts/<collection hash>/``, named
by a hash of the document's name (a name is untrusted data and never a path), holding the name and its Markdown per
page (a PDF's pages as ``name#page=N``), and beside it a copy of the PDF when the document is one, so the document
view (``rag.ui_passage``) shows a URL as it was fetched and a PDF's page, and nothing depends on the original file
still being there. The pipeline's ingest writes it; removing a document (``Library.remove``, ``--sync``), clearing
or rebuilding the index removes it.

``locate(text, chunk)`` finds a chunk's text (its first line may be its heading, as ``chunk_document`` writes it) in
a page: the text before, the passage, the text after.

Leaves out: HTML (``rag.render.passage_html``), the PDF page's image (``rag.pageimage``) and the UI.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
from collections.abc import Sequence
from pathlib import Path

from rag.types import Document, DocumentText, PassageView

CONTEXT_CHARS = 20_000  # text shown before and after a passage; the rest of a very long page is left out
_PAGE = re.compile(r"#(?:page|slide)=(\d+)$")


def _key(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:32]


class Texts:
    def __init__(self, data_dir: str | Path, collection: str) -> None:
        self.root = Path(data_dir) / "texts" / _key(collection)

    def _path(self, name: str, suffix: str = ".json") -> Path:
        return self.root / f"{_key(name)}{suffix}"

    def save(self, name: str, docs: Sequence[Document], pdf: str | Path | None = None) -> None:
        """Keep the text of document ``name`` (its pages ``docs``, sources as its chunks have them), replacing what
        was kept; with ``pdf``, a copy of that file for its pages' images."""
        self.root.mkdir(parents=True, exist_ok=True)
        pages = [[name + d.source[len(d.origin):] if d.source.startswith(d.origin) else d.source, d.text]
                 for d in docs]
        kept_pdf = self._path(name, ".pdf")
        if pdf is not None and Path(pdf).is_file():
            partial = kept_pdf.with_suffix(".pdf.tmp")
            shutil.copyfile(pdf, partial)
            partial.replace(kept_pdf)
        else:
            kept_pdf.unlink(missing_ok=True)
        target = self._path(name)
        partial = target.with_suffix(".tmp")
        partial.write_text(json.dumps({"name": name, "pages": pages, "pdf": kept_pdf.exists()}, ensure_ascii=False),
                           encoding="utf-8")
        os.replace(partial, target)  # atomic: a reader sees the old text or the new one

    def load(self, name: str) -> DocumentText | None:
        """The kept text of document ``name``; None if none was kept (or the file is another name's: a hash
        collision is checked, not assumed away)."""
        path = self._path(name)
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return None
        if data.get("name") != name:
            return None
        return DocumentText(name, tuple((s, t) for s, t in data["pages"]), bool(data.get("pdf")))

    def pdf(self, name: str) -> Path | None:
        """The kept copy of document ``name``'s PDF, if there is one."""
        path = self._path(name, ".pdf")
        return path if path.is_file() else None

    def remove(self, names: Sequence[str]) -> None:
        for name in names:
            self._path(name).unlink(missing_ok=True)
            self._path(name, ".pdf").unlink(missing_ok=True)

    def clear(self) -> None:
        shutil.rmtree(self.root, ignore_errors=True)


def page_of(source: str) -> int | None:
    """The page (or slide) number of a ``#page=N`` / ``#slide=N`` source."""
    m = _PAGE.search(source)
    return int(m.group(1)) if m else None


def _span(text: str, passage: str, heading: str) -> tuple[int, int] | None:
    """(start, end) of ``passage`` in ``text``: the first place after its heading's line if that line is found,
    else the first anywhere; whitespace may differ (a window is cut at breaks and stripped)."""
    start = 0
    if heading:
        line = re.search(rf"^ {{0,3}}#{{1,6}}[ \t]+{re.escape(heading)}[ \t#]*$", text, re.M)
        start = line.end() if line else 0
    for lo in dict.fromkeys((start, 0)):
        at = text.find(passage, lo)
        if at >= 0:
            return at, at + len(passage)
        words = passage.split()
        if words:
            m = re.compile(r"\s+".join(map(re.escape, words))).search(text, lo)
            if m:
                return m.span()
    return None


def locate(kept: DocumentText | None, document: str, source: str, chunk_text: str, heading: str = "",
           context: int = CONTEXT_CHARS) -> PassageView:
    """The chunk ``chunk_text`` (of page ``source``) in its kept document: before, passage, after, and its page.

    The chunk's heading line (``chunk_document`` starts a chunk with its heading and a blank line) is not part of
    the passage searched for; the heading stays in the text before it."""
    page = page_of(source)
    body = chunk_text[len(heading):].lstrip("\n") if heading and chunk_text.startswith(heading) else chunk_text
    if kept is None:
        return PassageView(document, source, chunk_text, page=page, found=False, kept=False)
    texts = dict(kept.pages)
    candidates = [texts[source]] if source in texts else [t for _, t in kept.pages]  # else: every page, in order
    for text in candidates:
        span = _span(text, body.strip(), heading) if body.strip() else None
        if span:
            lo, hi = span
            first, last = max(0, lo - context), min(len(text), hi + context)
            return PassageView(document, source, text[lo:hi], text[first:lo], text[hi:last], page, True,
                               first, len(text) - last)
    return PassageView(document, source, chunk_text, page=page, found=False)
