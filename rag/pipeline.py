"""The retrieval pipeline: ingest files, then question -> embed -> first-stage search -> rerank.

The first stage is dense (inner product), BM25 (Milvus full-text search) or hybrid (both, fused by RRF in Milvus);
``RAG_HYBRID`` picks dense or hybrid, and each call may override it. The evaluation (``rag.evaluation``) runs
through these same methods, on its own collection when it brings a corpus (``with_collection``).

It depends only on the ``Embedder``, ``Reranker`` and ``MilvusStore`` interfaces; models load lazily on first use,
so ``info`` and the app's start-up stay cheap. Model calls are serialised by one lock, so many users can share one
pipeline safely. The app and the CLI only format what this returns.

``ask`` adds the third stage, a grounded answer from ``rag.generation``.
"""

from __future__ import annotations

import copy
import dataclasses
import logging
import threading
import time
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path
from typing import Any

from rag.documents import SUFFIXES, chunk_document, document_name, find_files, load_documents, word_spans
from rag.embedding import Embedder, Progress
from rag.errors import EmptyCorpusError, EmptyQuestionError, ModelCallError, UnknownDocumentError
from rag.generation import AnswerStream, Generator, Turn
from rag.locales import t
from rag.reranker import Reranker
from rag.settings import Settings
from rag.store import DEFAULT_ANALYZER, MAX_NAME, MilvusStore
from rag.texts import Texts
from rag.types import (
    FIRST_STAGES,
    Chunk,
    Document,
    DocumentChange,
    Hit,
    IngestReport,
    Retrieval,
    SkippedFile,
    Timings,
)

log = logging.getLogger(__name__)


def model_id(name: str) -> str:
    """A model setting as recorded in the collection: a local folder by its absolute path, a hub id as is."""
    path = Path(name).expanduser()
    return str(path.resolve()) if path.is_dir() else name


def placement(settings: Settings) -> tuple[str, Any, str]:
    """(device, dtype, quantize) for both models: int8 applies on the CPU only."""
    from rag.devices import pick_device, pick_dtype

    device = pick_device(settings.device)
    return device, pick_dtype(settings.dtype, device), settings.quantize if device == "cpu" else "none"


def load_embedder(settings: Settings) -> Embedder:
    from rag.engines import embedder

    return embedder(settings, *placement(settings))


def load_reranker(settings: Settings) -> Reranker:
    from rag.engines import reranker

    return reranker(settings, *placement(settings))


