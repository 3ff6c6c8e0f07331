"""The web app: a chat beside the dense and reranked passages, side by side, with their scores.

``build_app(pipeline, library)`` returns the Gradio Blocks and serves nothing; ``python app.py`` launches it (on
GRADIO_SERVER_NAME / GRADIO_SERVER_PORT, which Gradio reads itself). Handlers are thin: they call the pipeline and
the library, and format with ``rag.render``. Named API endpoints: ``/search`` (both rankings), ``/ask`` (an
answer with its sources), both with an optional ``sources`` (document names) to search in, and ``/documents``
(the list of documents); with RAG_MCP (or ``python app.py --mcp``) they are MCP tools as well, described by their
docstrings. The Documents tab is ``rag.ui_documents``; a card or a citation [n] opens its passage in its document
(``rag.ui_passage``). The Evaluate tab scores a labelled set through the same
pipeline (``rag.evaluation``). Every text shown is ``rag.locales``'s: labels as ``gr.I18n`` keys that the browser
translates, what a handler returns in the language of its request (Accept-Language).
"""

from __future__ import annotations

import faulthandler
import logging
import os
import signal
import sys
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

from rag import zerogpu  # first: on a ZeroGPU Space `spaces` must be imported before anything touches CUDA

zerogpu.import_spaces()

import gradio as gr  # noqa: E402
from starlette.middleware import Middleware  # noqa: E402

from rag import render  # noqa: E402
from rag.access import access_note, current_user, may_change_index  # noqa: E402, F401 (the app's access rules)
from rag.errors import RAGError  # noqa: E402
from rag.evalsets import load_set  # noqa: E402
from rag.evaluation import evaluate  # noqa: E402
from rag.generation import Turn  # noqa: E402
from rag.library import Library  # noqa: E402
from rag.locales import LANGS, browser_i18n, error_text, lang_of, t, ui  # noqa: E402
from rag.mcp_auth import McpLogin  # noqa: E402
from rag.pipeline import Pipeline  # noqa: E402
from rag.settings import ROOT, Settings, load_settings  # noqa: E402
from rag.types import Retrieval  # noqa: E402
from rag.ui_chats import build_chat_history  # noqa: E402
from rag.ui_compare import CompareTab, MarksPanel  # noqa: E402
from rag.ui_documents import PROGRESS, DocumentsTab  # noqa: E402
from rag.ui_passage import CARD_CLICK_JS, PassageViewer  # noqa: E402

EXAMPLES = ["Where does Milvus store data?", "How much does Milvus cost?", "Can Milvus run on ARM processors?"]
EVAL_SET = ROOT / "config" / "eval" / "milvus_faq.csv"  # paraphrased questions about the default corpus
EVAL_MODES = ("dense", "hybrid", "rerank")
EVAL_SPLIT = "test"  # the BEIR split asked by default (a name in the data, not a text of the UI)


def _text(content: Any) -> str:
    """The text of a chat message's content, whichever shape Gradio hands it in."""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "".join(part.get("text", "") for part in content if isinstance(part, dict))
    return ""


def to_turns(messages: list[dict[str, Any]]) -> list[Turn]:
    """Earlier (question, answer) pairs from the chat, without the sources lists."""
    turns, question = [], None
    for m in messages or []:
        if m["role"] == "user":
            question = _text(m["content"])
        elif m["role"] == "assistant" and question is not None:
            answer = _text(m["content"])
            for lang in LANGS:  # the sources list starts with its header in the language it was shown in
                answer = answer.split(render.sources_header(lang))[0]
            turns.append(Turn(question, answer))
            question = None
    return turns


