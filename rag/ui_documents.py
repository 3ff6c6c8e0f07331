"""The Documents tab: the list of documents in the index, uploads, web pages, remove, clear and rebuild.

``DocumentsTab(settings, library)``: ``build()`` lays the tab out (call it inside ``gr.Tab``), ``wire(demo, scope)``
connects its events, where ``scope`` is the Ask tab's document selector, whose choices follow every change made
here. Handlers are thin: they call ``rag.library`` and format with ``rag.render``. Changing the index (upload,
fetch, remove, clear, rebuild) is checked on the server against RAG_ADMINS (``rag.access``); the disabled buttons
are only a hint. Every text is ``rag.locales``'s: labels as ``gr.I18n`` keys, what a handler returns in the language
of its request.

Leaves out: the library's work itself (``rag.library``) and the other tabs (``app.py``).
"""

from __future__ import annotations

from collections.abc import Callable
from html import escape
from typing import Any

import gradio as gr

from rag import render
from rag.access import access_note, current_user, may_change_index
from rag.documents import SUFFIXES
from rag.errors import RAGError
from rag.library import Library
from rag.locales import error_text, lang_of, t, ui
from rag.settings import Settings
from rag.types import IngestReport, SkippedFile

PROGRESS = gr.Progress()  # a default of this type is how a Gradio handler asks for a progress bar
LIST_ROWS = 200  # rows of the document table shown at once; the filter narrows the rest
STATUS_WORDS = {"added": "docs.added", "replaced": "docs.replaced", "unchanged": "docs.unchanged"}  # locale keys


def skip_reason(s: SkippedFile, lang: str = "en") -> str:
    """Why a file was skipped, in ``lang`` when the reason has a key (else as the loader said it, in English)."""
    return t(lang, s.key, **s.params) if s.key else s.reason


def report_markdown(report: IngestReport, lang: str = "en") -> str:
    """What an upload, fetch or rebuild did: totals, then each document (added, replaced or unchanged) and each
    file skipped with its reason."""
    lines = [t(lang, "docs.report", added=report.chunks_added, files=report.files, skipped=report.chunks_skipped,
               seconds=report.seconds)]
    lines += [t(lang, "docs.document_line", status=t(lang, STATUS_WORDS[d.status]) if d.status in STATUS_WORDS
                else d.status, source=render.md_escape(d.source), chunks=d.chunks) for d in report.documents]
    lines += [t(lang, "docs.skipped_line", path=render.md_escape(s.path), reason=render.md_escape(skip_reason(s, lang)))
              for s in report.skipped_files]
    return "\n".join(lines)