class Pipeline:
    """Two-stage retrieval over one collection."""

    def __init__(
        self,
        settings: Settings,
        embedder: Embedder | None = None,
        reranker: Reranker | None = None,
        store: MilvusStore | None = None,
        generator: Generator | None = None,
    ) -> None:
        self.settings = settings
        self._embedder = embedder
        self._reranker = reranker
        self.store = store or MilvusStore(settings.milvus_uri, settings.collection, settings.milvus_token,
                                          analyzer=settings.analyzer or DEFAULT_ANALYZER,
                                          fixed=bool(settings.analyzer))
        self.generator = generator or Generator(settings)
        self._lock = threading.RLock()  # one model call at a time; torch already uses every core
        self._origin: Pipeline | None = None  # the pipeline a with_collection() view takes its models from

    def with_collection(self, collection: str) -> Pipeline:
        """This pipeline over another collection: the same models, lock, generator and Milvus connection."""
        view = copy.copy(self)
        view.settings = self.settings.replace(collection=collection)
        view.store = self.store.with_collection(collection)
        view._origin = self._origin or self
        return view

    @property
    def embedder(self) -> Embedder:
        with self._lock:
            if self._embedder is None:
                self._embedder = self._origin.embedder if self._origin else load_embedder(self.settings)
            return self._embedder

    @property
    def reranker(self) -> Reranker:
        with self._lock:
            if self._reranker is None:
                self._reranker = self._origin.reranker if self._origin else load_reranker(self.settings)
            return self._reranker

    @property
    def texts(self) -> Texts:
        """The converted texts kept for this collection's documents (``rag.texts``)."""
        return Texts(self.settings.data_dir, self.settings.collection)

    @property
    def model_id(self) -> str:
        return model_id(self.settings.embedding_model)

    def ingest(
        self, paths: Iterable[str | Path], progress: Progress | None = None, batch: int = 64,
        roots: Sequence[str | Path] = (), added_by: str = "", sync: bool = False,
    ) -> IngestReport:
        """Load, chunk, embed and store the files under ``paths``, each a document named by ``document_name``
        (relative to the deepest of ``roots`` it lies under). A document whose name is already stored is replaced:
        its new chunks are stored first, then its old ones removed, so a crash leaves the old version or both, and
        the next ingest of it finishes the job. Chunks already stored are not embedded again. With ``sync``, the
        stored documents under a folder of ``paths`` whose files are gone from it are removed."""
        start = time.perf_counter()
        cfg = self.settings
        paths = [str(p) for p in paths]
        docs, skipped_files = load_documents(paths, int(cfg.max_file_mb * 1e6), cfg.convert_timeout_s,
                                             cfg.convert_memory_mb, cfg.fetch_timeout_s, cfg.allow_private_urls)
        named = []
        for d in docs:
            name = document_name(d.origin, roots)
            if len(name) > MAX_NAME:
                skipped_files.append(SkippedFile.keyed(d.origin, "skip.long_name", n=MAX_NAME))
            else:
                named.append((d, name))
        if not named:
            reasons = "; ".join(f"{s.path}: {s.reason}" for s in skipped_files[:5])
            raise EmptyCorpusError(key="error.no_usable_document", reasons=reasons or "nothing given",
                                   formats=", ".join(SUFFIXES))
        embedder = self.embedder
        cap = min(self.settings.chunk_tokens, max(embedder.max_tokens - 8, 16))
        overlap = min(self.settings.chunk_overlap, cap // 4)
        produced = [c for d, name in named for c in chunk_document(d, cap, overlap, embedder.token_spans, name)]
        chunks = {c.id: c for c in produced}  # the same text twice in one document is stored once
        wanted: dict[str, set[str]] = {}  # document -> the ids of its chunks now
        for c in chunks.values():
            wanted.setdefault(c.document, set()).add(c.id)
        before = self.store.document_ids(list(wanted))
        added = self.index(list(chunks.values()), progress, batch, added_by)
        stale = [i for name, ids in before.items() for i in ids - wanted[name]]
        if stale:  # only now: the new version is stored
            self.store.delete_ids(stale)
            self.store.flush()
        self._keep_texts(named)
        changes = tuple(
            DocumentChange(name, "added" if name not in before else "unchanged" if before[name] == ids else "replaced",
                           len(ids))
            for name, ids in wanted.items()
        )
        removed = self._sync(paths, roots, set(wanted)) if sync else ()
        self.texts.remove(removed)
        return IngestReport(
            files=len({d.origin for d, _ in named}),
            chunks_added=added,
            chunks_skipped=len(produced) - added,
            seconds=time.perf_counter() - start,
            skipped_files=tuple(skipped_files),
            documents=changes,
            removed=removed,
        )

    def _keep_texts(self, named: Sequence[tuple[Document, str]]) -> None:
        """Keep each document's converted text, and a copy of it if it is a PDF file, for the document view."""
        pages: dict[str, list[Document]] = {}
        for d, name in named:
            pages.setdefault(name, []).append(d)
        texts = self.texts
        for name, docs in pages.items():
            origin = docs[0].origin
            pdf = origin if origin.lower().endswith(".pdf") and Path(origin).is_file() else None
            try:
                texts.save(name, docs, pdf)
            except OSError as exc:  # the index is what matters; the view then says no text was kept
                log.warning("could not keep the text of %s for the document view (%s); check RAG_DATA_DIR", name, exc)

    def _sync(self, paths: Sequence[str], roots: Sequence[str | Path], loaded: set[str]) -> tuple[str, ...]:
        """Remove the stored documents under the folders among ``paths`` whose files are gone (a file still there
        but skipped this time stays); returns their names."""
        present = {document_name(str(p), roots) for p in find_files(paths)[0]} | loaded
        folders = [document_name(p, roots).rstrip("/") + "/" for p in paths if Path(p).is_dir()]
        gone = [d.source for d in self.store.documents()
                if any(d.source.startswith(f) for f in folders) and d.source not in present]
        return tuple(self.store.delete_documents(gone))

    def index(
        self, chunks: Sequence[Chunk], progress: Progress | None = None, batch: int = 64, added_by: str = ""
    ) -> int:
        """Embed and store the chunks that are not stored yet (by id); returns how many were added."""
        embedder = self.embedder
        self.store.ensure(self.model_id, embedder.dimension)
        existing = self.store.existing_ids([c.id for c in chunks])
        # shortest first: each batch then holds chunks of about one length, so a CPU pads (and wastes) little
        new = sorted((c for c in chunks if c.id not in existing), key=lambda c: len(c.text))
        if progress:
            progress(0, len(new))
        for i in range(0, len(new), batch):
            part = new[i : i + batch]
            with self._lock:
                vectors = embedder.embed_documents([c.text for c in part], step=batch)
            self.store.insert(part, vectors, added_by)  # stored batch by batch: a crash loses at most one batch
            if progress:
                progress(i + len(part), len(new))
        if new:
            self.store.flush()
        return len(new)

    def dense(
        self, question: str, candidates: int | None = None, instruction: str | None = None, top_k: int | None = None,
        hybrid: bool | None = None, sources: Sequence[str] = (),
    ) -> Retrieval:
        """Stage 1: the N candidates (the reranked side is left empty), dense, or hybrid when ``hybrid`` (default:
        RAG_HYBRID) is true."""
        hybrid = self.settings.hybrid if hybrid is None else hybrid
        return self.first_stage(question, "hybrid" if hybrid else "dense", candidates, instruction, top_k, sources)

    def first_stage(
        self, question: str, mode: str = "dense", candidates: int | None = None, instruction: str | None = None,
        top_k: int | None = None, sources: Sequence[str] = (),
    ) -> Retrieval:
        """Stage 1 by ``mode``: "dense", "bm25" or "hybrid". Each hit's ``dense_score`` is that ranking's score.
        With ``sources`` (document names), every candidate comes from those documents."""
        if mode not in FIRST_STAGES:
            raise ValueError(f"mode {mode!r} is not one of {FIRST_STAGES}")
        question = question.strip()
        if not question:
            raise EmptyQuestionError(key="error.empty_question")
        n = candidates or self.settings.candidates
        if not self.store.exists():
            raise EmptyCorpusError(key="error.no_collection", collection=repr(self.settings.collection))
        embedder = self.embedder if mode != "bm25" else None  # loaded outside the timer
        question, notices = self._cap(question, embedder)
        t0 = time.perf_counter()
        vector = None
        if embedder is not None:
            with self._lock:
                vector = embedder.embed_query(question, instruction or self.settings.query_instruction)
        t1 = time.perf_counter()
        sources = tuple(dict.fromkeys(sources))
        if mode == "dense":
            found = self.store.search(vector, n, sources)
        elif mode == "bm25":
            found = self.store.search_bm25(question, n, sources)
        else:
            found = self.store.search_hybrid(vector, question, n, sources)
        t2 = time.perf_counter()
        if not found and sources and self.store.count(sources) == 0:
            raise UnknownDocumentError(
                key="error.unknown_chosen", collection=repr(self.settings.collection),
                names=f"{', '.join(map(repr, sources[:3]))}{' …' if len(sources) > 3 else ''}")
        if not found and (mode == "dense" or self.store.count() == 0):  # BM25 finds nothing when no word matches
            raise EmptyCorpusError(key="error.empty_collection", collection=repr(self.settings.collection))
        hits = tuple(
            Hit(c.id, c.text, c.source, c.heading, dense_rank=i + 1, dense_score=score, document=c.doc)
            for i, (c, score) in enumerate(found)
        )
        return Retrieval(question, hits, (), top_k or self.settings.top_k, Timings(embed_s=t1 - t0, search_s=t2 - t1),
                         first_stage=mode, notice=" ".join(t("en", k, **p) for k, p in notices), sources=sources,
                         notices=notices)

    def rerank(self, dense: Retrieval, top_k: int | None = None, instruction: str | None = None) -> Retrieval:
        """Stage 2: score the dense candidates with the reranker and order them by P(yes). A failed model call
        raises (``ModelCallError``): an evaluation must not count unranked candidates as ranked."""
        *_, last = self._rerank_steps(dense, top_k, instruction)
        return last

    def rerank_steps(
        self, dense: Retrieval, top_k: int | None = None, instruction: str | None = None
    ) -> Iterator[Retrieval]:
        """Stage 2 as it goes: candidates are scored in dense order, and after each one the retrieval so far is
        yielded, its ``reranked_all`` holding the scored candidates, best first. The last one has them all, and is
        what ``rerank`` returns. The lock is taken per candidate, never across a yield. When a model call fails
        (``ModelCallError``: a rerank server down or answering badly) the last one is ``dense`` with nothing
        reranked and a ``notice`` that says why."""
        try:
            yield from self._rerank_steps(dense, top_k, instruction)
        except ModelCallError as exc:
            yield dataclasses.replace(dense, reranked_all=(), notice=" ".join(
                filter(None, (dense.notice, t("en", "notice.not_reranked", detail=str(exc))))),
                notices=(*dense.notices, ("notice.not_reranked", {"detail": str(exc)})))

    def _rerank_steps(
        self, dense: Retrieval, top_k: int | None = None, instruction: str | None = None
    ) -> Iterator[Retrieval]:
        reranker = self.reranker  # loaded outside the timer
        caveat = reranker.notice(instruction or self.settings.rerank_instruction)
        if caveat:  # English: a remote reranker's caveat (rag.remote), shown with the UI's prefix
            dense = dataclasses.replace(dense, notice=" ".join(filter(None, (dense.notice, caveat))),
                                        notices=(*dense.notices, ("notice.detail", {"detail": caveat})))
        t0 = time.perf_counter()
        texts = [h.text for h in dense.candidates]
        steps = reranker.score_iter(dense.question, texts, instruction or self.settings.rerank_instruction)
        scores: list[float] = []
        while len(scores) < len(texts):
            with self._lock:
                scores.append(next(steps))
            if len(scores) < len(texts):
                yield self._ranked(dense, scores, top_k, time.perf_counter() - t0)
        yield self._ranked(dense, scores, top_k, time.perf_counter() - t0)

    @staticmethod
    def _ranked(dense: Retrieval, scores: Sequence[float], top_k: int | None, seconds: float) -> Retrieval:
        """``dense`` with the first ``len(scores)`` candidates scored, and those in ``reranked_all``, best first."""
        order = sorted(range(len(scores)), key=lambda i: (-scores[i], i))
        rank = {i: r + 1 for r, i in enumerate(order)}
        scored = tuple(
            Hit(**{**h.to_dict(), "rerank_rank": rank[i], "rerank_score": scores[i]}) if i < len(scores) else h
            for i, h in enumerate(dense.candidates)
        )
        timings = Timings(dense.timings.embed_s, dense.timings.search_s, seconds)
        return Retrieval(
            dense.question, scored, tuple(scored[i] for i in order), top_k or dense.top_k, timings, dense.first_stage,
            dense.notice, dense.sources, notices=dense.notices,
        )

    def _cap(self, question: str, embedder: Embedder | None) -> tuple[str, tuple[tuple[str, dict[str, Any]], ...]]:
        """The question cut to ``max_question_tokens`` (and the embedder's own limit), and a notice (a locale key
        and its params) if it was."""
        limit = self.settings.max_question_tokens
        if embedder is not None:
            limit = min(limit, max(embedder.max_tokens - 32, 16))
        spans = embedder.token_spans(question) if embedder is not None else word_spans(question)
        if len(spans) <= limit:
            return question, ()
        return question[: spans[limit - 1][1]], (("notice.question_cut", {"n": len(spans), "limit": limit}),)

    def retrieve(
        self,
        question: str,
        candidates: int | None = None,
        top_k: int | None = None,
        query_instruction: str | None = None,
        rerank_instruction: str | None = None,
        hybrid: bool | None = None,
        sources: Sequence[str] = (),
        stage: str | None = None,
    ) -> Retrieval:
        """Both stages: N candidates (dense, or hybrid), then the same N reranked; ``top_k`` of each are shown.
        ``sources``: the names of the documents to search (all when empty); ``stage`` ("dense", "bm25" or
        "hybrid"), when given, is the first stage whatever ``hybrid`` says."""
        *_, last = self.retrieve_steps(question, candidates, top_k, query_instruction, rerank_instruction, hybrid,
                                       sources, stage)
        return last

    def retrieve_steps(
        self,
        question: str,
        candidates: int | None = None,
        top_k: int | None = None,
        query_instruction: str | None = None,
        rerank_instruction: str | None = None,
        hybrid: bool | None = None,
        sources: Sequence[str] = (),
        stage: str | None = None,
    ) -> Iterator[Retrieval]:
        """``retrieve`` as it goes: the first stage (its reranked side empty), then the reranking as it fills in
        (``rerank_steps``); the last one yielded is ``retrieve``'s result. If the reranked side of the last one is
        empty, the candidates could not be reranked and its ``notice`` says why (the answer then uses the dense
        top-k)."""
        if stage is None:
            first = self.dense(question, candidates, query_instruction, top_k, hybrid, sources)
        else:
            first = self.first_stage(question, stage, candidates, query_instruction, top_k, sources)
        yield first
        yield from self.rerank_steps(first, top_k, rerank_instruction)

    def ask(
        self, question: str, history: Sequence[Turn] = (), llm_model: str | None = None, **retrieve_options: Any
    ) -> tuple[Retrieval, AnswerStream]:
        """All three stages. A follow-up is condensed into a standalone question for retrieval only; the answer
        prompt gets the question as asked, with the bounded history."""
        if not question.strip():
            raise EmptyQuestionError(key="error.empty_question")
        standalone = self.generator.standalone_question(question.strip(), history, llm_model)
        retrieval = self.retrieve(standalone, **retrieve_options)
        return retrieval, self.generator.stream(question.strip(), retrieval.passages, history, llm_model)

    def info(self) -> dict[str, Any]:
        """What the CLI's ``info`` prints: no model is loaded for it."""
        from rag.devices import pick_device

        exists = self.store.exists()
        model, dim = self.store.recorded() if exists else (None, None)
        return {
            "collection": self.settings.collection,
            "chunks": self.store.count() if exists else 0,
            "embedding_model": self.settings.embedding_model,
            "reranker_model": self.settings.reranker_model,
            "collection_model": model,
            "dimension": dim,
            "analyzer": self.settings.analyzer or DEFAULT_ANALYZER,  # what a new collection gets
            "collection_analyzer": self.store.recorded_analyzer() if exists else None,
            "uri": self.settings.milvus_uri,
            "device": pick_device(self.settings.device),
        }

