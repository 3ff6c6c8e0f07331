"""llama.cpp as a CPU engine, in this process (the ``xllamacpp`` wheel): ``RAG_ENGINE=llama``, F32 or Q8_0 GGUF.

The model folder is written as GGUF once (``rag.gguf_export``, kept in ``RAG_ENGINE_CACHE`` or ``.rag-gguf/`` beside
the model) and llama.cpp computes one thing: each input's last-token final hidden state (last-token pooling,
unnormalised). Everything else stays the project's, so the recipe is the same as on PyTorch and ONNX Runtime: the
Hugging Face tokenizer (token ids are sent, not text), the prompts, the "yes"/"no" head rows applied in float32, the
score cache; for the embedder the query prompt, the Matryoshka cut and the normalisation.

``Q8_0`` quantises the transformer blocks' matrices in blocks of 32 weights with one scale each (unlike the
per-tensor dynamic int8 of ``RAG_QUANTIZE=int8``). llama.cpp keeps no KV prefix between pooled inputs, so the
reranker's shared prefix (system prompt, instruction, query) runs again for every passage: the one saving of the
other engines that this one cannot make.

Leaves out: choosing it (``rag.engines``), GPUs (llama.cpp has them; this engine is for the CPU), serving over HTTP
(``rag.remote`` talks to a llama.cpp server).
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from rag.embedding import TokenizedEmbedder
from rag.errors import ModelLoadError, brief
from rag.reranker import DEFAULT_INSTRUCTION, YesNoReranker

QTYPES = {"none": "F32", "q8_0": "Q8_0"}
CONTEXT = 8192  # tokens of one input (a rerank prompt, a chunk): it must fit one llama.cpp micro-batch


def gguf_path(model: str, kind: str, qtype: str, cache: str = "") -> Path:
    """The GGUF of ``model`` as ``kind`` in ``qtype``, written on first use."""
    from rag.gguf_export import write_gguf

    folder = Path(model).expanduser()
    if not folder.is_dir():
        raise ModelLoadError(f"RAG_ENGINE=llama needs {model!r} as a local folder (it is written as GGUF); download "
                             "it first, or set RAG_ENGINE=auto.")
    where = Path(cache) if cache else folder / ".rag-gguf"
    key = hashlib.sha256(str(folder.resolve()).encode()).hexdigest()[:12]  # one cache may hold several models
    out = where / f"{folder.name}-{key}-{kind}-{qtype}.gguf"
    if not out.exists():
        where.mkdir(parents=True, exist_ok=True)
        partial = out.with_suffix(".tmp")
        write_gguf(folder, partial, kind, qtype)
        partial.replace(out)
    return out


class LastStates:
    """A GGUF decoder in llama.cpp: the final hidden state of each input's last token."""

    def __init__(self, path: Path, threads: int) -> None:
        import xllamacpp as xlc

        params = xlc.CommonParams()
        params.model.path = str(path)
        params.embedding = True
        params.pooling_type = xlc.llama_pooling_type.LLAMA_POOLING_TYPE_LAST
        params.n_ctx = params.n_batch = params.n_ubatch = CONTEXT
        params.n_parallel = 1
        params.cpuparams.n_threads = params.cpuparams_batch.n_threads = threads
        params.port = 0  # no HTTP: requests go through the Python API
        params.hostnames = ["127.0.0.1"]
        try:
            self.server = xlc.Server(params)
        except Exception as exc:
            raise ModelLoadError(f"llama.cpp could not load {path} ({brief(exc)}); set RAG_ENGINE=auto.") from exc

    def __call__(self, inputs: Sequence[Sequence[int]]) -> np.ndarray:
        """(n, hidden) float32 states, in the order of ``inputs`` (lists of token ids)."""
        reply = self.server.handle_embeddings({"input": [list(map(int, ids)) for ids in inputs],
                                               "embd_normalize": -1})
        if "data" not in reply:
            raise ModelLoadError(f"llama.cpp refused the input: {str(reply)[:200]}")
        rows = sorted(reply["data"], key=lambda d: d["index"])
        return np.asarray([r["embedding"] for r in rows], dtype=np.float32)


