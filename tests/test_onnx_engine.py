"""The ONNX Runtime engine against the same references as PyTorch's: the Qwen3-Reranker card's recipe
(``test_reranker.card_reference``) and the Qwen3-Embedding recipe (``test_embedding.reference``); its export cache;
and the engine choice (``rag.engines``). No timing here: speed is ``rag bench``'s."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from test_embedding import TASK, TEXTS, reference
from test_reranker import DOCS, QUERY, card_reference

from rag import onnx_engine
from rag.engines import pick_engine
from rag.errors import SettingsError
from rag.onnx_engine import OnnxEmbedder, OnnxReranker
from rag.pipeline import Pipeline, load_embedder, load_reranker


@pytest.fixture(scope="module")
def cache(tmp_path_factory: pytest.TempPathFactory) -> str:
    return str(tmp_path_factory.mktemp("onnx-cache"))


@pytest.fixture(scope="module")
def rerankers(tiny_models: tuple[Path, Path], cache: str) -> dict[str, OnnxReranker]:
    return {q: OnnxReranker(str(tiny_models[1]), quantize=q, cache=cache, cache_size=0) for q in ("none", "int8")}


@pytest.fixture(scope="module")
def embedders(tiny_models: tuple[Path, Path], cache: str) -> dict[str, OnnxEmbedder]:
    return {q: OnnxEmbedder(str(tiny_models[0]), quantize=q, cache=cache) for q in ("none", "int8")}


def test_float32_reranker_matches_the_card_on_both_paths(rerankers, tiny_models) -> None:
    r = rerankers["none"]
    expected = card_reference(str(tiny_models[1]), QUERY, DOCS)
    assert max(expected) - min(expected) > 0.05, "random model too flat for a meaningful comparison"
    assert r.score(QUERY, DOCS) == pytest.approx(expected, abs=1e-4)  # shared prefix, run once on its KV cache
    assert r._score_batches(r.encode(QUERY, DOCS)) == pytest.approx(expected, abs=1e-4)  # each prompt alone
    assert list(r.score_iter(QUERY, DOCS)) == pytest.approx(expected, abs=1e-4)


def test_float32_reranker_follows_the_instruction_and_truncation(tiny_models, cache) -> None:
    path = str(tiny_models[1])
    instruction = "Given a question about databases, find the passage that answers it"
    r = OnnxReranker(path, max_length=120, cache=cache)
    assert max(len(ids) for ids in r.encode(QUERY, DOCS)) == 120
    assert r.score(QUERY, DOCS, instruction) == pytest.approx(
        card_reference(path, QUERY, DOCS, instruction, max_length=120), abs=1e-4)


def test_int8_reranker_is_close(rerankers, tiny_models) -> None:
    # Random weights drawn with std 0.2 say little about int8 error (real-weight agreement: README, "int8 agreement");
    # this checks that the quantised graph runs the same model: scores span about 0.1 to 0.8 here.
    expected = card_reference(str(tiny_models[1]), QUERY, DOCS)
    assert rerankers["int8"].score(QUERY, DOCS) == pytest.approx(expected, abs=0.1)
    assert rerankers["int8"].entry != rerankers["none"].entry


def test_float32_embedder_matches_the_recipe(embedders, tiny_models) -> None:
    e, path = embedders["none"], str(tiny_models[0])
    np.testing.assert_allclose(e.embed_documents(TEXTS), reference(path, TEXTS), atol=1e-5)
    expected = reference(path, [f"Instruct: {TASK}\nQuery:{TEXTS[0]}"])[0]
    np.testing.assert_allclose(e.embed_query(TEXTS[0]), expected, atol=1e-5)
    assert e.query_prompt() == f"Instruct: {TASK}\nQuery:"


def test_embedder_batches_and_matryoshka_match_one_at_a_time(embedders, tiny_models, cache) -> None:
    e = embedders["none"]
    one_by_one = np.concatenate([e.embed_documents([t]) for t in TEXTS])
    np.testing.assert_allclose(e.embed_documents(TEXTS), one_by_one, atol=1e-5)  # left padding changes nothing
    small = OnnxEmbedder(str(tiny_models[0]), dimension=16, cache=cache)
    cut = small.embed_documents(TEXTS)
    np.testing.assert_allclose(cut, one_by_one[:, :16] / np.linalg.norm(one_by_one[:, :16], axis=1, keepdims=True),
                               atol=1e-5)


def test_int8_embedder_is_close(embedders) -> None:
    exact, quant = embedders["none"].embed_documents(TEXTS), embedders["int8"].embed_documents(TEXTS)
    assert (exact * quant).sum(axis=1).min() > 0.99  # cosine similarity of each pair


def test_a_second_load_reads_the_cache_without_exporting(tiny_models, tmp_path, monkeypatch) -> None:
    first = OnnxReranker(str(tiny_models[1]), cache=str(tmp_path))
    meta = first.session.meta
    assert meta["export_s"] >= 0 and meta["disk_mb"] >= 0 and meta["quantize"] == "none"

    def no_export(*args: object) -> None:
        pytest.fail("exported again")

    monkeypatch.setattr(onnx_engine, "_export_float", no_export)
    monkeypatch.setattr(onnx_engine, "_quantize", no_export)
    again = OnnxReranker(str(tiny_models[1]), cache=str(tmp_path))
    assert again.entry == first.entry and again.score(QUERY, DOCS) == first.score(QUERY, DOCS)
    assert [p.name for p in tmp_path.iterdir()] == [first.entry.name]  # no temporary folder left behind


def test_the_cache_key_follows_the_model_files_and_the_mode(tiny_models) -> None:
    folder = tiny_models[1]
    key = onnx_engine.cache_key(folder, "reranker", "none")
    assert key == onnx_engine.cache_key(folder, "reranker", "none")
    assert key != onnx_engine.cache_key(folder, "reranker", "int8")
    assert key != onnx_engine.cache_key(tiny_models[0], "reranker", "none")


def test_the_cache_goes_beside_the_model_unless_set(tiny_models, tmp_path) -> None:
    assert onnx_engine.cache_root(tiny_models[1]) == tiny_models[1] / ".rag-onnx"
    assert onnx_engine.cache_root(tiny_models[1], str(tmp_path)) == tmp_path


def test_auto_picks_onnx_for_float32_on_the_cpu_and_torch_elsewhere(tiny_models, minilm) -> None:
    emb, rr = str(tiny_models[0]), str(tiny_models[1])
    assert pick_engine("auto", "cpu", torch.float32, "none", rr, "reranker") == "onnx"
    assert pick_engine("auto", "cpu", torch.float32, "none", emb, "embedder") == "onnx"
    assert pick_engine("auto", "cpu", torch.bfloat16, "int8", rr, "reranker") == "onnx"
    assert pick_engine("auto", "cpu", torch.bfloat16, "none", rr, "reranker") == "torch"  # native bf16: PyTorch
    assert pick_engine("auto", "cuda", torch.float32, "none", rr, "reranker") == "torch"
    assert pick_engine("auto", "cpu", torch.float32, "none", minilm, "embedder") == "torch"  # mean pooling, BERT
    assert pick_engine("auto", "cpu", torch.float32, "none", rr, "embedder") == "torch"  # no sentence-transformers
    assert pick_engine("torch", "cpu", torch.float32, "none", rr, "reranker") == "torch"
    with pytest.raises(SettingsError, match="RAG_ENGINE=onnx cannot run"):
        pick_engine("onnx", "cpu", torch.float32, "none", minilm, "embedder")
    with pytest.raises(SettingsError, match="RAG_DEVICE=cpu"):
        pick_engine("onnx", "cuda", torch.float32, "none", rr, "reranker")


def test_the_pipeline_loads_the_chosen_engine_and_retrieves(make_settings, faq_dir, tmp_path) -> None:
    onnx = make_settings(engine="auto", engine_cache=str(tmp_path / "cache"))
    assert isinstance(load_embedder(onnx), OnnxEmbedder) and isinstance(load_reranker(onnx), OnnxReranker)
    plain = make_settings(engine="torch")
    assert not isinstance(load_reranker(plain), OnnxReranker)
    pipeline = Pipeline(onnx)
    pipeline.ingest([faq_dir / "*.md"])
    result = pipeline.retrieve("How is data stored in milvus?")
    assert len(result.reranked) == 3
    torch_pipeline = Pipeline(plain, store=pipeline.store)
    same = torch_pipeline.rerank(pipeline.dense("How is data stored in milvus?"))
    assert [h.rerank_score for h in result.candidates] == pytest.approx([h.rerank_score for h in same.candidates],
                                                                        abs=1e-4)


def test_engine_setting_is_checked(make_settings) -> None:
    with pytest.raises(SettingsError, match="RAG_ENGINE='fast' is not one of auto, torch, onnx"):
        make_settings(engine="fast")
