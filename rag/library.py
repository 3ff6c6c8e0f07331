"""The app's document library: first-start indexing, uploads, web pages, removal, clear and rebuild, with a status
anyone can read.

Shared by every session of the app. A document is one file or one URL (``rag.documents.document_name``): uploads
are named by their file name (a zip's files by ``zipname/path``), kept under ``data_dir/uploads`` under that name,
and added web pages' URLs in ``data_dir/urls.txt``, so that a rebuild loses nothing. Adding a document whose name is
already indexed replaces it (``Pipeline.ingest``). An upload is staged under ``data_dir/incoming`` while it is
indexed, and only the files that were indexed replace the kept ones, so a bad file never costs the good version.
Removing a document removes its chunks, its kept text (``rag.texts``), its kept upload and its URL; a removed
document of the default corpus is written to ``data_dir/removed.json``, which first start and rebuild skip. One
library job runs at a time.
Several replicas over one Milvus: only the one with ``RAG_INDEX_ON_START=true`` indexes an empty collection on first
start, so two that start together never index it twice; each finishes its own interrupted jobs.

Before each indexing job the job (``IndexJob``) is written to ``data_dir/pending-ingest.json`` and removed when it
ends; a start that finds the file (the app was killed mid-job) runs it again, which embeds only what is missing and
then removes the old versions of replaced documents.

Leaves out: the UI (``app.py``, ``rag.ui_documents``) and retrieval (``rag.pipeline``).
"""

from __future__ import annotations

import dataclasses
import json
import logging
import os
import shutil
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from rag.corpus import DefaultCorpus, default_corpus
from rag.documents import document_name, extract_zip, find_files
from rag.errors import RAGError, UnknownDocumentError
from rag.locales import error_text, t
from rag.pipeline import Pipeline
from rag.types import DocumentInfo, IngestReport, SkippedFile

Progress = Callable[[int, int], None]
log = logging.getLogger(__name__)
INDEX_BATCH = 8  # chunks embedded and stored at a time: about 8 s on 2 CPU cores at 0.6B, a moment on a GPU
LIST_TTL_S = 20.0  # how long the document list is reused (a change made here clears it at once)


@dataclass(frozen=True)
class IndexJob:
    """One indexing job, as ``pending-ingest.json`` keeps it: the paths, the folders their names are relative to
    (``document_name``), a staging folder whose indexed files then move into the uploads (``keep``), and who added
    them."""

    paths: tuple[str, ...]
    roots: tuple[str, ...] = ()
    keep: str | None = None
    added_by: str = ""
    remember_urls: bool = False  # the URLs among the paths go into urls.txt once indexed

    @staticmethod
    def read(data: object) -> IndexJob:
        if isinstance(data, list):  # the format before jobs had a root: a list of paths
            return IndexJob(tuple(map(str, data)))
        assert isinstance(data, dict)
        return IndexJob(**{**data, "paths": tuple(data["paths"]), "roots": tuple(data.get("roots", ()))})


@dataclass(frozen=True)
class Removal:
    """What ``Library.remove`` did: chunks removed per document, and the names it did not find."""

    removed: dict[str, int]
    unknown: tuple[str, ...]

    def to_dict(self) -> dict[str, object]:
        return {"removed": [{"source": n, "chunks": c} for n, c in self.removed.items()], "unknown": list(self.unknown)}


