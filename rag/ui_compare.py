"""The Compare tab: one question through setup A and setup B, side by side, with relevance marks and their
metrics.

``CompareTab(settings, pipeline, library)``: ``build()`` lays the tab out (inside ``gr.Tab``), ``wire(demo)``
connects it. A run is ``rag.compare.compare`` (no LLM); the view is ``rag.render.compare_view``. Marks go to
``RAG_DATA_DIR/marks.csv`` (``rag.marks``) and the metrics beside each setup are ``rag.evaluation``'s over them,
so they are what ``rag eval --marks`` computes for that question. ``compare(question, a, b)`` is the ``/compare``
endpoint (and MCP tool). ``MarksPanel`` is the marking control, which the Ask tab uses too. Texts are
``rag.locales``'s, in the language of the request.

Leaves out: the comparison itself (``rag.compare``) and the other tabs (``app.py``).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import gradio as gr

from rag import render
from rag.compare import compare, setup
from rag.errors import RAGError
from rag.evalsets import marks_set
from rag.evaluation import question_scores
from rag.library import Library
from rag.locales import error_text, lang_of, t, ui
from rag.marks import Marks
from rag.pipeline import Pipeline
from rag.settings import Settings
from rag.types import FIRST_STAGES, Comparison, Hit, Retrieval
from rag.ui_passage import CARD_CLICK_JS

VERDICTS = {"relevant": True, "not_relevant": False, "unmark": None}  # the Mark radio's values
VERDICT_KEYS = {verdict: f"marks.{verdict}" for verdict in VERDICTS}  # their labels


class MarksPanel:
    """Mark a shown passage relevant, not relevant, or unmark it, for the question it was found for; and download
    the marks. The Compare tab and the Ask tab each have one (``prefix`` keeps their element ids apart)."""

    def __init__(self, marks: Marks, prefix: str = "") -> None:
        self.marks, self.prefix = marks, prefix

    def build(self) -> None:
        with gr.Row():
            self.passage = gr.Dropdown([], label=ui("marks.passage"), scale=4, elem_id=f"{self.prefix}mark-choice")
            self.verdict = gr.Radio([(ui(VERDICT_KEYS[v]), v) for v in VERDICTS], value=next(iter(VERDICTS)),
                                    label=ui("marks.verdict"), scale=2, elem_id=f"{self.prefix}mark-verdict")
            self.save = gr.Button(ui("marks.save"), scale=1, elem_id=f"{self.prefix}mark", min_width=80)
        self.download = gr.DownloadButton(ui("marks.download"), visible=self.marks.path.exists(),
                                          value=str(self.marks.path) if self.marks.path.exists() else None,
                                          elem_id=f"{self.prefix}marks-download")

    @staticmethod
    def choices(found: list[tuple[Hit, str]], lang: str = "en") -> Any:
        """The passages to choose from: (hit, where it was shown) pairs."""
        return gr.update(choices=[(t(lang, "marks.choice", where=where, heading=h.heading or t(lang, "card.no_heading"),
                                     source=render.short_source(h.source)), h.id) for h, where in found], value=None)

    def apply(self, question: str, hits: list[Hit], passage: str | None, verdict: str, lang: str = "en") -> Any:
        """Save the mark; the download button's update."""
        hit = next((h for h in hits if h.id == passage), None) if passage else None
        if hit is None:
            raise gr.Error(t(lang, "marks.ask_first"))
        self.marks.mark(question, hit, VERDICTS[verdict])
        return gr.update(value=str(self.marks.path), visible=True)

    def for_retrieval(self, found: Retrieval | None, request: gr.Request) -> Any:
        """The passages of an Ask-tab answer: both columns' top-k."""
        if found is None:
            return gr.skip()
        lang = lang_of(request)
        shown = {h.id: (h, t(lang, "marks.dense_at", rank=h.dense_rank)) for h in found.dense}
        for i, h in enumerate(found.reranked, 1):
            at = t(lang, "marks.reranked_at", rank=i)
            shown[h.id] = (h, f"{shown[h.id][1]} · {at}" if h.id in shown else at)
        return self.choices(list(shown.values()), lang)

    def mark_retrieval(self, found: Retrieval | None, passage: str | None, verdict: str,
                       request: gr.Request) -> tuple[Any, str]:
        lang = lang_of(request)
        if found is None:
            raise gr.Error(t(lang, "marks.ask_question_first"))
        hits = [*found.dense, *found.reranked]
        update = self.apply(found.question, hits, passage, verdict, lang)
        hit = next(h for h in hits if h.id == passage)
        return update, t(lang, "marks.marked", heading=render.md_escape(hit.heading or t(lang, "card.no_heading")),
                         verdict=t(lang, VERDICT_KEYS[verdict]), question=render.md_escape(found.question))


