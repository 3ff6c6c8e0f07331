"""The app's document library: first-start indexing, uploads, clear and rebuild, with a status anyone can read.

Shared by every session of the app. Uploaded files are kept under ``data_dir/uploads`` and added web pages' URLs in
``data_dir/urls.txt``, so that a rebuild loses nothing; a zip is extracted there safely
(``rag.documents.extract_zip``). One library job runs at a time.
Before each indexing job the paths it indexes are written to ``data_dir/pending-ingest.json`` and removed when it
ends; a start that finds the file (the app was killed mid-job) indexes them again, which embeds only what is missing.
Several replicas over one Milvus: only the one with ``RAG_INDEX_ON_START=true`` indexes an empty collection on first
start, so two that start together never index it twice; each finishes its own interrupted jobs.

Leaves out: the UI (``app.py``) and retrieval (``rag.pipeline``).
"""

from __future__ import annotations

import json
import logging
import shutil
import threading
import time
from collections.abc import Callable, Sequence
from pathlib import Path

from rag.corpus import default_corpus
from rag.documents import extract_zip
from rag.errors import RAGError
from rag.pipeline import Pipeline
from rag.types import IngestReport, SkippedFile

Progress = Callable[[int, int], None]
log = logging.getLogger(__name__)
INDEX_BATCH = 8  # chunks embedded and stored at a time: about 8 s on 2 CPU cores at 0.6B, a moment on a GPU