def chat_turn(
    pipeline: Pipeline, message: str, chat: list[dict[str, Any]], candidates: float, top_k: float,
    query_instruction: str, rerank_instruction: str, llm_model: str, hybrid: bool | None = None,
    sources: Sequence[str] = (), documents: int | None = None, found: list[Retrieval] | None = None,
    lang: str = "en",
) -> Iterator[tuple[Any, ...]]:
    """One question as the UI shows it: (chat, comparison, chart, timings, cleared question) after each step.

    The dense column comes first while the reranked side says it is reranking, then the reranked one fills in
    (the best so far, "Reranking 4 of 10"), then the streamed answer with its sources. The settings given apply to
    this question only; ``sources`` are the documents it searches (all when empty), of ``documents`` in the index
    (the panel then says "3 of 41 documents"). The final retrieval is appended to ``found`` when it is given. Every
    text is in ``lang`` (``rag.locales``); the LLM answers in the question's language.
    """
    message = (message or "").strip()
    if not message:
        gr.Warning(t(lang, "ask.type_first"))
        yield chat, gr.skip(), gr.skip(), gr.skip(), gr.skip()
        return
    history = to_turns(chat)
    chat = [*chat, {"role": "user", "content": render.md_escape(message)}, {"role": "assistant", "content": ""}]
    start = time.perf_counter()
    # "first_card": from the dense column to the first reranked card (the names: render.TIMING_KEYS)
    parts: dict[str, float | None] = dict.fromkeys(("embed", "search", "first_card", "rerank", "first_token", "total"))

    def show(comparison: str | None = None, chart: str | None = None) -> tuple[Any, ...]:
        """The outputs; None leaves a panel as it is."""
        keep = gr.skip()
        snapshot = [*chat[:-1], dict(chat[-1])]  # the answer message changes after this yield
        return (snapshot, keep if comparison is None else comparison, keep if chart is None else chart,
                render.timings(list(parts.items()), lang), "")

    yield show(render.pending(t(lang, "ask.searching")), "")
    try:
        question = pipeline.generator.standalone_question(message, history, llm_model or None)
        steps = pipeline.retrieve_steps(question, int(candidates), int(top_k), query_instruction or None,
                                        rerank_instruction or None, hybrid, sources)
        scope = render.scope_text(sources, documents, lang) if documents is not None else ""
        ranked = next(steps)  # the first stage; then the reranked column fills in, best so far first
        if ranked.notice:
            gr.Warning(render.notice_text(ranked, lang))
        parts["embed"], parts["search"] = ranked.timings.embed_s, ranked.timings.search_s
        yield show(render.comparison(ranked, reranking=True, scope=scope, lang=lang), render.chart(ranked, lang))
        dense_shown = time.perf_counter()
        for ranked in steps:
            if ranked.reranked and parts["first_card"] is None:
                parts["first_card"] = time.perf_counter() - dense_shown
            parts["rerank"] = ranked.timings.rerank_s if ranked.reranked else None
            yield show(render.comparison(ranked, scope=scope, lang=lang), render.chart(ranked, lang))
        if not ranked.reranked and ranked.notice:
            gr.Warning(render.notice_text(ranked, lang))
        if found is not None:
            found.append(ranked)
        answer = pipeline.generator.stream(message, ranked.passages, history, llm_model or None)
        for _ in answer:
            parts["first_token"] = answer.first_token_s
            chat[-1]["content"] = (answer_text(pipeline, answer, lang) if answer.generated
                                   else render.passages_only(ranked.passages, lang))
            yield show()
        if answer.generated:
            chat[-1]["content"] += render.sources_markdown(ranked.passages, lang)
    except RAGError as exc:
        chat[-1]["content"] = f"⚠ {render.md_escape(error_text(lang, exc))}"
    parts["total"] = time.perf_counter() - start
    yield show()


def answer_text(pipeline: Pipeline, answer: Any, lang: str) -> str:
    """The streamed answer as the chat shows it: the model's text, and a failure or cut line in ``lang``."""
    if answer.tail is None:
        return answer.text
    key, params = answer.tail
    line = pipeline.generator.scrub(t(lang, key, **params))  # the API key blanked out, as in the English line
    return f"{answer.body}\n\n⚠ {line}" if answer.body else f"⚠ {line}"