class DocumentsTab:
    def __init__(self, settings: Settings, library: Library) -> None:
        self.settings = settings
        self.library = library

    # -- handlers ----------------------------------------------------------------------------------------------
    def stats_markdown(self, lang: str = "en") -> str:
        try:
            s = self.library.stats()
        except RAGError as exc:
            return f"⚠ {render.md_escape(error_text(lang, exc))}"
        return t(lang, "docs.stats", chunks=s["chunks"], collection=s["collection"],
                 embedding_model=s["embedding_model"], dimension=s["dimension"] or "–",
                 reranker_model=s["reranker_model"], uri=s["uri"], device=s["device"], uploads=s["uploads"])

    def listing(self, query: str = "", lang: str = "en") -> str:
        """The table of documents whose name contains ``query`` (case-insensitive)."""
        try:
            docs = self.library.documents()
        except RAGError as exc:
            return f'<div class="rag-empty">⚠ {escape(error_text(lang, exc))}</div>'
        q = (query or "").strip().lower()
        matching = [d for d in docs if q in d.source.lower()] if q else docs
        return render.documents_table(matching, len(docs), LIST_ROWS, lang)

    def on_filter(self, query: str, request: gr.Request) -> str:
        return self.listing(query, lang_of(request))

    def on_refresh(self, query: str, request: gr.Request) -> tuple[Any, ...]:
        return self.refreshed(query, lang_of(request))

    def names(self) -> list[str]:
        try:
            return [d.source for d in self.library.documents()]
        except RAGError:
            return []

    def refreshed(self, query: str = "", lang: str = "en") -> tuple[Any, ...]:
        """(table, stats, remove choices, Ask-tab scope choices) after a change; selections that are gone drop."""
        names = self.names()
        return (self.listing(query, lang), self.stats_markdown(lang), gr.update(choices=names, value=[]),
                gr.update(choices=names))

    def prune(self, chosen: list[str] | None) -> Any:
        """The Ask tab's selection less the documents that are no longer in the index."""
        names = set(self.names())
        return gr.update(value=[n for n in chosen or [] if n in names])

    def require_admin(self, request: gr.Request | None, profile: gr.OAuthProfile | None) -> str | None:
        """The signed-in user, who must be allowed to change the index (else a ``gr.Error`` says who may)."""
        user = current_user(request, profile)
        if not may_change_index(self.settings, user):
            raise gr.Error(t(lang_of(request), "docs.admin_only"))
        return user

    def access_view(self, request: gr.Request, profile: gr.OAuthProfile | None) -> tuple[Any, ...]:
        user = current_user(request, profile)
        allowed = may_change_index(self.settings, user)
        return (access_note(self.settings, user, lang_of(request)),
                *(gr.update(interactive=allowed) for _ in self.guarded))

    def _changing(self, work: Callable[[str | None, Any], IngestReport]) -> Callable[..., tuple[Any, ...]]:
        """A handler that checks the user, runs ``work(user, progress)`` and shows its report and the new list."""

        def handler(query: str, *args: Any) -> tuple[Any, ...]:
            *inputs, request, profile, progress = args
            user = self.require_admin(request, profile)
            lang = lang_of(request)
            desc, unit = t(lang, "docs.embedding"), t(lang, "docs.chunks_unit")
            bar = (lambda d, n: progress((d, n), desc=desc, unit=unit)) if progress is not None else None
            try:
                report = work(user, bar, *inputs)
            except RAGError as exc:
                raise gr.Error(error_text(lang, exc)) from None
            return report_markdown(report, lang), *self.refreshed(query, lang)

        return handler

    def upload(self, query: str, files: list[str] | None, request: gr.Request, profile: gr.OAuthProfile | None,
               progress: gr.Progress = PROGRESS) -> tuple[Any, ...]:
        if not files:
            raise gr.Error(t(lang_of(request), "docs.choose_files"))
        return self._changing(lambda user, bar, f: self.library.add(f, progress=bar, user=user or ""))(
            query, files, request, profile, progress)

    def fetch(self, query: str, text: str, request: gr.Request, profile: gr.OAuthProfile | None,
              progress: gr.Progress = PROGRESS) -> tuple[Any, ...]:
        return self._changing(
            lambda user, bar, t: self.library.add_urls((t or "").splitlines(), progress=bar, user=user or ""))(
            query, text, request, profile, progress)

    def rebuild(self, query: str, request: gr.Request, profile: gr.OAuthProfile | None,
                progress: gr.Progress = PROGRESS) -> tuple[Any, ...]:
        return self._changing(lambda user, bar: self.library.rebuild(progress=bar))(query, request, profile, progress)

    def remove(self, query: str, names: list[str] | None, request: gr.Request,
               profile: gr.OAuthProfile | None) -> tuple[Any, ...]:
        self.require_admin(request, profile)
        lang = lang_of(request)
        if not names:
            raise gr.Error(t(lang, "docs.choose_remove"))
        try:
            done = self.library.remove(names)
        except RAGError as exc:
            raise gr.Error(error_text(lang, exc)) from None
        lines = [t(lang, "docs.removed", name=render.md_escape(n), chunks=c) for n, c in done.removed.items()]
        lines += [t(lang, "docs.not_in_index", name=render.md_escape(n)) for n in done.unknown]
        return "\n\n".join(lines), *self.refreshed(query, lang)

    def clear(self, query: str, request: gr.Request, profile: gr.OAuthProfile | None) -> tuple[Any, ...]:
        self.require_admin(request, profile)
        self.library.clear()
        lang = lang_of(request)
        return t(lang, "docs.cleared"), *self.refreshed(query, lang)

    # -- layout and events ---------------------------------------------------------------------------------------
    def build(self) -> None:
        settings = self.settings
        if settings.hf_oauth:
            gr.LoginButton()
        self.access = gr.Markdown(elem_id="access")
        self.stats = gr.Markdown(elem_id="stats")
        with gr.Row():
            self.query = gr.Textbox(placeholder=ui("docs.filter"), show_label=False, scale=4, elem_id="doc-filter",
                                    max_length=2000)
            self.refresh = gr.Button(ui("docs.refresh"), scale=1, elem_id="doc-refresh", min_width=80)
        self.table = gr.HTML(render.documents_table([], 0, LIST_ROWS), elem_id="documents")
        with gr.Row():
            self.chosen = gr.Dropdown([], value=[], multiselect=True, scale=4, elem_id="remove-choice",
                                      label=ui("docs.remove_choice"))
            self.remove_btn = gr.Button(ui("docs.remove"), variant="stop", scale=1, elem_id="remove", min_width=80)
        # the limits in these labels are filled in by rag.locales.browser_i18n (app.label_params)
        self.files = gr.File(file_count="multiple", file_types=[*SUFFIXES, ".zip"], label=ui("docs.upload"))
        with gr.Row():
            self.urls = gr.Textbox(label=ui("docs.urls_private" if settings.allow_private_urls else "docs.urls"),
                                   lines=2, max_lines=8, scale=4, elem_id="urls")
            self.fetch_btn = gr.Button(ui("docs.fetch"), scale=1, elem_id="fetch")
        with gr.Row():
            self.add = gr.Button(ui("docs.add"), variant="primary", elem_id="add")
            self.clear_btn = gr.Button(ui("docs.clear"), variant="stop", elem_id="clear")
            self.rebuild_btn = gr.Button(ui("docs.rebuild"), elem_id="rebuild")
        self.report = gr.Markdown(elem_id="report")
        # what only an admin may use (RAG_ADMINS); disabled for others on page load
        self.guarded = [self.files, self.add, self.clear_btn, self.rebuild_btn, self.urls, self.fetch_btn,
                        self.chosen, self.remove_btn]

    def wire(self, demo: gr.Blocks, scope: gr.Dropdown) -> None:
        after = [self.report, self.table, self.stats, self.chosen, scope]
        private: dict[str, Any] = {"api_visibility": "private", "concurrency_id": "library"}
        changes = [
            self.add.click(self.upload, [self.query, self.files], after, concurrency_limit=1, **private),
            self.fetch_btn.click(self.fetch, [self.query, self.urls], after, concurrency_limit=1, **private),
            self.remove_btn.click(self.remove, [self.query, self.chosen], after, **private),
            self.clear_btn.click(self.clear, [self.query], after, **private),
            self.rebuild_btn.click(self.rebuild, [self.query], after, **private),
        ]
        for change in changes:
            change.success(self.prune, [scope], [scope], api_visibility="private", queue=False)
        listed = [self.table, self.stats, self.chosen, scope]
        for event in (self.query.submit, self.refresh.click):
            event(self.on_refresh, [self.query], listed, api_visibility="private", queue=False)
        self.query.change(self.on_filter, [self.query], self.table, api_visibility="private", queue=False,
                          show_progress="hidden")
        demo.load(self.on_refresh, [self.query], listed, api_visibility="private", queue=False)
        demo.load(self.access_view, None, [self.access, *self.guarded], api_visibility="private", queue=False)
