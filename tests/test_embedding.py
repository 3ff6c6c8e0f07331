"""The embedder against the Qwen3-Embedding recipe (left padding, last token, L2 norm) and with MiniLM."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from transformers import AutoModel, AutoTokenizer

from rag.embedding import SentenceTransformerEmbedder
from rag.errors import ModelLoadError

TASK = "Given a web search query, retrieve relevant passages that answer the query"
TEXTS = ["Where does Milvus store data?", "Milvus is a vector database. " * 8, "etcd"]


def reference(path: str, texts: list[str]) -> np.ndarray:
    """Qwen3-Embedding's transformers example: left padding, last token's state, L2-normalised."""
    tokenizer = AutoTokenizer.from_pretrained(path, padding_side="left")
    model = AutoModel.from_pretrained(path, dtype=torch.float32).eval()
    batch = tokenizer(texts, padding=True, truncation=True, max_length=8192, return_tensors="pt")
    with torch.no_grad():
        out = model(**batch).last_hidden_state[:, -1]
    return torch.nn.functional.normalize(out, p=2, dim=1).numpy()


@pytest.fixture(scope="module")
def qwen(tiny_models: tuple[Path, Path]) -> SentenceTransformerEmbedder:
    return SentenceTransformerEmbedder(str(tiny_models[0]), dtype=torch.float32)


def test_documents_get_no_instruction_and_match_reference(qwen, tiny_models) -> None:
    got = qwen.embed_documents(TEXTS)
    assert got.shape == (3, qwen.dimension)
    np.testing.assert_allclose(got, reference(str(tiny_models[0]), TEXTS), atol=1e-5)


def test_queries_get_the_instruction_prompt(qwen, tiny_models) -> None:
    assert qwen.query_prompt() == f"Instruct: {TASK}\nQuery:"
    expected = reference(str(tiny_models[0]), [f"Instruct: {TASK}\nQuery:{TEXTS[0]}"])[0]
    np.testing.assert_allclose(qwen.embed_query(TEXTS[0]), expected, atol=1e-5)
    custom = qwen.embed_query(TEXTS[0], instruction="Find the FAQ entry")
    expected_custom = reference(str(tiny_models[0]), [f"Instruct: Find the FAQ entry\nQuery:{TEXTS[0]}"])[0]
    np.testing.assert_allclose(custom, expected_custom, atol=1e-5)


def test_matryoshka_truncates_then_normalises(qwen, tiny_models) -> None:
    small = SentenceTransformerEmbedder(str(tiny_models[0]), dtype=torch.float32, dimension=16)
    full = qwen.embed_documents(TEXTS)
    cut = small.embed_documents(TEXTS)
    assert cut.shape == (3, 16)
    np.testing.assert_allclose(np.linalg.norm(cut, axis=1), 1.0, atol=1e-6)
    np.testing.assert_allclose(cut, full[:, :16] / np.linalg.norm(full[:, :16], axis=1, keepdims=True), atol=1e-5)


def test_minilm_gets_no_instruction(minilm: str) -> None:
    e = SentenceTransformerEmbedder(minilm, dtype=torch.float32)
    assert e.dimension == 384 and e.query_prompt() is None
    np.testing.assert_allclose(e.embed_query(TEXTS[0]), e.embed_documents([TEXTS[0]])[0], atol=1e-6)


def test_token_spans_follow_the_tokenizer(qwen) -> None:
    text = "Milvus stores data in MinIO."
    spans = qwen.token_spans(text)
    assert spans[0][0] == 0 and spans[-1][1] == len(text)
    assert len(spans) == len(qwen.model.tokenizer(text, add_special_tokens=False)["input_ids"])


def test_missing_model_names_the_setting(tmp_path: Path) -> None:
    with pytest.raises(ModelLoadError, match="RAG_EMBEDDING_MODEL.*local folder"):
        SentenceTransformerEmbedder(str(tmp_path / "missing"))
    with pytest.raises(ModelLoadError, match="RAG_EMBEDDING_MODEL"):
        SentenceTransformerEmbedder("no-such-org/no-such-model-xyz")


def test_an_unreadable_model_file_is_named(tiny_models, monkeypatch) -> None:
    import os

    from rag.errors import model_load_error

    weights = next(tiny_models[0].rglob("*.safetensors"))
    assert weights.stat().st_mode & 0o044 == 0o044  # random-models leaves its files readable by everyone
    cause = FileNotFoundError("what the loader said")
    plain = model_load_error("embedding", str(tiny_models[0]), cause, "RAG_EMBEDDING_MODEL", "a model")
    assert "what the loader said" in str(plain) and "RAG_EMBEDDING_MODEL" in str(plain)
    real_access = os.access  # root reads everything, so the unreadable file is simulated
    monkeypatch.setattr(os, "access", lambda p, mode: False if str(p) == str(weights) else real_access(p, mode))
    named = model_load_error("embedding", str(tiny_models[0]), cause, "RAG_EMBEDDING_MODEL", "a model")
    assert str(named).startswith(f"Could not read {weights} of the embedding model: permission denied")
    assert f"chmod -R a+rX {tiny_models[0]}" in str(named)


@pytest.mark.parametrize("which", ["qwen", "minilm"])
def test_a_text_embeds_the_same_alone_and_in_any_batch(which: str, tiny_models, minilm: str) -> None:
    """Padding must not change an embedding: left for last-token pooling (Qwen3), right for mean pooling (MiniLM)."""
    e = SentenceTransformerEmbedder(str(tiny_models[0]) if which == "qwen" else minilm, "cpu", batch_size=4)
    text, longer = TEXTS[0], " ".join(TEXTS) * 3
    alone = e.embed_documents([text])[0]
    assert np.abs(e.embed_documents([longer, text, longer[:40]])[1] - alone).max() < 1e-5
