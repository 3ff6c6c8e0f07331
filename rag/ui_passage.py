"""The document view: a passage opened in its document, from a click on a card or on a citation [n].

``passage_view(pipeline, document, source, text, heading)`` is the HTML of one passage in its document's kept text
(``rag.texts``), highlighted, with the page's image for a PDF (``rag.pageimage``); ``passage_by_id`` finds the
passage by its chunk id first. ``PassageViewer(pipeline)``: ``build()`` adds the panel (call it where the panel
goes) and returns it, ``wire(*panels)`` opens a passage when a card is clicked in any of ``panels`` (HTML
components made with ``js_on_load=CARD_CLICK_JS``, whose cards are ``rag.render``'s, each with its chunk id in
``data-id``). A click on a citation [n] in the chat (``#chat``) clicks the n-th card of the reranked column
(``#rerank-col``), that is, the passages of the latest answer; a citation in an older answer opens nothing.

How a click reaches the server: Gradio 6's ``gr.HTML`` runs ``js_on_load`` with a ``trigger`` function, so the
panel's own ``click`` event carries ``{"passage": chunk id}`` (``gr.EventData``); only the id comes from the
browser, and the chunk is read from the store by it (``MilvusStore.chunks`` looks up only ids of our form). The
panel scrolls its ``<mark>`` into view after each update (``watch('value', ...)``).

Leaves out: finding the passage in the text (``rag.texts``), the HTML itself (``rag.render.passage_html``).
"""

from __future__ import annotations

import base64
import itertools
import logging
from typing import Any

import gradio as gr

from rag import render
from rag.errors import RAGError
from rag.locales import error_text, lang_of, t
from rag.pageimage import render_page
from rag.pipeline import Pipeline
from rag.texts import locate

log = logging.getLogger(__name__)
_OPENED = itertools.count(1)  # each view differs from the one before, so the same passage opened again re-renders

# For an HTML panel of cards: a click on a card (not on its "Full text" toggle, a button or a link inside it) opens
# its passage; installed once per page, a click on a citation [n] in the chat clicks the n-th reranked card.
CARD_CLICK_JS = r"""
element.addEventListener('click', (e) => {
  const card = e.target.closest('.rag-card');
  if (!card || !card.dataset.id || e.target.closest('summary, button, a, input, label, select, textarea')) return;
  trigger('click', {passage: card.dataset.id});
});
if (!window.ragCitationClicks) {
  window.ragCitationClicks = true;
  document.addEventListener('click', (e) => {
    const chat = e.target.closest && e.target.closest('#chat');
    if (!chat || !document.caretRangeFromPoint) return;
    const range = document.caretRangeFromPoint(e.clientX, e.clientY);
    const node = range && range.startContainer;
    if (!node || node.nodeType !== Node.TEXT_NODE) return;
    const answers = chat.querySelectorAll('.message-row.bot-row');  // the cards are the latest answer's
    if (answers.length && !answers[answers.length - 1].contains(node)) return;
    for (const m of node.data.matchAll(/\[(\d{1,2})\]/g)) {
      if (m.index <= range.startOffset && range.startOffset <= m.index + m[0].length) {
        const card = document.querySelectorAll('#rerank-col .rag-card')[Number(m[1]) - 1];
        if (card) card.click();
        return;
      }
    }
  });
}
"""
# For the viewer panel: bring the highlighted passage into view (the page, then the text box) after each update.
SCROLL_JS = r"""
const show = () => {
  const mark = element.querySelector('#passage-mark');
  if (!mark) return;
  element.querySelector('#passage-view').scrollIntoView({block: 'start', behavior: 'instant'});
  const box = element.querySelector('.rag-passage-scroll');
  box.scrollTop = Math.max(0, mark.offsetTop - box.offsetTop - 40);
};
watch('value', show);
show();
"""


def passage_view(pipeline: Pipeline, document: str, source: str, text: str, heading: str = "",
                 lang: str = "en") -> str:
    """The HTML of the passage ``text`` (a chunk of page ``source``) in document ``document``: its kept text,
    highlighted, and for a PDF page its image when a copy of the PDF was kept; in ``lang``."""
    texts = pipeline.texts
    kept = texts.load(document)
    view = locate(kept, document, source, text, heading)
    image, note = "", ""
    pdf = texts.pdf(document) if kept is not None and kept.pdf and view.page else None
    if pdf is not None and view.page:
        cfg = pipeline.settings
        try:
            png = render_page(pdf, view.page, cfg.convert_timeout_s, cfg.convert_memory_mb, passage=view.passage)
            image = "data:image/png;base64," + base64.b64encode(png).decode("ascii")
        except RAGError as exc:
            note = t(lang, "passage.image_failed", detail=error_text(lang, exc))
            log.warning("document view: %s", exc)
    return render.passage_html(view, image, note, lang)


def passage_by_id(pipeline: Pipeline, chunk_id: str, lang: str = "en") -> str:
    """``passage_view`` of the stored chunk ``chunk_id``; raises ``RAGError`` if there is none (removed since?)."""
    found = pipeline.store.chunks([chunk_id])
    if not found:
        raise RAGError(key="passage.gone")
    c = found[0]
    return passage_view(pipeline, c.doc, c.source, c.text, c.heading, lang)


class PassageViewer:
    def __init__(self, pipeline: Pipeline) -> None:
        self.pipeline = pipeline

    def open(self, evt: gr.EventData, request: gr.Request) -> Any:
        data: Any = getattr(evt, "_data", None)
        chunk_id = data.get("passage") if isinstance(data, dict) else None
        if not isinstance(chunk_id, str) or not chunk_id or len(chunk_id) > 64:
            return gr.skip()
        lang = lang_of(request)
        try:
            return f"{passage_by_id(self.pipeline, chunk_id, lang)}<!-- {next(_OPENED)} -->"
        except RAGError as exc:
            raise gr.Error(error_text(lang, exc)) from None

    def build(self, elem_id: str = "passage") -> gr.HTML:
        """The viewer panel, where it is called; one per tab (``elem_id`` tells them apart)."""
        self.panel = gr.HTML(render.passage_html(None), elem_id=elem_id, js_on_load=SCROLL_JS)
        return self.panel

    def wire(self, *panels: gr.HTML) -> None:
        for panel in panels:
            panel.click(self.open, None, self.panel, api_visibility="private", concurrency_limit=4,
                        concurrency_id="passage", show_progress="hidden")