class Library:
    def __init__(self, pipeline: Pipeline) -> None:
        self.pipeline = pipeline
        self.settings = pipeline.settings
        self.uploads = Path(self.settings.data_dir) / "uploads"
        self.pending = Path(self.settings.data_dir) / "pending-ingest.json"
        self.urls = Path(self.settings.data_dir) / "urls.txt"  # the web pages added, one URL a line
        self.status = ""  # one line of markdown for the status banner; empty when idle and fine
        self.busy = False
        self._job = threading.Lock()

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
                interrupted = self._pending_paths()
                chunks = self.pipeline.store.count()
                if interrupted:
                    log.info("an indexing job was interrupted; indexing %s again", ", ".join(interrupted))
                    self._index(interrupted, "Finishing the interrupted indexing")
                elif chunks == 0 and not self.settings.index_on_start:  # another replica indexes (README)
                    log.info("the collection is empty; RAG_INDEX_ON_START=false, so another replica indexes it")
                elif chunks == 0:
                    self.status = "Preparing the default documents…"
                    self._index(default_corpus(self.settings), "Indexing the default documents")
                else:
                    log.info("the index holds %d chunks; nothing to embed", chunks)
                self.status += "Loading the reranker…"
                _ = self.pipeline.embedder, self.pipeline.reranker
                self.status = ""
                log.info("ready in %.1f s", time.perf_counter() - start)
            except RAGError as exc:
                self.status = f"⚠ {exc}"
                log.error("%s", exc)
            finally:
                self.busy = False

    def _index(self, paths: Sequence[str | Path], what: str) -> None:
        report = self._ingest(paths, self._progress(what))
        self.status = f"Indexed {report.files} files ({report.chunks_added} chunks). "
        log.info("indexed %d files, %d chunks embedded in %.1f s", report.files, report.chunks_added, report.seconds)

    def _progress(self, what: str) -> Progress:
        def update(done: int, total: int) -> None:
            self.status = (f"{what}: {done} of {total} chunks embedded. Questions are answered from what is indexed "
                           "so far.")
            log.info("%s: %d/%d chunks embedded", what.lower(), done, total)

        return update

    def _ingest(self, paths: Sequence[str | Path], progress: Progress | None) -> IngestReport:
        """``pipeline.ingest``, with the paths recorded until it returns or raises; only a killed process leaves
        them behind (see the module's docstring)."""
        self.pending.parent.mkdir(parents=True, exist_ok=True)
        partial = self.pending.with_suffix(".tmp")
        partial.write_text(json.dumps([str(p) for p in paths]))
        partial.replace(self.pending)  # atomic: a crash leaves the old file or the new one, never half of one
        try:  # small batches: the status moves after each, and questions get the model between them
            return self.pipeline.ingest(paths, progress=progress, batch=INDEX_BATCH)
        finally:
            self.pending.unlink(missing_ok=True)

    def _pending_paths(self) -> list[str]:
        if not self.pending.exists():
            return []
        return [str(p) for p in json.loads(self.pending.read_text())]

    # -- uploads, clear, rebuild ------------------------------------------------------------------------------
    def add(self, files: Sequence[str | Path], progress: Progress | None = None) -> IngestReport:
        """Keep the uploaded files (extracting zips) and index them. Bad files are skipped with their reason."""
        if len(files) > self.settings.max_upload_files:
            raise RAGError(f"{len(files)} files at once is more than the limit of {self.settings.max_upload_files} "
                           "(RAG_MAX_UPLOAD_FILES); upload fewer, or a zip.")
        max_bytes = int(self.settings.max_file_mb * 1e6)
        batch = self.uploads / time.strftime("%Y%m%d-%H%M%S")
        kept: list[Path] = []
        skipped: list[SkippedFile] = []
        for f in map(Path, files):
            if f.suffix.lower() == ".zip":
                got, bad = extract_zip(f, batch / f.stem, max_bytes, max_files=self.settings.max_upload_files)
                kept += got
                skipped += bad
            else:
                batch.mkdir(parents=True, exist_ok=True)
                target = batch / f.name
                shutil.copy(f, target)
                kept.append(target)
        with self._job:
            self.busy = True
            try:
                report = self._ingest(kept, progress) if kept else None
            finally:
                self.busy = False
        if report is None:
            raise RAGError("Nothing to add: " + "; ".join(f"{s.path}: {s.reason}" for s in skipped[:5]))
        return IngestReport(report.files, report.chunks_added, report.chunks_skipped, report.seconds,
                            tuple(skipped) + report.skipped_files)

    def add_urls(self, urls: Sequence[str], progress: Progress | None = None) -> IngestReport:
        """Fetch the web pages at ``urls`` and index them (``rag.web``; its address rules are the settings').
        They are remembered in ``data_dir/urls.txt``, so that a rebuild fetches them again."""
        urls = [u.strip() for u in urls if u.strip()]
        if not urls:
            raise RAGError("Type one or more http(s) URLs, one per line.")
        if len(urls) > self.settings.max_upload_files:
            raise RAGError(f"{len(urls)} URLs at once is more than the limit of {self.settings.max_upload_files} "
                           "(RAG_MAX_UPLOAD_FILES).")
        with self._job:
            self.busy = True
            try:
                report = self._ingest(urls, progress)
            finally:
                self.busy = False
        failed = {s.path for s in report.skipped_files}
        known = set(self._urls())  # read once, not once per URL
        kept = [u for u in urls if u not in failed and u not in known]
        if kept:
            with open(self.urls, "a", encoding="utf-8") as f:
                f.write("".join(f"{u}\n" for u in kept))
        return report

    def _urls(self) -> list[str]:
        return self.urls.read_text(encoding="utf-8").split() if self.urls.exists() else []

    def clear(self) -> None:
        """Drop the collection. Uploaded files stay on disk for a rebuild."""
        with self._job:
            self.pipeline.store.drop()

    def rebuild(self, progress: Progress | None = None) -> IngestReport:
        """Drop the collection and index the default corpus, every kept upload and every added web page again."""
        paths = default_corpus(self.settings)
        if self.uploads.exists():
            paths.append(str(self.uploads))
        paths += self._urls()
        with self._job:
            self.busy = True
            try:
                self.pipeline.store.drop()
                return self._ingest(paths, progress)
            finally:
                self.busy = False

    def stats(self) -> dict[str, object]:
        info = self.pipeline.info()
        info["uploads"] = sum(1 for p in self.uploads.rglob("*") if p.is_file()) if self.uploads.exists() else 0
        return info