def threads() -> int:
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


class LlamaCppReranker(YesNoReranker):
    """Qwen3-Reranker (or a yes/no causal LM) on llama.cpp: the project's prompts, llama.cpp's last states."""

    def __init__(self, model: str, instruction: str = DEFAULT_INSTRUCTION, max_length: int = 8192,
                 quantize: str = "none", cache: str = "") -> None:
        from safetensors import safe_open
        from transformers import AutoTokenizer

        try:
            tokenizer = AutoTokenizer.from_pretrained(model)
        except Exception as exc:
            raise ModelLoadError(f"Could not load the reranker's tokenizer from {model!r} ({brief(exc)}).") from exc
        super().__init__(tokenizer, model, instruction, min(max_length, CONTEXT), batch_size=8, prefix_cache=False)
        head: Any = None
        for name in ("lm_head.weight", "model.embed_tokens.weight"):  # a tied head is the embedding table
            for f in sorted(Path(model).glob("*.safetensors")):
                with safe_open(str(f), "numpy") as st:
                    if head is None and name in st.keys():  # noqa: SIM118 - safe_open has no __contains__
                        head = st.get_slice(name)[self.yes_no_ids[0] : self.yes_no_ids[0] + 1], \
                            st.get_slice(name)[self.yes_no_ids[1] : self.yes_no_ids[1] + 1]
        if head is None:
            raise ModelLoadError(f"{model!r} has no LM head or embedding table in its .safetensors files.")
        self.head = np.concatenate(head).astype(np.float32)  # (2, hidden): no, yes
        self.states = LastStates(gguf_path(model, "causal", QTYPES[quantize], cache), threads())

    def _score_batches(self, prompts: list[list[int]]) -> list[float]:
        from rag.reranker import p_yes

        scores: list[float] = []
        for start in range(0, len(prompts), self.batch_size):
            hidden = self.states(prompts[start : start + self.batch_size])
            scores += p_yes(hidden.astype(np.float64) @ self.head.T.astype(np.float64))
        return scores

    def _iter_on_prefix(self, prompts: list[list[int]], shared: int) -> Iterator[float]:
        yield from self._score_batches(prompts)  # no prefix reuse between pooled inputs in llama.cpp


class LlamaCppEmbedder(TokenizedEmbedder):
    """A last-token-pooled sentence-transformers model (Qwen3-Embedding) on llama.cpp."""

    def __init__(self, model: str, dimension: int = 0, query_instruction: str = DEFAULT_INSTRUCTION,
                 quantize: str = "none", cache: str = "", batch_size: int = 4) -> None:
        import json

        from transformers import AutoTokenizer

        folder = Path(model)
        self.name, self.query_instruction, self.batch_size = model, query_instruction, batch_size
        self.tokenizer = AutoTokenizer.from_pretrained(model)
        st = folder / "config_sentence_transformers.json"
        prompts = (json.loads(st.read_text()).get("prompts") or {}) if st.exists() else {}
        self._model_query_prompt, self.document_prompt = prompts.get("query") or None, prompts.get("document") or None
        cfg = json.loads((folder / "config.json").read_text())
        self.max_tokens = min(cfg.get("max_position_embeddings", CONTEXT), CONTEXT, self.tokenizer.model_max_length)
        self.dimension = self.checked_dimension(dimension, cfg["hidden_size"])
        self.states = LastStates(gguf_path(model, "causal", QTYPES[quantize], cache), threads())

    def _encode(self, texts: Sequence[str], prompt: str | None) -> np.ndarray:
        ids = self.tokenizer([f"{prompt}{t}" if prompt else t for t in texts], truncation=True,
                             max_length=self.max_tokens)["input_ids"]
        parts = [self.states(ids[i : i + self.batch_size]) for i in range(0, len(ids), self.batch_size)]
        return np.concatenate(parts) if parts else np.zeros((0, self.dimension), np.float32)