def evaluation_view(
    pipeline: Pipeline, path: str, split: str = "test", limit: float | None = 0, lang: str = "",
    progress: Any = None, allowed: Sequence[Path] | None = None, ui_lang: str = "en",
) -> tuple[str, str]:
    """(metrics HTML, reranking changes HTML) for a BEIR folder or a CSV, run through the app's pipeline; ``lang``
    is the CSV's language filter, ``ui_lang`` the language the view is in.

    A typed server path must lie under one of ``allowed`` (a hosted app must not read any file a visitor names).
    """
    def report(stage: str, done: int, total: int) -> None:
        if progress is not None:
            embedding = stage == "embedding"
            progress((done, total), desc=t(ui_lang, "eval.embedding" if embedding else "eval.asking"),
                     unit=t(ui_lang, "eval.documents_unit" if embedding else "eval.questions_unit"))

    try:
        if allowed is not None and not any(_inside(Path(path or EVAL_SET), root) for root in allowed):
            raise RAGError(key="eval.outside", roots=", ".join(map(str, allowed)))
        evalset = load_set(path or EVAL_SET, (split or "test").strip(), int(limit or 0) or None, lang.strip() or None)
        result = evaluate(pipeline, evalset, EVAL_MODES, progress=report)
    except RAGError as exc:
        raise gr.Error(error_text(ui_lang, exc)) from None
    return render.eval_metrics(result, ui_lang), render.eval_changes(result, lang=ui_lang)


def eval_roots(settings: Settings) -> list[Path]:
    """The folders the Evaluate tab may read typed paths from: the shipped sets, the data folder, RAG_EVAL_PATHS."""
    extra = [Path(p) for p in settings.eval_paths.split(os.pathsep) if p.strip()]
    return [p.expanduser().resolve() for p in (EVAL_SET.parent, Path(settings.data_dir), *extra)]


def _inside(path: Path, root: Path) -> bool:
    return path.expanduser().resolve().is_relative_to(root)


def label_params(settings: Settings) -> dict[str, Any]:
    """The settings that labels name (the upload limits, the fetch timeout), for ``rag.locales.browser_i18n``."""
    return {"max_files": settings.max_upload_files, "max_file_mb": settings.max_file_mb,
            "max_upload_mb": settings.max_upload_mb, "fetch_timeout_s": settings.fetch_timeout_s}


