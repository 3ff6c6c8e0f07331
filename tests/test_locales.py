"""The UI's languages: the three tables agree, no UI text is written outside them, and what the server renders comes
out in the language of the request (its Accept-Language header, on a real ``gr.Request``)."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import gradio as gr
import pytest

from rag import locales
from rag.locales import LANGS, lang_of, t
from rag.settings import ROOT

UI_FILES = [ROOT / "app.py", *sorted((ROOT / "rag").glob("ui_*.py")), ROOT / "rag" / "render.py",
            ROOT / "rag" / "access.py"]
TEXT_KWARGS = {"label", "placeholder", "info", "value", "title", "description", "desc", "unit", "auth_message"}
# Simplified forms that a zh-TW text must not hold, and their traditional forms that a zh-CN text must not hold.
SIMPLIFIED = "们这个与为网页设对话档资来选择说结标题无检询问载录应"
TRADITIONAL = "們這個與為網頁設對話檔資來選擇說結標題無檢詢問載錄應"
SAME_IN_CHINESE = re.compile(r"^[\sA-Za-z0-9_@#{}()\[\]:.,+\-–·/*`'\"=|]*$")  # names and symbols only: IP, BM25, Top-k


def request(accept_language: str | None) -> gr.Request:
    """A ``gr.Request`` as a queued event gets it: built from its headers."""
    return gr.Request(headers={} if accept_language is None else {"accept-language": accept_language})


# -- the tables -----------------------------------------------------------------------------------------------------
def test_every_key_is_in_every_table_with_the_same_placeholders() -> None:
    en = locales.table("en")
    assert len(en) > 200
    for lang in LANGS:
        table = locales.table(lang)
        assert set(table) == set(en), (lang, set(en) ^ set(table))
        for key, text in table.items():
            assert text.strip(), (lang, key)
            assert locales.placeholders(text) == locales.placeholders(en[key]), (lang, key)
            text.format(**dict.fromkeys(locales.placeholders(text), 1))  # the format specs fit a number
            assert not re.search(r"<[A-Za-z/]", text), (lang, key)  # the browser's gr.I18n parses tags


def test_the_chinese_tables_are_translated_and_each_in_its_own_script() -> None:
    en, tw, cn = (locales.table(lang) for lang in LANGS)
    for key in en:
        if not SAME_IN_CHINESE.match(en[key]):  # prose, not only names and symbols
            assert tw[key] != en[key] and cn[key] != en[key], key
        assert not set(tw[key]) & set(SIMPLIFIED), (key, tw[key])
        assert not set(cn[key]) & set(TRADITIONAL), (key, cn[key])
    assert tw["tab.documents"] == "文件" and cn["tab.documents"] == "文档"
    assert "搜尋" in tw["ask.scope"] and "搜索" in cn["ask.scope"] and "重新排序" in tw["compare_panel.reranked"]
    assert "重排序" in cn["compare_panel.reranked"] and "設定" in tw["ask.settings"] and "设置" in cn["ask.settings"]


def test_a_key_missing_from_every_table_fails_and_params_are_filled() -> None:
    with pytest.raises(KeyError):
        t("zh-TW", "no.such.key")
    with pytest.raises(KeyError):
        locales.ui("no.such.key")
    assert t("en", "compare_panel.reranking_of", done=4, total=10) == "Reranking 4 of 10…"
    assert t("fr", "tab.ask") == "Ask"  # a language without a table gets English


# -- the language of a request ----------------------------------------------------------------------------------------
@pytest.mark.parametrize(("header", "lang"), [
    ("zh-TW,zh;q=0.9", "zh-TW"), ("zh-CN,zh;q=0.9", "zh-CN"), ("en-US,en;q=0.9", "en"), ("zh-HK", "zh-TW"),
    ("zh-Hant", "zh-TW"), ("zh-Hant-HK,zh;q=0.8", "zh-TW"), ("zh-MO", "zh-TW"), ("zh_TW", "zh-TW"),
    ("zh-Hans-CN", "zh-CN"), ("zh-SG", "zh-CN"), ("zh", "zh-CN"), ("ZH-tw", "zh-TW"),
    ("en;q=0.5, zh-TW;q=0.9", "zh-TW"), ("fr-FR,zh-TW;q=0.8", "en"), ("zh-TW;q=0, zh-CN;q=0.5", "zh-CN"),
    ("*", "en"), ("de", "en"), ("", "en"), (None, "en"), ("zh-TW;q=abc", "en"),
])
def test_the_language_comes_from_accept_language(header: str | None, lang: str) -> None:
    assert lang_of(request(header)) == lang


def test_no_request_is_english() -> None:
    assert lang_of(None) == "en" and lang_of(gr.Request()) == "en"


# -- no UI text outside the tables ---------------------------------------------------------------------------------
PROSE = re.compile(r"[A-Za-z]{3,}[,.;:!?]?\s+[A-Za-z]{2,}")  # two words (numbers and {fields} taken out)
ALLOWED = {  # (file, text): text the UI shows that is not ours to translate
    ("app.py", "Where does Milvus store data?"), ("app.py", "How much does Milvus cost?"),
    ("app.py", "Can Milvus run on ARM processors?"),  # example questions about the (English) default corpus
    ("render.py", "first stage"),  # a value of Comparison.shared (the /compare JSON), mapped to its key
}


def _literal(node: ast.AST) -> str | None:
    """The text of a string literal or f-string (its fields as {}), else None."""
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return node.value
    if isinstance(node, ast.JoinedStr):
        return "".join(v.value if isinstance(v, ast.Constant) else "{}" for v in node.values)
    return None


def _outside_tags(text: str) -> str:
    text = re.sub(r"<[^<>]*>", " ", text)
    return re.sub(r"^[^<]*>|<[^>]*$", " ", text)  # a tag cut at the literal's end or start


def ui_text(source: str, name: str = "x.py") -> list[tuple[int, str]]:
    """(line, text) of every string in ``source`` that the UI would show without a table: a literal given to a
    Gradio component or toast as its text, any literal that reads as prose, and any text between HTML tags."""
    tree = ast.parse(source)
    skip: set[int] = set()  # ids of nodes that are not UI text: docstrings, JS and CSS, log lines, locale keys
    for node in ast.walk(tree):
        if isinstance(node, (ast.Module, ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)) and node.body:
            first = node.body[0]
            if isinstance(first, ast.Expr) and _literal(first.value) is not None:
                skip.add(id(first.value))
        if isinstance(node, (ast.Assign, ast.AugAssign)):
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            if any(isinstance(x, ast.Name) and (x.id.endswith("_JS") or x.id == "CSS") for x in targets):
                skip.update(id(n) for n in ast.walk(node.value))
        if isinstance(node, ast.Call):
            func = node.func
            called = func.attr if isinstance(func, ast.Attribute) else func.id if isinstance(func, ast.Name) else ""
            owner = func.value.id if isinstance(func, ast.Attribute) and isinstance(func.value, ast.Name) else ""
            if owner in ("log", "logging") or called in ("t", "ui", "stage_text", "mode_name"):
                skip.update(id(n) for a in node.args[:2] for n in ast.walk(a))
            skip.update(id(n) for k in node.keywords if k.arg == "key" for n in ast.walk(k.value))
    pieces = {id(v) for p in ast.walk(tree) if isinstance(p, ast.JoinedStr) for v in p.values}
    found: list[tuple[int, str]] = []
    for node in ast.walk(tree):
        func = getattr(node, "func", None)
        if isinstance(func, ast.Attribute) and isinstance(func.value, ast.Name) and func.value.id == "gr":
            # gr.Button("Delete"), gr.Warning(f"..."), gr.Tab("Ask") ...
            given = [*node.args, *(k.value for k in node.keywords if k.arg in TEXT_KWARGS)]
            found += [(node.lineno, text) for a in given if (text := _literal(a)) and text.strip()]
        if isinstance(node, ast.Call):  # a progress bar's desc= / unit=, a launch's auth_message=
            found += [(node.lineno, text) for k in node.keywords if k.arg in ("desc", "unit", "auth_message")
                      if (text := _literal(k.value)) and text.strip()]
        text = _literal(node)
        if text is None or id(node) in skip:
            continue
        if id(node) in pieces:
            continue  # a piece of an f-string: the f-string is checked whole
        shown = re.sub(r"\{\}|[0-9]", "", _outside_tags(text))
        if PROSE.search(shown) or ("<" in text and re.search(r"[A-Za-z]{2,}", shown)):
            found.append((node.lineno, text))
    return sorted({(line, text) for line, text in found if (name, text) not in ALLOWED})


def test_no_ui_text_is_written_outside_the_tables() -> None:
    found = {path.name: ui_text(path.read_text(encoding="utf-8"), path.name) for path in UI_FILES}
    assert {name: hits for name, hits in found.items() if hits} == {}


@pytest.mark.parametrize("code", [
    'gr.Button("Delete")', 'gr.Tab("Ask")', 'gr.Textbox(label="Name")', 'gr.Info(f"Removed {n} chunks")',
    'gr.Markdown("Some words here")', 'gr.Error("Nope")', 'def f():\n    return "<th>Document</th>"',
    'def f(n):\n    return f"<div>{n} documents match</div>"', 'x = "The index is empty now."',
    'progress(1, desc="Embedding")', 'def f(x):\n    """Doc."""\n    return f"Reranking {x} of 10"',
])
def test_the_check_finds_ui_text_added_outside_the_tables(code: str) -> None:
    assert ui_text(code), code


@pytest.mark.parametrize("code", [
    'gr.Button(ui("docs.remove"), elem_id="remove", variant="stop")', 'x = t(lang, "compare_panel.empty")',
    'def f():\n    """A docstring, with words."""', 'CSS = ".rag-card { border: 1px solid red; }"',
    'log.warning("document view: %s", exc)', 'y = f\'<div class="rag-pending rag-progress">{escape(p)}</div>\'',
    'raise RAGError(key="error.empty_question")',
])
def test_the_check_lets_keys_and_markup_through(code: str) -> None:
    assert ui_text(code) == [], code


def test_every_key_the_code_names_is_in_the_tables() -> None:
    en = locales.table("en")
    named = set()
    for path in [ROOT / "app.py", *sorted((ROOT / "rag").glob("*.py"))]:
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if not isinstance(node, ast.Call):
                continue
            called = getattr(node.func, "id", getattr(node.func, "attr", ""))
            args = node.args[1:2] if called == "t" else node.args[:1] if called == "ui" else []
            if called == "keyed":  # SkippedFile.keyed(path, key, ...), DefaultCorpus.keyed(paths, root, key, ...)
                args = node.args[1:3]
            args = [*args, *(k.value for k in node.keywords if k.arg == "key")]
            named |= {a.value for a in args if isinstance(a, ast.Constant) and isinstance(a.value, str)}
    assert len(named) > 100 and named - set(en) == set()


# -- server-rendered text in the request's language ----------------------------------------------------------------
EXPECTED = {  # written out here, not looked up: a table that says the wrong thing fails
    "en": {"reranking": "Reranking 4 of 10", "column": "Dense retrieval", "timing": "total",
           "status": "Indexing the default documents from RAG_DOCS (docs): 16 of 62",
           "skipped": "- skipped `tool.exe`: not a format that is read", "empty": "- skipped `empty.md`: empty file",
           "added": "added: `note.md`", "passages": "Generation is off", "metrics": "<th>Reranked</th>",
           "error": "does not exist yet. Add documents first", "scope": "Searched all 5 documents"},
    "zh-TW": {"reranking": "重新排序中：4 / 10", "column": "密集檢索", "timing": "總計",
              "status": "正在為預設文件建立索引（來源：RAG_DOCS（docs））：已嵌入 16 / 62",
              "skipped": "- 已略過 `tool.exe`：不是可讀取的格式", "empty": "- 已略過 `empty.md`：空白檔案",
              "added": "已加入：`note.md`", "passages": "未啟用生成", "metrics": "<th>重新排序</th>",
              "error": "還不存在。請先加入文件", "scope": "已搜尋：全部 5 份文件"},
    "zh-CN": {"reranking": "重排序中：4 / 10", "column": "密集检索", "timing": "总计",
              "status": "正在为默认文档建立索引（来源：RAG_DOCS（docs））：已嵌入 16 / 62",
              "skipped": "- 已跳过 `tool.exe`：不是可读取的格式", "empty": "- 已跳过 `empty.md`：空文件",
              "added": "已添加：`note.md`", "passages": "未启用生成", "metrics": "<th>重排序</th>",
              "error": "尚不存在。请先添加文档", "scope": "已搜索：全部 5 篇文档"},
}
HEADERS = {"en": "en-US,en;q=0.9", "zh-TW": "zh-TW,zh;q=0.9,en;q=0.8", "zh-CN": "zh-CN,zh;q=0.9"}


@pytest.mark.parametrize("lang", LANGS)
def test_server_rendered_text_follows_the_request(lang: str, make_settings, faq_dir: Path, tmp_path: Path) -> None:
    from app import chat_turn, evaluation_view
    from rag.corpus import DefaultCorpus
    from rag.library import Library
    from rag.pipeline import Pipeline
    from rag.ui_documents import DocumentsTab

    want, asked = EXPECTED[lang], request(HEADERS[lang])
    settings = make_settings()  # no LLM: the passages are the answer
    pipeline = Pipeline(settings)
    library = Library(pipeline)
    tab = DocumentsTab(settings, library)
    (tmp_path / "note.md").write_text("# Storage\n\nMilvus keeps the note in object storage.", encoding="utf-8")
    (tmp_path / "empty.md").write_text("", encoding="utf-8")
    (tmp_path / "tool.exe").write_bytes(b"MZ\x90\x00")
    # an upload's report, with the files it skipped and why
    report = tab.upload("", [str(tmp_path / n) for n in ("note.md", "empty.md", "tool.exe")], asked, None,
                        progress=None)[0]
    assert want["added"] in report and want["skipped"] in report and want["empty"] in report, report
    pipeline.ingest([faq_dir / "*.md"])  # 10 candidates and more
    # the comparison panel as it fills in, the timing line, the passages-only answer
    steps = list(chat_turn(pipeline, "Where does Milvus keep the note?", [], 10, 3, "", "", "", documents=5,
                           lang=lang_of(asked)))
    panels = [s[1] for s in steps if isinstance(s[1], str)]
    assert any(want["reranking"] in p for p in panels) and want["column"] in panels[-1] and want["scope"] in panels[-1]
    assert want["timing"] in steps[-1][3]
    assert steps[-1][0][-1]["content"].startswith(want["passages"])
    # the status line while the default documents are indexed
    corpus = DefaultCorpus.keyed((), "", "origin.docs", path="docs")
    library._progress("status.indexing_default", library._origin(corpus))(16, 62)
    assert library.status_in(lang_of(asked)).startswith(want["status"])
    # an evaluation table
    metrics, _ = evaluation_view(pipeline, str(ROOT / "config" / "eval" / "milvus_faq.csv"), limit=2, lang="en",
                                 ui_lang=lang_of(asked))
    assert want["metrics"] in metrics
    # an error met in the chat
    empty = Pipeline(make_settings(collection="nothing_here"))
    shown = list(chat_turn(empty, "anything", [], 10, 3, "", "", "", lang=lang_of(asked)))[-1][0][-1]["content"]
    assert shown.startswith("⚠ ") and want["error"] in shown and "python -m rag ingest" in shown


@pytest.mark.parametrize("lang", LANGS)
def test_one_document_and_fewer_candidates_than_k_read_right(lang: str) -> None:
    from rag.render import comparison, scope_text
    from rag.types import Hit, Retrieval, Timings

    assert scope_text([], 1, lang) == t(lang, "compare_panel.scope_one")
    assert scope_text([], 5, lang) == t(lang, "compare_panel.scope_all", total=5)
    one = Hit("a", "Milvus keeps data in MinIO.", "note.md", "Storage", dense_rank=1, dense_score=0.5)
    panel = comparison(Retrieval("q", (one,), (), 3, Timings()), lang=lang)
    assert t(lang, "compare_panel.top_of", top_k=1, total=1) in panel
    assert t(lang, "compare_panel.top_of", top_k=3, total=1) not in panel