class Library:
    def __init__(self, pipeline: Pipeline) -> None:
        self.pipeline = pipeline
        self.settings = pipeline.settings
        data = Path(self.settings.data_dir)
        self.uploads = data / "uploads"
        self.incoming = data / "incoming"  # uploads being indexed
        self.pending = data / "pending-ingest.json"
        self.urls = data / "urls.txt"  # the web pages added, one URL a line
        self.removed = data / "removed.json"  # default-corpus documents removed: first start and rebuild skip them
        # the status banner's line as parts, (locale key, params) each, or the error that stopped first start;
        # status_in(lang) says it in a language, ``status`` in English; empty when idle and fine
        self._status: tuple[tuple[str, dict[str, object]], ...] = ()
        self._failure: RAGError | None = None
        self.busy = False
        self._job = threading.Lock()
        self._listed: tuple[float, list[DocumentInfo]] | None = None  # (when, documents()) for LIST_TTL_S

    @property
    def status(self) -> str:
        """The status banner's line in English (one line of markdown; empty when idle and fine)."""
        return self.status_in("en")

    def status_in(self, lang: str) -> str:
        """The status banner's line in ``lang`` (``rag.locales``)."""
        if self._failure is not None:
            return f"⚠ {error_text(lang, self._failure)}"
        return "".join(t(lang, key, **_said(lang, params)) for key, params in self._status)

    # -- first start ------------------------------------------------------------------------------------------
    def start(self) -> threading.Thread:
        """In the background: finish an indexing job a killed process left, or index the default corpus if the
        collection is empty; then load both models."""
        thread = threading.Thread(target=self._first_start, name="library-first-start", daemon=True)
        thread.start()
        return thread

    def _first_start(self) -> None:
        with self._job:
            self.busy = True
            start = time.perf_counter()
            try:
                interrupted = self._pending_job()
                chunks = self.pipeline.store.count()
                if interrupted:
                    log.info("an indexing job was interrupted; indexing %s again", ", ".join(interrupted.paths))
                    self._index(interrupted, "status.finishing")
                elif chunks == 0 and not self.settings.index_on_start:  # another replica indexes (README)
                    log.info("the collection is empty; RAG_INDEX_ON_START=false, so another replica indexes it")
                elif chunks == 0:
                    self._status = (("status.preparing", {}),)
                    job, corpus = self._default_job()
                    log.info("the collection is empty; indexing %s", corpus.origin)
                    if job.paths:
                        self._index(job, "status.indexing_default", corpus)
                else:
                    log.info("the index holds %d chunks; nothing to embed", chunks)
                self._status += (("status.loading_reranker", {}),)
                _ = self.pipeline.embedder, self.pipeline.reranker
                self._status = ()
                log.info("ready in %.1f s", time.perf_counter() - start)
            except RAGError as exc:
                self._failure = exc
                log.error("%s", exc)
            finally:
                self.busy = False

    def _default_job(self) -> tuple[IndexJob, DefaultCorpus]:
        """The default corpus (``rag.corpus``) less the documents removed from it, and that corpus (its ``origin``
        says where it came from)."""
        corpus = default_corpus(self.settings)
        removed = self._removed()
        files = [str(p) for p in find_files(corpus.paths)[0] if document_name(str(p), [corpus.root]) not in removed]
        return IndexJob(tuple(files), (corpus.root,)), corpus

    def _index(self, job: IndexJob, what: str, corpus: DefaultCorpus | None = None) -> None:
        """Run ``job`` with the status saying ``what`` (a locale key) and from where (``corpus``), then what it did."""
        origin = self._origin(corpus)
        report = self._run(job, self._progress(what, origin))
        self._status = (("status.indexed", {"files": report.files, "chunks": report.chunks_added}), *origin,
                        ("status.sep", {}))  # then "Loading the reranker…"
        log.info("indexed %d files, %d chunks embedded in %.1f s", report.files, report.chunks_added, report.seconds)

    @staticmethod
    def _origin(corpus: DefaultCorpus | None) -> tuple[tuple[str, dict[str, object]], ...]:
        """The status parts of " from <where the corpus came from>"; none without a corpus."""
        if corpus is None or not corpus.origin_key:
            return ()
        return (("status.from", {"origin": (corpus.origin_key, dict(corpus.origin_params))}),)

    def _progress(self, what: str, origin: tuple[tuple[str, dict[str, object]], ...] = ()) -> Progress:
        def update(done: int, total: int) -> None:
            self._status = ((what, {}), *origin, ("status.embedded", {"done": done, "total": total}))
            log.info("%s: %d/%d chunks embedded", t("en", what).lower(), done, total)

        return update

    def _run(self, job: IndexJob, progress: Progress | None) -> IngestReport:
        """``pipeline.ingest`` of the job, with the job recorded until it returns or raises (only a killed process
        leaves it behind; see the module's docstring); then the staged uploads it indexed are kept."""
        _write_json(self.pending, dataclasses.asdict(job))
        try:  # small batches: the status moves after each, and questions get the model between them
            report = self.pipeline.ingest(job.paths, progress=progress, batch=INDEX_BATCH, roots=job.roots,
                                          added_by=job.added_by)
            stored = [d.source for d in report.documents]
            if job.keep:
                self._keep(Path(job.keep), stored)
            if job.remember_urls:
                indexed = set(stored)
                self._remember_urls([u for u in job.paths if u in indexed])
            self._unremove(stored)
            return report
        finally:
            self._listed = None
            if job.keep:
                shutil.rmtree(job.keep, ignore_errors=True)
            self.pending.unlink(missing_ok=True)

    def _pending_job(self) -> IndexJob | None:
        if not self.pending.exists():
            return None
        return IndexJob.read(json.loads(self.pending.read_text(encoding="utf-8")))

    # -- uploads, web pages ------------------------------------------------------------------------------------
    def add(self, files: Sequence[str | Path], progress: Progress | None = None, user: str = "") -> IngestReport:
        """Index the uploaded files (extracting zips), and keep those indexed. A file whose name is already in the
        index replaces it. Bad files are skipped with their reason."""
        if len(files) > self.settings.max_upload_files:
            raise RAGError(key="error.too_many_files", n=len(files), limit=self.settings.max_upload_files)
        max_bytes = int(self.settings.max_file_mb * 1e6)
        staging = self.incoming / f"{time.strftime('%Y%m%d-%H%M%S')}-{os.getpid()}-{threading.get_ident()}"
        staged: list[Path] = []
        skipped: list[SkippedFile] = []
        for f in map(Path, files):
            if f.suffix.lower() == ".zip":
                got, bad = extract_zip(f, staging / f.stem, max_bytes, max_files=self.settings.max_upload_files)
                staged += got
                skipped += bad
            else:
                staging.mkdir(parents=True, exist_ok=True)
                target = staging / f.name
                shutil.copy(f, target)
                staged.append(target)
        if not staged:
            shutil.rmtree(staging, ignore_errors=True)
            raise RAGError(key="error.nothing_to_add", reasons="; ".join(f"{s.path}: {s.reason}" for s in skipped[:5]))
        job = IndexJob(tuple(map(str, staged)), (str(staging),), str(staging), user)
        report = self._locked(job, progress)
        skipped_files = tuple(skipped) + tuple(
            dataclasses.replace(s, path=document_name(s.path, [staging])) for s in report.skipped_files)
        return dataclasses.replace(report, skipped_files=skipped_files)

    def _keep(self, staging: Path, names: Sequence[str]) -> None:
        """Move the staged files of the documents ``names`` into the uploads, replacing the kept ones."""
        for name in names:
            source, target = staging / name, self.uploads / name
            if source.is_file() and _inside(target, self.uploads):
                target.parent.mkdir(parents=True, exist_ok=True)
                os.replace(source, target)

    def add_urls(self, urls: Sequence[str], progress: Progress | None = None, user: str = "") -> IngestReport:
        """Fetch the web pages at ``urls`` and index them (``rag.web``; its address rules are the settings'); a URL
        already indexed is fetched again and replaces it. They are remembered in ``data_dir/urls.txt``, so that a
        rebuild fetches them again."""
        urls = [u.strip() for u in urls if u.strip()]
        if not urls:
            raise RAGError(key="error.no_urls")
        if len(urls) > self.settings.max_upload_files:
            raise RAGError(key="error.too_many_urls", n=len(urls), limit=self.settings.max_upload_files)
        return self._locked(IndexJob(tuple(urls), added_by=user, remember_urls=True), progress)

    def _locked(self, job: IndexJob, progress: Progress | None) -> IngestReport:
        with self._job:
            self.busy = True
            try:
                return self._run(job, progress)
            finally:
                self.busy = False

    def _remember_urls(self, urls: Sequence[str]) -> None:
        known = set(self._urls())  # read once, not once per URL
        kept = [u for u in urls if u not in known]
        if kept:
            self.urls.parent.mkdir(parents=True, exist_ok=True)
            with open(self.urls, "a", encoding="utf-8") as f:
                f.write("".join(f"{u}\n" for u in kept))

    def _urls(self) -> list[str]:
        return self.urls.read_text(encoding="utf-8").split() if self.urls.exists() else []

    # -- the documents -----------------------------------------------------------------------------------------
    def documents(self) -> list[DocumentInfo]:
        """The documents in the collection (``MilvusStore.documents``), reused for ``LIST_TTL_S`` seconds unless
        this library changed them: every question shows how many there are, and the list is one pass over the
        collection."""
        listed = self._listed
        if listed is None or time.monotonic() - listed[0] > LIST_TTL_S:
            listed = self._listed = (time.monotonic(), self.pipeline.store.documents())
        return listed[1]

    def remove(self, names: Sequence[str]) -> Removal:
        """Remove the documents ``names``: their chunks, their kept uploads and their URLs, so that a rebuild does
        not bring them back (a removed default-corpus document is remembered in ``removed.json``). Names not in
        the collection are returned as unknown; if none is known, ``UnknownDocumentError`` says how to list them."""
        names = list(dict.fromkeys(n for n in names if n))
        if not names:
            raise RAGError(key="error.choose_to_remove")
        with self._job:
            self._listed = None
            removed = self.pipeline.store.delete_documents(names)
            self.pipeline.texts.remove(list(removed))
            unknown = tuple(n for n in names if n not in removed)
            if not removed:
                raise UnknownDocumentError(
                    key="error.unknown_document", collection=repr(self.settings.collection),
                    names=f"{', '.join(map(repr, unknown[:3]))}{' …' if len(unknown) > 3 else ''}")
            for name in removed:
                kept = self.uploads / name
                if _inside(kept, self.uploads) and kept.is_file():
                    kept.unlink()
            urls = self._urls()
            if any(u in removed for u in urls):
                self.urls.write_text("".join(f"{u}\n" for u in urls if u not in removed), encoding="utf-8")
            self._write_removed(self._removed() | set(removed))
        return Removal(removed, unknown)

    def _removed(self) -> set[str]:
        return set(json.loads(self.removed.read_text(encoding="utf-8"))) if self.removed.exists() else set()

    def _unremove(self, names: Sequence[str]) -> None:
        removed = self._removed()
        if removed & set(names):
            self._write_removed(removed - set(names))

    def _write_removed(self, names: set[str]) -> None:
        _write_json(self.removed, sorted(names))

    # -- clear, rebuild ----------------------------------------------------------------------------------------
    def clear(self) -> None:
        """Drop the collection. Uploaded files stay on disk for a rebuild."""
        with self._job:
            self.pipeline.store.drop()
            self.pipeline.texts.clear()
            self._listed = None

    def rebuild(self, progress: Progress | None = None) -> IngestReport:
        """Drop the collection and index the default corpus (less what was removed from it), every kept upload and
        every added web page again, as one job."""
        default, _ = self._default_job()
        paths = list(default.paths) + ([str(self.uploads)] if self.uploads.exists() else []) + self._urls()
        if not paths:
            raise RAGError(key="error.nothing_to_rebuild")
        with self._job:
            self.busy = True
            try:
                self.pipeline.store.drop()
                self.pipeline.texts.clear()
                return self._run(IndexJob(tuple(paths), (*default.roots, str(self.uploads))), progress)
            finally:
                self.busy = False

    def stats(self) -> dict[str, object]:
        info = self.pipeline.info()
        info["uploads"] = sum(1 for p in self.uploads.rglob("*") if p.is_file()) if self.uploads.exists() else 0
        return info


def _said(lang: str, params: dict[str, object]) -> dict[str, object]:
    """``params`` with each (key, params) pair among them said in ``lang`` (a status part inside another)."""
    return {k: t(lang, v[0], **v[1]) if isinstance(v, tuple) else v for k, v in params.items()}


def _write_json(path: Path, data: object) -> None:
    """``data`` as JSON in ``path``, atomically: a crash leaves the old file or the new one, never half of one."""
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_suffix(".tmp")
    partial.write_text(json.dumps(data, ensure_ascii=False), encoding="utf-8")
    partial.replace(path)


def _inside(path: Path, root: Path) -> bool:
    """True when ``path`` lies under ``root`` (a document name is data: "../x" must not reach outside)."""
    return path.resolve().is_relative_to(root.resolve()) and path.resolve() != root.resolve()