def build_app(pipeline: Pipeline, library: Library | None = None) -> gr.Blocks:
    settings: Settings = pipeline.settings
    library = library or Library(pipeline)
    documents_tab = DocumentsTab(settings, library)
    viewer, compare_viewer = PassageViewer(pipeline), PassageViewer(pipeline)  # Ask's and Compare's
    compare_tab = CompareTab(settings, pipeline, library)
    ask_marks = MarksPanel(compare_tab.marks, prefix="ask-")

    def respond(
        message: str, chat: list[dict[str, Any]], candidates: float, top_k: float, query_instruction: str,
        rerank_instruction: str, llm_model: str, hybrid: bool, sources: list[str] | None, request: gr.Request,
    ) -> Iterator[tuple[Any, ...]]:
        found: list[Retrieval] = []  # the question's passages, for marking them (MarksPanel)
        for shown in chat_turn(pipeline, message, chat, candidates, top_k, query_instruction, rerank_instruction,
                               llm_model, hybrid, sources or (), len(documents_tab.names()), found,
                               lang_of(request)):
            yield *shown, gr.skip()
        if found:
            yield *(gr.skip() for _ in range(5)), found[-1]

    def run_evaluation(
        path: str, upload: str | None, split: str, limit: float, lang: str, request: gr.Request,
        progress: gr.Progress = PROGRESS,
    ) -> tuple[str, str]:
        allowed = None if upload else eval_roots(settings)
        return evaluation_view(pipeline, upload or path, split, limit, lang, progress, allowed, lang_of(request))

    def run_marks(limit: float, request: gr.Request, progress: gr.Progress = PROGRESS) -> tuple[str, str]:
        """The Evaluate view of the relevance marks made in the Compare tab (RAG_DATA_DIR/marks.csv)."""
        return evaluation_view(pipeline, str(compare_tab.marks.path), "test", limit, "", progress,
                               eval_roots(settings), lang_of(request))

    def status_line(request: gr.Request) -> str:
        return library.status_in(lang_of(request))

    def first_views(request: gr.Request) -> tuple[str, ...]:
        """The panels' first texts in the language of the page's request (built in English, before any request)."""
        lang = lang_of(request)
        return (library.status_in(lang), render.comparison(None, lang=lang), render.timings([], lang),
                render.passage_html(None, lang=lang), render.passage_html(None, lang=lang),
                render.compare_view(None, lang=lang), render.eval_metrics(None, lang))

    def search(question: str, candidates: int = 10, top_k: int = 3, sources: list[str] | None = None) -> dict[str, Any]:
        """Search the documents indexed in this app (by default the Milvus FAQ; the documents tool lists them) for
        the passages that answer a question. Returns the passages found by embedding similarity ("dense") and the
        same passages reordered by a reranker ("reranked", best first, with rerank_score = the probability that the
        passage answers), each with its text, source file or URL (with #page=N for a PDF page), heading and
        document name.

        Args:
            question: the question or search phrase, in natural language.
            candidates: how many passages the first stage finds and the reranker scores (3 to 50).
            top_k: how many of the best passages to return from each ranking (1 to 10).
            sources: search only these documents, by name exactly as the documents tool (the /documents
                endpoint) lists them in "source"; empty or left out: every document.
        """
        try:
            return pipeline.retrieve(question, int(candidates), int(top_k), sources=sources or ()).to_dict()
        except RAGError as exc:
            raise gr.Error(str(exc)) from None

    def ask(question: str, sources: list[str] | None = None) -> dict[str, Any]:
        """Answer a question from the documents indexed in this app (by default the Milvus FAQ): the best
        passages are found and reranked, and an LLM answers from them only, citing them as [1], [2], ... Returns
        the answer, the passages it cites as "sources" (text, source file or URL, heading, scores), and whether an
        LLM wrote it ("generated": false means no LLM is set up and the answer lists the passages instead).

        Args:
            question: the question, in natural language; ask one self-contained question per call.
            sources: answer only from these documents, by name exactly as the documents tool (the /documents
                endpoint) lists them in "source"; empty or left out: every document.
        """
        try:
            retrieval, answer = pipeline.ask(question, sources=sources or ())
            answer.consume()
        except RAGError as exc:
            raise gr.Error(str(exc)) from None
        return {"answer": answer.text, "sources": [h.to_dict() for h in retrieval.passages],
                "generated": answer.generated, "error": answer.error, "finish_reason": answer.finish_reason,
                "timings": {**retrieval.timings.to_dict(), "first_token_s": answer.first_token_s,
                            "generate_s": answer.generate_s}}

    def documents() -> dict[str, Any]:
        """List the documents indexed in this app: each one's name ("source": a file path or a URL, the name that
        search and ask take in their sources argument), format, pages, chunks, characters, when it was added
        (UTC) and who added it.
        """
        try:
            return {"documents": [d.to_dict() for d in library.documents()]}
        except RAGError as exc:
            raise gr.Error(str(exc)) from None

    with gr.Blocks(title=t("en", "app.title")) as demo:  # the page's <title>: one for all, before any request
        gr.Markdown(ui("app.intro"), elem_id="intro")
        status = gr.Markdown(library.status, elem_id="status")
        with gr.Tab(ui("tab.ask")):
            with gr.Row(equal_height=False):
                with gr.Column(scale=5, min_width=360):
                    chatbot = gr.Chatbot(elem_id="chat", height=520, sanitize_html=True, label=ui("ask.chat"),
                                         placeholder=ui("ask.chat_placeholder"))
                    with gr.Row():
                        question = gr.Textbox(placeholder=ui("ask.question"), show_label=False, scale=5,
                                              elem_id="question", max_length=20000, autofocus=True)
                        send = gr.Button(ui("ask.send"), variant="primary", scale=1, elem_id="ask", min_width=80)
                    scope = gr.Dropdown([], value=[], multiselect=True, allow_custom_value=True, elem_id="scope-choice",
                                        label=ui("ask.scope"))
                    gr.Examples(EXAMPLES, inputs=question, label=ui("ask.examples"))
                    timings = gr.HTML(render.timings([]), elem_id="timings")
                    chats = build_chat_history(settings, chatbot, current_user)  # kept chats: rag.ui_chats
                with gr.Column(scale=6, min_width=420):
                    comparison = gr.HTML(render.comparison(None), elem_id="comparison", js_on_load=CARD_CLICK_JS)
                    viewer.build()  # a card or a citation [n] opens its passage here (rag.ui_passage)
                    chart = gr.HTML("", elem_id="chart")
                    with gr.Accordion(ui("ask.marks"), open=False):
                        ask_marks.build()
                        marked = gr.Markdown(elem_id="ask-marked")
            with gr.Accordion(ui("ask.settings"), open=False):
                with gr.Row():
                    candidates = gr.Slider(3, 50, value=settings.candidates, step=1, label=ui("ask.candidates"))
                    top_k = gr.Slider(1, 10, value=settings.top_k, step=1, label=ui("ask.top_k"))
                    llm_model = gr.Textbox(settings.llm_model, label=ui("ask.llm_model"))
                    hybrid = gr.Checkbox(settings.hybrid, label=ui("ask.hybrid"), elem_id="hybrid")
                query_instruction = gr.Textbox(settings.query_instruction, label=ui("ask.query_instruction"))
                rerank_instruction = gr.Textbox(settings.rerank_instruction, label=ui("ask.rerank_instruction"))
        with gr.Tab(ui("tab.compare")):
            compare_tab.build()
            compare_viewer.build("compare-passage")  # a card of either setup opens its passage here
        with gr.Tab(ui("tab.documents")):
            documents_tab.build()
        with gr.Tab(ui("tab.evaluate")):
            gr.Markdown(ui("eval.intro"))
            with gr.Row():
                eval_path = gr.Textbox(str(EVAL_SET), label=ui("eval.path"), scale=4, elem_id="eval-path")
                eval_file = gr.File(file_types=[".csv"], label=ui("eval.upload"), scale=2, height=90)
            with gr.Row():
                eval_split = gr.Textbox(EVAL_SPLIT, label=ui("eval.split"))
                eval_limit = gr.Number(0, precision=0, minimum=0, label=ui("eval.limit"))
                eval_lang = gr.Textbox("", label=ui("eval.lang"))
                eval_run = gr.Button(ui("eval.run"), variant="primary", elem_id="evaluate")
                eval_marks = gr.Button(ui("eval.marks"), elem_id="evaluate-marks")
            eval_metrics = gr.HTML(render.eval_metrics(None), elem_id="eval-metrics")
            eval_changes = gr.HTML("", elem_id="eval-changes")

        inputs = [question, chatbot, candidates, top_k, query_instruction, rerank_instruction, llm_model, hybrid, scope]
        last = gr.State(None)  # the last question's retrieval, for marking its passages
        outputs = [chatbot, comparison, chart, timings, question, last]
        for event in (question.submit, send.click):
            chats.keep(event(respond, inputs, outputs, api_visibility="private", concurrency_limit=4,
                             concurrency_id="chat")).then(ask_marks.for_retrieval, last, ask_marks.passage,
                                                          api_visibility="private", queue=False)
        ask_marks.save.click(ask_marks.mark_retrieval, [last, ask_marks.passage, ask_marks.verdict],
                             [ask_marks.download, marked], api_visibility="private", queue=False)
        documents_tab.wire(demo, scope)
        viewer.wire(comparison)
        compare_viewer.wire(compare_tab.result)
        compare_tab.wire(demo)
        eval_run.click(run_evaluation, [eval_path, eval_file, eval_split, eval_limit, eval_lang],
                       [eval_metrics, eval_changes], api_visibility="private", concurrency_id="evaluate",
                       concurrency_limit=1)
        eval_marks.click(run_marks, [eval_limit], [eval_metrics, eval_changes], api_visibility="private",
                         concurrency_id="evaluate", concurrency_limit=1)
        timer = gr.Timer(1.0)
        timer.tick(status_line, None, status, api_visibility="private", queue=False, show_progress="hidden")
        demo.load(first_views, None, [status, comparison, timings, viewer.panel, compare_viewer.panel,
                                      compare_tab.result, eval_metrics], api_visibility="private", queue=False)
        chats.wire(demo, reset={comparison: lambda lang: render.comparison(None, lang=lang), chart: lambda lang: "",
                                timings: lambda lang: render.timings([], lang)})
        # With RAG_MCP these are MCP tools as well. Gradio's MCP server calls a queued endpoint through an HTTP
        # client of its own, which the login (RAG_AUTH) turns away; an endpoint off the queue it calls in-process,
        # after rag.mcp_auth has checked the MCP client's login. So with MCP they run off the queue (the pipeline's
        # lock still runs one model call at a time).
        queued = not settings.mcp
        gr.api(search, api_name="search", concurrency_limit=4, concurrency_id="chat", queue=queued)
        gr.api(ask, api_name="ask", concurrency_limit=4, concurrency_id="chat", queue=queued)
        gr.api(documents, api_name="documents", concurrency_limit=4, concurrency_id="chat", queue=queued)
        gr.api(compare_tab.compare, api_name="compare", concurrency_limit=4, concurrency_id="chat", queue=queued)
    return demo


