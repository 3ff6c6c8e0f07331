"""Typed records passed between modules: Document, Chunk, Hit, Timings, Retrieval, IngestReport, DocumentInfo."""

from __future__ import annotations

import dataclasses
import re
import time
from dataclasses import dataclass, field
from typing import Any

FIRST_STAGES = ("dense", "bm25", "hybrid")  # how a question's candidates are found
_FRAGMENT = re.compile(r"#(?:page|slide)=(\d+)$")


def origin_of(source: str) -> str:
    """The file or URL a chunk's ``source`` belongs to: the source without its ``#page=N`` / ``#slide=N``."""
    return _FRAGMENT.sub("", source)


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
    """A piece of a document as stored and given to the models. ``id`` is derived from the document and ``text``.

    ``document`` is the name of the document it belongs to (a file path, relative to where it was added from, or a
    URL); empty means ``origin_of(source)``."""

    id: str
    text: str
    source: str
    heading: str
    document: str = ""

    @property
    def doc(self) -> str:
        return self.document or origin_of(self.source)


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
    document: str = ""  # the name of the document it is from (``rag documents`` lists them)

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
    sources: tuple[str, ...] = ()  # the documents searched (their names); empty: all of them
    # the notice's parts as (locale key, params) for the UI's language (rag.locales); not in to_dict either
    notices: tuple[tuple[str, dict[str, Any]], ...] = field(default=(), compare=False)

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
            "sources": list(self.sources),
        }


@dataclass(frozen=True)
class SkippedFile:
    path: str
    reason: str  # in English (the CLI, the JSON)
    key: str = ""  # the reason as a locale key, for the UI's language (rag.locales); with its params
    params: dict[str, Any] = field(default_factory=dict, compare=False, hash=False)

    @classmethod
    def keyed(cls, path: str, key: str, **params: Any) -> SkippedFile:
        """A skipped file whose reason is the English text of a locale key (``rag.locales``)."""
        from rag.locales import t

        return cls(path, t("en", key, **params), key, params)


@dataclass(frozen=True)
class DocumentChange:
    """What an ingest did to one document: "added" (new name), "replaced" (its old chunks removed once the new ones
    were stored) or "unchanged" (the same chunks were already stored; nothing embedded)."""

    source: str
    status: str
    chunks: int


@dataclass(frozen=True)
class IngestReport:
    files: int
    chunks_added: int
    chunks_skipped: int
    seconds: float
    skipped_files: tuple[SkippedFile, ...] = ()
    documents: tuple[DocumentChange, ...] = ()
    removed: tuple[str, ...] = ()  # documents removed by ``--sync`` (gone from their folder)

    def to_dict(self) -> dict[str, Any]:
        return {
            "files": self.files,
            "chunks_added": self.chunks_added,
            "chunks_skipped": self.chunks_skipped,
            "seconds": round(self.seconds, 3),
            "skipped_files": [{"path": s.path, "reason": s.reason} for s in self.skipped_files],
            "documents": [dataclasses.asdict(d) for d in self.documents],
            "removed": list(self.removed),
        }


@dataclass(frozen=True)
class DocumentInfo:
    """One document of a collection as ``rag documents`` and the Documents tab list it."""

    source: str  # its name: a file path (relative to where it was added from) or a URL
    chunks: int
    pages: int  # the highest #page=N / #slide=N of its chunks; 1 for a file that is not paged
    chars: int  # characters of text over its chunks (an overlap between windows counts twice)
    added: float  # when it was last added or replaced (Unix time)
    added_by: str = ""  # who uploaded it, when someone was signed in

    @property
    def format(self) -> str:
        if self.source.startswith(("http://", "https://")):
            return "url"
        name = self.source.rsplit("/", 1)[-1]
        return name.rsplit(".", 1)[-1].lower() if "." in name else ""

    def to_dict(self) -> dict[str, Any]:
        return {"source": self.source, "format": self.format, "pages": self.pages, "chunks": self.chunks,
                "chars": self.chars, "added": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(self.added)),
                "added_by": self.added_by}


@dataclass(frozen=True)
class DocumentText:
    """A document's text as it was converted when it was ingested (``rag.texts`` keeps it): each page's source
    (``name``, or ``name#page=N`` for a PDF's page) with its Markdown, and whether a copy of the PDF was kept (for
    the page's image)."""

    name: str
    pages: tuple[tuple[str, str], ...]  # (source, text) in order
    pdf: bool = False


@dataclass(frozen=True)
class PassageView:
    """A passage in its document: the text before it, the passage, the text after it (all as kept, unescaped), and
    where it lies. ``found`` is false when the passage is not in the kept text (then ``passage`` is the chunk's text
    and ``before``/``after`` are empty)."""

    document: str
    source: str
    passage: str
    before: str = ""
    after: str = ""
    page: int | None = None  # the PDF page (or slide) the passage is on
    found: bool = True
    cut_before: int = 0  # characters of the page left out before ``before`` (a very long document)
    cut_after: int = 0
    kept: bool = True  # false: no text was kept for this document (ingested before texts were kept)


SETUP_KEYS = ("stage", "candidates", "top_k", "rerank", "query_instruction", "rerank_instruction", "sources")


@dataclass(frozen=True)
class Setup:
    """One retrieval setup, as the Compare view, ``rag compare`` and ``/compare`` take it: the first stage
    ("dense", "bm25" or "hybrid"), its candidates N, reranking on or off, the top-k kept, both instructions, and the
    documents searched (empty: all). ``rag.compare.setup`` fills the keys left out from the settings."""

    stage: str
    candidates: int
    top_k: int
    rerank: bool
    query_instruction: str
    rerank_instruction: str
    sources: tuple[str, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        return {**dataclasses.asdict(self), "sources": list(self.sources)}


@dataclass(frozen=True)
class Comparison:
    """One question through two setups. ``shared`` names what B took from A instead of computing it again
    ("first stage", "rerank"); ``overlap`` is |top-k(A) ∩ top-k(B)| / k over the final rankings (reranked when
    reranking is on, else the first stage's), k the larger of the two top-k."""

    question: str
    a: Retrieval
    b: Retrieval
    setup_a: Setup
    setup_b: Setup
    shared: tuple[str, ...] = ()

    @staticmethod
    def final(r: Retrieval) -> tuple[Hit, ...]:
        """A retrieval's final top-k: the reranked one when it was reranked, else the first stage's."""
        return r.passages

    @property
    def overlap(self) -> float:
        a, b = {h.id for h in self.final(self.a)}, {h.id for h in self.final(self.b)}
        k = max(self.a.top_k, self.b.top_k)
        return len(a & b) / k if k else 0.0

    def moves(self) -> list[tuple[Hit, int | None, int | None]]:
        """Every passage of either final top-k with its rank in A and in B (None: not in that top-k), in A's
        order, then B's own."""
        rank_a = {h.id: i for i, h in enumerate(self.final(self.a), 1)}
        rank_b = {h.id: i for i, h in enumerate(self.final(self.b), 1)}
        hits = {h.id: h for h in (*self.final(self.a), *self.final(self.b))}
        return [(h, rank_a.get(i), rank_b.get(i)) for i, h in hits.items()]

    def to_dict(self) -> dict[str, Any]:
        def side(r: Retrieval, s: Setup, shared: tuple[str, ...]) -> dict[str, Any]:
            return {**r.to_dict(), "setup": s.to_dict(), "shared": list(shared)}

        return {"question": self.question, "a": side(self.a, self.setup_a, ()),
                "b": side(self.b, self.setup_b, self.shared), "overlap": round(self.overlap, 4)}
