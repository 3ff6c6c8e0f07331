"""Typed records passed between modules: Document, Chunk, Hit, Timings, Retrieval, IngestReport."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class Document:
    """A file's text as Markdown (or plain text for ``.txt``), before chunking. ``source`` is the file's path, with
    ``#page=N`` or ``#slide=N`` when the text is one page of it, or the URL of a web page."""

    source: str
    text: str
    file: str = ""  # the file (or URL) this is a page of; empty when it is the whole file

    @property
    def origin(self) -> str:
        return self.file or self.source


@dataclass(frozen=True)
class Chunk:
    """A piece of a document as stored and given to the models. ``id`` is derived from ``text``."""

    id: str
    text: str
    source: str
    heading: str


@dataclass(frozen=True)
class Hit:
    """One candidate passage with its place in both rankings (ranks start at 1)."""

    id: str
    text: str
    source: str
    heading: str
    dense_rank: int
    dense_score: float
    rerank_rank: int | None = None
    rerank_score: float | None = None

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


@dataclass(frozen=True)
class Timings:
    embed_s: float = 0.0
    search_s: float = 0.0
    rerank_s: float = 0.0

    def to_dict(self) -> dict[str, float]:
        return {k: round(v, 4) for k, v in dataclasses.asdict(self).items()}


@dataclass(frozen=True)
class Retrieval:
    """The result of one question: all N candidates in first-stage order, and the same N in reranked order.

    The first stage is dense retrieval unless ``first_stage`` says otherwise; ``dense_score`` and ``dense_rank``
    are then that stage's (the BM25 score, or the fused RRF score).
    """

    question: str
    candidates: tuple[Hit, ...]  # dense order, N hits
    reranked_all: tuple[Hit, ...]  # rerank order, the same N hits
    top_k: int
    timings: Timings = field(default_factory=Timings)
    first_stage: str = "dense"  # how the candidates were found: "dense", "bm25" or "hybrid" (not in to_dict)
    notice: str = ""  # e.g. that the question was cut to the token limit (not in to_dict: the JSON form is fixed)

    @property
    def dense(self) -> tuple[Hit, ...]:
        """The dense top-k."""
        return self.candidates[: self.top_k]

    @property
    def reranked(self) -> tuple[Hit, ...]:
        """The reranked top-k: the passages an answer is built from."""
        return self.reranked_all[: self.top_k]

    @property
    def passages(self) -> tuple[Hit, ...]:
        """What an answer is built from: the reranked top-k, or the dense top-k when the candidates could not be
        reranked (``notice`` says why)."""
        return self.reranked or self.dense

    def to_dict(self) -> dict[str, Any]:
        return {
            "question": self.question,
            "dense": [h.to_dict() for h in self.dense],
            "reranked": [h.to_dict() for h in self.reranked],
            "candidates": [h.to_dict() for h in self.candidates],
            "timings": self.timings.to_dict(),
        }


@dataclass(frozen=True)
class SkippedFile:
    path: str
    reason: str


@dataclass(frozen=True)
class IngestReport:
    files: int
    chunks_added: int
    chunks_skipped: int
    seconds: float
    skipped_files: tuple[SkippedFile, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        return {
            "files": self.files,
            "chunks_added": self.chunks_added,
            "chunks_skipped": self.chunks_skipped,
            "seconds": round(self.seconds, 3),
            "skipped_files": [dataclasses.asdict(s) for s in self.skipped_files],
        }