def main() -> None:
    signal.signal(signal.SIGTERM, signal.default_int_handler)  # docker stop, a Space restart: close like Ctrl-C
    if hasattr(signal, "SIGUSR1"):  # kill -USR1 <pid>: every thread's stack to stderr (not on Windows)
        faulthandler.register(signal.SIGUSR1, all_threads=True)
    logging.basicConfig(format="%(asctime)s %(name)s: %(message)s", level=logging.WARNING)
    logging.getLogger("rag").setLevel(logging.INFO)  # the library's start-up lines; not every HTTP request
    try:
        settings = load_settings(**({"mcp": True} if "--mcp" in sys.argv[1:] else {}))
    except RAGError as exc:
        sys.exit(f"error: {exc}")
    try:
        pipeline = zerogpu.make_pipeline(settings)  # on ZeroGPU this places both models now, before launch
    except RAGError as exc:
        sys.exit(f"error: {exc}")
    library = Library(pipeline)
    demo = build_app(pipeline, library)
    # Up to 4 chat/API requests run at once (concurrency_id "chat"); the pipeline serialises the model calls
    # themselves, so the 4 overlap only in Milvus and the LLM stream. 64 more wait in the queue, in order.
    demo.queue(max_size=64, default_concurrency_limit=4)
    # With RAG_MCP, /search and /ask are MCP tools too, at /gradio_api/mcp/, behind the same login (rag.mcp_auth).
    middleware = [Middleware(McpLogin, logins=settings.logins())] if settings.mcp else []
    # i18n: the labels in the browser's language; "settings" in the footer is Gradio's panel with its language switch
    demo.launch(css=render.CSS, theme=gr.themes.Soft(), show_error=False, footer_links=["api", "settings"],
                i18n=browser_i18n(**label_params(settings)),
                auth=settings.logins() or None, auth_message=t("en", "app.login"),
                max_file_size=int(settings.max_upload_mb * 1e6), mcp_server=settings.mcp,
                app_kwargs={"middleware": middleware}, prevent_thread_lock=True)
    library.start()  # after launch: the page answers while it indexes, and ZeroGPU has packed the models by now
    demo.block_thread()


if __name__ == "__main__":
    main()