class CompareTab:
    def __init__(self, settings: Settings, pipeline: Pipeline, library: Library) -> None:
        self.settings, self.pipeline, self.library = settings, pipeline, library
        self.marks = Marks(Path(settings.data_dir) / "marks.csv")
        self.panel = MarksPanel(self.marks)

    # -- handlers ----------------------------------------------------------------------------------------------
    def compare(
        self, question: str, a: dict[str, Any] | None = None, b: dict[str, Any] | None = None
    ) -> dict[str, Any]:
        """Compare two retrieval setups on one question, without an LLM: the question goes through setup A and setup
        B, and each one's result is the JSON of /search plus its "setup"; "overlap" is the share of the top-k the two
        final rankings have in common.

        Args:
            question: the question, in natural language.
            a: setup A: any of stage ("dense", "bm25", "hybrid"), candidates, top_k, rerank (true/false),
                query_instruction, rerank_instruction, sources (document names from /documents); keys left out
                take the app's settings.
            b: setup B, with the same keys.
        """
        try:
            found = compare(self.pipeline, question, setup(self.settings, a), setup(self.settings, b))
        except RAGError as exc:
            raise gr.Error(str(exc)) from None
        return found.to_dict()

    def view(self, c: Comparison | None, lang: str = "en") -> str:
        """The comparison with the marks of its question and, where any is relevant, each setup's metrics."""
        if c is None:
            return render.compare_view(None, lang=lang)
        marks = self.marks.of(c.question)
        evalset = marks_set(self.marks.all(), question=c.question)
        scores = {}
        if evalset.queries:
            qid = next(iter(evalset.queries))
            for side, r, s in (("a", c.a, c.setup_a), ("b", c.b, c.setup_b)):
                ranking = r.reranked_all if r.reranked else r.candidates
                scores[side] = question_scores(evalset, qid, ranking, s.top_k)
        return render.compare_view(c, marks, scores, lang)

    def run(self, question: str, *values: Any, lang: str = "en") -> tuple[Any, ...]:
        """(view, the comparison kept for marking, the passages to mark), in ``lang``."""
        half = len(values) // 2
        try:
            found = compare(self.pipeline, question or "", self._setup(values[:half]), self._setup(values[half:]))
        except RAGError as exc:
            raise gr.Error(error_text(lang, exc)) from None
        for r in (found.a, found.b):
            if r.notice:
                gr.Warning(render.notice_text(r, lang))
        shown = [(h, t(lang, "marks.both_at", a=a or "–", b=b or "–")) for h, a, b in found.moves()]
        return self.view(found, lang), found, self.panel.choices(shown, lang)

    def on_run(self, request: gr.Request, question: str, *values: Any) -> tuple[Any, ...]:
        """``run`` in the language of the request (Gradio passes a request only to a parameter before ``*values``)."""
        return self.run(question, *values, lang=lang_of(request))

    def _setup(self, values: tuple[Any, ...]) -> Any:
        stage, candidates, top_k, rerank, query_instruction, rerank_instruction, sources = values
        return setup(self.settings, {"stage": stage, "candidates": candidates, "top_k": top_k, "rerank": bool(rerank),
                                     "query_instruction": query_instruction, "rerank_instruction": rerank_instruction,
                                     "sources": sources or ()})

    def mark(self, found: Comparison | None, passage: str | None, verdict: str,
             request: gr.Request) -> tuple[Any, ...]:
        """Mark the chosen passage for the compared question (or unmark it); the view shows the new metrics."""
        lang = lang_of(request)
        if found is None:
            raise gr.Error(t(lang, "marks.compare_first"))
        update = self.panel.apply(found.question, [h for h, _, _ in found.moves()], passage, verdict, lang)
        return self.view(found, lang), update

    def names(self) -> Any:
        try:
            names = [d.source for d in self.library.documents()]
        except RAGError:
            names = []
        return [gr.update(choices=names) for _ in range(2)]

    # -- layout and events ---------------------------------------------------------------------------------------
    def build(self) -> None:
        s = self.settings
        gr.Markdown(ui("compare_tab.intro"))
        with gr.Row():
            self.question = gr.Textbox(placeholder=ui("compare_tab.question"), show_label=False, scale=5,
                                       elem_id="compare-question", max_length=20000)
            self.go = gr.Button(ui("compare_tab.go"), variant="primary", scale=1, elem_id="compare", min_width=80)
        self.controls: list[Any] = []
        stages = [(ui(f"stage.{stage}.choice"), stage) for stage in FIRST_STAGES]
        with gr.Row():
            for side, stage in (("a", "hybrid" if s.hybrid else "dense"), ("b", "hybrid" if not s.hybrid else "dense")):
                with gr.Column(), gr.Accordion(ui(f"compare_tab.setup_{side}"), open=True):
                    self.controls += [
                        gr.Radio(stages, value=stage, label=ui("compare_tab.first_stage"), elem_id=f"{side}-stage"),
                        gr.Slider(3, 100, value=s.candidates, step=1, label=ui("ask.candidates")),
                        gr.Slider(1, 20, value=s.top_k, step=1, label=ui("ask.top_k")),
                        gr.Checkbox(True, label=ui("compare_tab.rerank"), elem_id=f"{side}-rerank"),
                        gr.Textbox(s.query_instruction, label=ui("ask.query_instruction")),
                        gr.Textbox(s.rerank_instruction, label=ui("ask.rerank_instruction")),
                        gr.Dropdown([], value=[], multiselect=True, allow_custom_value=True, elem_id=f"{side}-sources",
                                    label=ui("compare_tab.sources")),
                    ]
        self.result = gr.HTML(render.compare_view(None), elem_id="comparison-ab", js_on_load=CARD_CLICK_JS)
        self.found = gr.State(None)
        self.panel.build()

    def wire(self, demo: gr.Blocks) -> None:
        private: dict[str, Any] = {"api_visibility": "private"}
        for event in (self.question.submit, self.go.click):
            event(self.on_run, [self.question, *self.controls], [self.result, self.found, self.panel.passage],
                  concurrency_limit=4, concurrency_id="chat", **private)
        self.panel.save.click(self.mark, [self.found, self.panel.passage, self.panel.verdict],
                              [self.result, self.panel.download], queue=False, **private)
        sources = [self.controls[6], self.controls[13]]
        demo.load(self.names, None, sources, queue=False, **private)
