"""Dense embeddings through sentence-transformers: ``embed_query`` and ``embed_documents``.

Qwen3-Embedding recipe (from its model card): queries get ``Instruct: {task}\\nQuery:`` and documents get no
instruction; padding is on the left and the last token's state is the embedding; an optional Matryoshka size
truncates it, and it is L2-normalised after that. Any other sentence-transformers model works too: it gets its
own prompts, if it has any, and no instruction when it expects none (all-MiniLM-L6-v2, for example).

Leaves out: device and dtype choice (``rag.devices``), and storage (``rag.store``).
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from rag.errors import ModelLoadError, model_load_error

Progress = Callable[[int, int], None]  # (done, total)


class Embedder(ABC):
    """Turns text into unit vectors. Backends write ``_encode``; the rest is built on it."""

    name: str
    dimension: int
    max_tokens: int

    @abstractmethod
    def _encode(self, texts: Sequence[str], prompt: str | None) -> np.ndarray:
        """(n, full_dim) float32 embeddings of ``texts``, each preceded by ``prompt``."""

    @abstractmethod
    def query_prompt(self, instruction: str | None = None) -> str | None:
        """The prompt put before a query, or None when the model expects none."""

    def token_spans(self, text: str) -> list[tuple[int, int]]:
        """Character spans of the model's tokens in ``text`` (used to cut chunks to a token cap)."""
        from rag.documents import word_spans

        return word_spans(text)

    def _finish(self, vectors: np.ndarray) -> np.ndarray:
        vectors = np.asarray(vectors, dtype=np.float32)[:, : self.dimension]
        norms = np.linalg.norm(vectors, axis=1, keepdims=True)
        return vectors / np.maximum(norms, 1e-12)

    def embed_queries(self, queries: Sequence[str], instruction: str | None = None) -> np.ndarray:
        """(n, dimension) unit vectors for ``queries``."""
        return self._finish(self._encode(queries, self.query_prompt(instruction)))

    def embed_query(self, query: str, instruction: str | None = None) -> np.ndarray:
        """(dimension,) unit vector for one query."""
        return self.embed_queries([query], instruction)[0]

    def embed_documents(self, texts: Sequence[str], progress: Progress | None = None, step: int = 64) -> np.ndarray:
        """(n, dimension) unit vectors for ``texts``, in steps of ``step`` with a progress callback."""
        parts = []
        for start in range(0, len(texts), step):
            parts.append(self._finish(self._encode(texts[start : start + step], self.document_prompt)))
            if progress:
                progress(min(start + step, len(texts)), len(texts))
        return np.concatenate(parts) if parts else np.zeros((0, self.dimension), np.float32)

    document_prompt: str | None = None


class TokenizedEmbedder(Embedder):
    """An embedder with a Hugging Face ``tokenizer`` and sentence-transformers prompts (the model's own query prompt
    in ``_model_query_prompt``; an ``Instruct:`` one takes ``query_instruction``)."""

    tokenizer: Any
    query_instruction: str
    _model_query_prompt: str | None = None

    def query_prompt(self, instruction: str | None = None) -> str | None:
        own = self._model_query_prompt
        if own and own.startswith("Instruct:"):  # Qwen3 / e5-instruct style: the task is editable
            return f"Instruct: {instruction or self.query_instruction}\nQuery:"
        return own

    def token_spans(self, text: str) -> list[tuple[int, int]]:
        enc = self.tokenizer(text, add_special_tokens=False, return_offsets_mapping=True, truncation=False)
        return [tuple(span) for span in enc["offset_mapping"]]

    @staticmethod
    def checked_dimension(dimension: int, full: int) -> int:
        """``RAG_EMBEDDING_DIM`` (0: the model's full size ``full``), refused when larger than ``full``."""
        if dimension > full:
            raise ModelLoadError(f"RAG_EMBEDDING_DIM={dimension} is larger than the model's size {full}.")
        return dimension or full


class SentenceTransformerEmbedder(TokenizedEmbedder):
    """A sentence-transformers model from a hub id or a local folder."""

    def __init__(
        self,
        model: Any,
        device: str = "cpu",
        dtype: object = None,
        dimension: int = 0,
        query_instruction: str = "Given a web search query, retrieve relevant passages that answer the query",
        batch_size: int = 16,
        quantize: str = "none",
    ) -> None:
        """``model``: a hub id or a local folder, or an already-built ``SentenceTransformer`` (the benchmark's)."""
        if not isinstance(model, str):
            self.model = model
        else:
            try:
                from sentence_transformers import SentenceTransformer

                self.model = SentenceTransformer(
                    model, device=device, model_kwargs={"dtype": dtype} if dtype is not None else None
                )
            except Exception as exc:  # hub errors, missing files, bad configs: all one remedy
                raise model_load_error("embedding", model, exc, "RAG_EMBEDDING_MODEL",
                                       "a sentence-transformers model") from exc
            # Left padding for last-token pooling (Qwen3's recipe); right padding for the rest: a model with absolute
            # positions (BERT, MiniLM) padded on the left embeds a text differently in every batch.
            last_token = any(getattr(m, "pooling_mode", None) == "lasttoken" for m in self.model)
            self.model.tokenizer.padding_side = "left" if last_token else "right"
        if quantize == "int8":
            from rag.devices import quantize_int8

            self.model = quantize_int8(self.model)
        self.name = model if isinstance(model, str) else "in-memory model"
        self.tokenizer = self.model.tokenizer
        self.dimension = self.checked_dimension(dimension, self.model.get_embedding_dimension())
        self.max_tokens = int(self.model.max_seq_length or 512)
        self.query_instruction = query_instruction
        self.batch_size = batch_size
        prompts = dict(self.model.prompts or {})
        self._model_query_prompt = prompts.get("query") or None
        self.document_prompt = prompts.get("document") or None

    def _encode(self, texts: Sequence[str], prompt: str | None) -> np.ndarray:
        import torch

        with torch.inference_mode():
            return self.model.encode(
                list(texts), prompt=prompt or None, batch_size=self.batch_size, convert_to_numpy=True
            ).astype(np.float32)

