"""The vector store: one Milvus collection through ``pymilvus.MilvusClient``.

The same code serves a Milvus Lite file (the default), a Milvus server or cluster, and Zilliz Cloud; only the URI
and token change. Fields: id, vector (inner product), text, source, heading, a BM25 sparse vector that Milvus
computes from the text (so full-text and hybrid search need no re-index), and the document each chunk belongs to:
``doc`` (its name, with an inverted index), ``added``, ``added_by`` and ``chars``. The embedding model and
dimension are recorded in the collection's properties, and mixing in another model or dimension is refused.

The BM25 analyzer is chosen when a collection is made (``analyzer``, RAG_ANALYZER) and recorded beside the model:
``standard`` (Lite's lower-cased ``\\w+`` words with English stop words; a server's ``english``) or ``jieba``
(Chinese words by jieba, English words whole; a server's ``chinese``, which is jieba plus a filter that drops
punctuation). Milvus fixes a field's analyzer at creation, so adding documents to a collection built with another
analyzer is refused, with the rebuild it needs, when the analyzer was chosen (``fixed``); a collection made before
the record is ``standard``. Left to the default (RAG_ANALYZER empty), a new collection gets ``jieba`` and an
existing one keeps its own.

Documents are units: ``documents()`` lists them, ``document_ids`` and ``delete_documents`` find and remove their
chunks, and every search takes ``sources``, a list of document names that its candidates must come from. The one
filter expression on document names is built here (``_doc_filter``), each name written as an escaped string literal
(``quote``; Milvus Lite has no filter templates), so a name is data whatever it holds. A collection made before the
``doc`` field existed is upgraded the first time it is opened (``upgrade``): its rows, vectors unchanged, are copied
into a new collection with the fields, each chunk named after its document, which then takes the old one's name.

Three searches: ``search`` (dense, inner product), ``search_bm25`` (Milvus full-text search over ``text``) and
``search_hybrid`` (both, fused by reciprocal rank in Milvus). Hybrid uses RRF, not a weighted sum: Milvus Lite
reports BM25 scores negated, which WeightedRanker's score normalisation would misread, while RRF uses ranks only.

Leaves out: embedding (``rag.embedding``) and ranking logic (``rag.pipeline``).
"""

from __future__ import annotations

import contextlib
import logging
import os
import re
import threading
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from rag.errors import IncompatibleCollectionError, StoreError, brief
from rag.settings import ANALYZERS
from rag.types import Chunk, DocumentInfo, origin_of

log = logging.getLogger(__name__)
MODEL_KEY = "rag.embedding_model"
DIM_KEY = "rag.embedding_dim"
ANALYZER_KEY = "rag.analyzer"
DEFAULT_ANALYZER = "jieba"  # what a new collection gets when RAG_ANALYZER is empty (README: Chinese documents)
_FIELDS = ["id", "text", "source", "heading", "doc"]
_SAFE_ID = re.compile(r"[0-9A-Za-z_-]{1,128}")  # what a chunk id looks like (a hash, or an evaluation corpus id)
_DOC_FIELDS = ["doc", "source", "chars", "added", "added_by"]  # what documents() reads: no text, no vectors
_MAX_TEXT = 65535
MAX_NAME = 8192  # the longest document name the ``doc`` field holds
UPGRADE_SUFFIX = "__rag_upgrade"  # the copy an upgrade builds, beside the collection
UPGRADED_KEY = "rag.upgrade_complete"
_PAGE = 1000  # rows per query or delete request
_SCAN_PAGE = 16384  # rows per page of a scan: Milvus's largest; four times as fast as pages of 1000 on Lite
RRF_K = 60  # the usual RRF constant: score = sum over rankings of 1 / (RRF_K + rank)
FUSION_DEPTH = 100  # each ranking fused in a hybrid search is at least this deep, whatever the final limit
CONNECT_BACKOFF_S = (0.5, 2.0)  # pauses before the second and third try to connect to a server that refused
EXACT_SCOPE = 20_000  # a scope of at most this many chunks is searched exactly (``MilvusStore._exact``)


def _unavailable(exc: BaseException) -> bool:
    """True when grpc's UNAVAILABLE is anywhere in the exception's chain (a refused or dropped connection)."""
    seen: BaseException | None = exc
    visited: set[int] = set()  # a chain can loop (an exception that is its own context's context)
    while seen is not None and id(seen) not in visited:
        visited.add(id(seen))
        code = getattr(seen, "code", None)
        if callable(code):
            with contextlib.suppress(Exception):
                if getattr(code(), "name", "") == "UNAVAILABLE":
                    return True
        seen = seen.__cause__ or seen.__context__
    return False


def is_lite_uri(uri: str) -> bool:
    return not uri.startswith(("http://", "https://", "tcp://", "grpc://", "unix:"))


class MilvusStore:
    """A collection of chunks with their embeddings."""

    def __init__(
        self, uri: str, collection: str, token: str = "", timeout: float = 10.0, analyzer: str = "standard",
        fixed: bool = True,
    ) -> None:
        if analyzer not in ANALYZERS:
            raise StoreError(f"Unknown BM25 analyzer {analyzer!r}: set RAG_ANALYZER to one of {', '.join(ANALYZERS)}.")
        self.uri = uri
        self.collection = collection
        self.analyzer = analyzer  # the BM25 analyzer a collection made by ensure() gets
        self.fixed = fixed  # True: ensure() refuses a collection built with another analyzer; False: any is used
        self.token = token
        self.timeout = timeout
        self._client: Any = None
        self._loaded = False
        self._has_sparse = False  # True once the collection is seen to have the BM25 field
        # Calls to a Lite file go one at a time, process-wide: Milvus Lite 3.2.2 builds a collection's in-memory
        # state twice when two threads touch it first at once, and keeps the copy that finished last, so a load
        # done on the other copy is lost (load_collection then waits for ever) and two recoveries run on one
        # folder. Lite is Python in this process, so little is lost; a server takes calls in parallel.
        lite = is_lite_uri(uri)
        self._serial: Any = _lite_calls(uri) if lite else contextlib.nullcontext()
        self._open_lock = self._serial if lite else threading.Lock()  # one open per Lite file and process
        self._load_lock = threading.Lock()
        self._owner = True  # False for a with_collection() view, whose close() leaves the shared client open

    def with_collection(self, collection: str) -> MilvusStore:
        """Another collection over the same connection (a Lite file can be opened only once per process).

        They share the client: closing this view leaves it open; closing the original closes it.
        """
        other = MilvusStore(self.uri, collection, self.token, self.timeout, self.analyzer, self.fixed)
        other._client, other._owner = self.client, False
        return other

    @property
    def client(self) -> Any:
        with self._open_lock:
            if self._client is None:
                self._client = self._open()
            return self._client

    def _open(self) -> Any:
        from pymilvus import MilvusClient

        if is_lite_uri(self.uri):
            Path(self.uri).expanduser().resolve().parent.mkdir(parents=True, exist_ok=True)
        try:
            client = self._connect(MilvusClient)
            if is_lite_uri(self.uri):
                key = _lite_key(self.uri)
                with _LITE_LOCK:
                    _LITE_OPEN[key] = _LITE_OPEN.get(key, 0) + 1
            return client
        except Exception as exc:
            if is_lite_uri(self.uri) and _lite_locked(self.uri):
                raise StoreError(
                    f"Another process has the Milvus Lite file {self.uri!r} open, and only one process can use it. "
                    "Stop the other process (an app or an ingest still running), set RAG_MILVUS_URI to another "
                    "file, or run a Milvus server and point RAG_MILVUS_URI at it."
                ) from exc
            raise StoreError(key="error.milvus_unreachable", uri=repr(self.uri), detail=brief(exc)) from exc

    def _connect(self, client_class: Any) -> Any:
        """A client for the URI. A server's refusal that grpc calls UNAVAILABLE is tried again, within the timeout,
        after CONNECT_BACKOFF_S: pymilvus shares one connection per address and recovers an idle one in place, and a
        server that drops idle connections (``milvus-lite server`` answers pymilvus's 10 s keepalive pings with
        GOAWAY "Too many pings") fails that recovery once and then takes a new connection."""
        deadline = time.monotonic() + self.timeout
        pauses = [] if is_lite_uri(self.uri) else list(CONNECT_BACKOFF_S)
        while True:
            try:
                return client_class(uri=self.uri, token=self.token, timeout=self.timeout)
            except Exception as exc:
                if not pauses or not _unavailable(exc) or time.monotonic() + pauses[0] >= deadline:
                    raise
                pause = pauses.pop(0)
                log.warning("Milvus at %s refused the connection (%s); trying again in %.1f s", self.uri, brief(exc),
                            pause)
                time.sleep(pause)

    def _call(self, what: str, fn: Any, *args: Any, **kwargs: Any) -> Any:
        try:
            with self._serial:
                return fn(*args, **kwargs)
        except StoreError:
            raise
        except Exception as exc:
            raise StoreError(key="error.milvus_failed", what=what, collection=repr(self.collection), uri=repr(self.uri),
                             detail=brief(exc)) from exc

    def exists(self) -> bool:
        """True when the collection exists; it is then loaded for search (a reopened one starts released)."""
        found = bool(self._call("look up", self.client.has_collection, self.collection))
        if not found and not self._loaded:
            found = self._finish_upgrade()
        if found and not self._loaded:
            with self._load_lock:  # one thread loads (and upgrades); the others wait for it
                if not self._loaded:
                    self._call("load", self.client.load_collection, self.collection)
                    self.upgrade()
                    self._loaded = True
        return found

    def upgrade(self) -> int:
        """Rebuild a collection made before documents were units with the ``doc``, ``added``, ``added_by`` and
        ``chars`` fields, each chunk named after its document (its source without ``#page=N``). Vectors are copied,
        so nothing is embedded again. Milvus Lite cannot add a field to a collection, so the rows go into a new
        collection, which then takes the old one's name; a crash at any point leaves the old collection whole, or
        the finished copy that the next open puts in its place. Returns how many chunks were copied (0 for a
        current collection)."""
        desc = self._call("describe", self.client.describe_collection, self.collection)
        if any(f["name"] == "doc" for f in desc["fields"]):
            return 0
        model, dim = self.recorded()
        dim = dim or next(f["params"]["dim"] for f in desc["fields"] if f["name"] == "vector")
        log.info("collection %r was made before documents were units: copying its chunks into the new schema "
                 "(nothing is embedded again)", self.collection)
        copy = self.with_collection(self.collection + UPGRADE_SUFFIX)
        copy.analyzer = self.recorded_analyzer()
        copy.drop()  # a copy a crash left half done
        copy._create_with_fallback(dim)
        copy._record(model or "", dim, {UPGRADED_KEY: "0"})
        fields = ["id", "vector", "text", "source", "heading"]
        it = self._call("read", self.client.query_iterator, self.collection, batch_size=_PAGE, filter="",
                        output_fields=fields)
        copied, stamp = 0, int(time.time())
        while page := self._call("read", it.next):
            copy._upsert([{**{k: r[k] for k in fields}, "doc": origin_of(r["source"])[:MAX_NAME], "added": stamp,
                           "added_by": "", "chars": len(r["text"])} for r in page])
            copied += len(page)
        self._call("read", it.close)
        copy.flush()
        copy._record(model or "", dim, {UPGRADED_KEY: "1"})  # complete: from here on the copy is the collection
        self._call("drop", self.client.drop_collection, self.collection)
        self._finish_upgrade()
        log.info("collection %r upgraded: %d chunks copied", self.collection, copied)
        return copied

    def _finish_upgrade(self) -> bool:
        """Give a complete upgraded copy the collection's name (after a crash between the drop and the rename,
        too); True when it did."""
        name = self.collection + UPGRADE_SUFFIX
        if not self._call("look up", self.client.has_collection, name):
            return False
        props = self._call("describe", self.client.describe_collection, name).get("properties") or {}
        if props.get(UPGRADED_KEY) != "1" or self._call("look up", self.client.has_collection, self.collection):
            return False
        self._call("rename", self.client.rename_collection, name, self.collection)
        self._call("load", self.client.load_collection, self.collection)
        return True

    def recorded(self) -> tuple[str | None, int | None]:
        """The embedding model and dimension the collection was built with (None when unknown)."""
        desc = self._call("describe", self.client.describe_collection, self.collection)
        props = desc.get("properties") or {}
        dim = next((f["params"].get("dim") for f in desc["fields"] if f["name"] == "vector"), None)
        return props.get(MODEL_KEY), int(props.get(DIM_KEY) or dim or 0) or None

    def recorded_analyzer(self) -> str:
        """The BM25 analyzer the collection was built with: its record, else read from the ``text`` field's schema
        (a process killed between creating and recording), else ``standard`` (a collection made before the
        record)."""
        desc = self._call("describe", self.client.describe_collection, self.collection)
        name = (desc.get("properties") or {}).get(ANALYZER_KEY)
        if name:
            return str(name)
        params = next((f.get("params", {}).get("analyzer_params") for f in desc["fields"] if f["name"] == "text"), "")
        return "jieba" if "jieba" in str(params) or "chinese" in str(params) else "standard"

    def check_analyzer(self) -> str:
        """Refuse a collection built with another BM25 analyzer than ``self.analyzer``; returns the recorded one."""
        have = self.recorded_analyzer()
        if have != self.analyzer:
            raise IncompatibleCollectionError(
                f"Collection {self.collection!r} was built with the {have!r} BM25 analyzer, but RAG_ANALYZER is "
                f"{self.analyzer!r}; Milvus fixes a collection's analyzer when it is made. Set RAG_ANALYZER={have} "
                "back, or rebuild: set RAG_COLLECTION to a new name and ingest again (or clear the index and "
                "rebuild it in the app)."
            )
        return have

    def check(self, model: str, dim: int) -> str | None:
        """Refuse a collection built with another model or dimension; returns the recorded model (None if none)."""
        have_model, have_dim = self.recorded()
        if (have_model and have_model != model) or (have_dim and have_dim != dim):
            raise IncompatibleCollectionError(
                f"Collection {self.collection!r} holds embeddings of {have_model!r} at dimension {have_dim}, "
                f"but the settings ask for {model!r} at dimension {dim}. Set RAG_COLLECTION to a new name, "
                "set RAG_EMBEDDING_MODEL/RAG_EMBEDDING_DIM back, or clear the collection and ingest again."
            )
        return have_model

    def ensure(self, model: str, dim: int) -> None:
        """Create the collection when it is missing; otherwise check it matches ``model`` and ``dim``."""
        if self.exists():
            if self.fixed:
                self.check_analyzer()
            if self.check(model, dim) is None:  # a process killed between creating and recording: record it now
                self._record(model, dim, analyzer=self.recorded_analyzer())
            return
        self._create_with_fallback(dim)
        self._record(model, dim)

    def _create_with_fallback(self, dim: int) -> None:
        """Create the collection with ``self.analyzer``: on a server its built-in analyzer (``english``,
        ``chinese``) when it has one, else the tokenizer alone, as on Lite (which has neither built-in)."""
        tokenizer = {"tokenizer": self.analyzer}
        builtin = {"standard": {"type": "english"}, "jieba": {"type": "chinese"}}[self.analyzer]
        choices = [tokenizer] if is_lite_uri(self.uri) else [builtin, tokenizer]
        for i, params in enumerate(choices):
            try:
                self._create(dim, params)
                return
            except StoreError as exc:
                if self.analyzer == "jieba" and "jieba" in str(exc) and "install" in str(exc).lower():
                    raise StoreError(
                        "RAG_ANALYZER=jieba needs the jieba package beside Milvus Lite: pip install "
                        "'milvus-lite[chinese]' (or pip install jieba), or set RAG_ANALYZER=standard."
                    ) from exc
                if i == len(choices) - 1:
                    raise

    def _record(self, model: str, dim: int, extra: dict[str, str] | None = None, analyzer: str = "") -> None:
        """Record the model, dimension and analyzer (``self.analyzer`` unless the collection's own is given)."""
        self._call(
            "record the model",
            self.client.alter_collection_properties,
            self.collection,
            properties={MODEL_KEY: model, DIM_KEY: str(dim), ANALYZER_KEY: analyzer or self.analyzer, **(extra or {})},
        )

    def _create(self, dim: int, analyzer_params: dict[str, Any]) -> None:
        from pymilvus import DataType, Function, FunctionType

        schema = self.client.create_schema(auto_id=False)
        schema.add_field("id", DataType.VARCHAR, max_length=64, is_primary=True)
        schema.add_field("vector", DataType.FLOAT_VECTOR, dim=dim)
        schema.add_field(
            "text", DataType.VARCHAR, max_length=_MAX_TEXT, enable_analyzer=True, analyzer_params=analyzer_params
        )
        schema.add_field("source", DataType.VARCHAR, max_length=1024)
        schema.add_field("heading", DataType.VARCHAR, max_length=1024)
        schema.add_field("doc", DataType.VARCHAR, max_length=MAX_NAME, nullable=True)
        schema.add_field("added", DataType.INT64, nullable=True)
        schema.add_field("added_by", DataType.VARCHAR, max_length=256, nullable=True)
        schema.add_field("chars", DataType.INT64, nullable=True)
        schema.add_field("sparse", DataType.SPARSE_FLOAT_VECTOR)
        schema.add_function(
            Function(name="bm25", function_type=FunctionType.BM25, input_field_names=["text"],
                     output_field_names=["sparse"])
        )
        index = self.client.prepare_index_params()
        index.add_index("vector", index_type="AUTOINDEX", metric_type="IP")
        index.add_index("sparse", index_type="SPARSE_INVERTED_INDEX", metric_type="BM25")
        index.add_index("doc", index_type="INVERTED")  # a scope filters by document without a scan
        self._call("create the collection", self.client.create_collection, self.collection, schema=schema,
                   index_params=index)

    def existing_ids(self, ids: Sequence[str]) -> set[str]:
        found: set[str] = set()
        for start in range(0, len(ids), 1000):
            rows = self._call("read", self.client.get, self.collection, ids=list(ids[start : start + 1000]),
                              output_fields=["id"])
            found.update(r["id"] for r in rows)
        return found

    def chunks(self, ids: Sequence[str]) -> list[Chunk]:
        """The stored chunks with these ids. pymilvus's ``get`` puts the ids into an expression unescaped
        (``id in ['...']``), so an id that comes from a browser must look like one of ours (letters, digits, ``-``,
        ``_``); any other is not looked up."""
        ids = [i for i in ids[:1000] if _SAFE_ID.fullmatch(i)]
        if not ids or not self.exists():
            return []
        rows = self._call("read", self.client.get, self.collection, ids=ids, output_fields=_FIELDS)
        return [_chunk(r) for r in rows]

    def insert(self, chunks: Sequence[Chunk], vectors: np.ndarray, added_by: str = "") -> None:
        """Add chunks (upsert by id, so a repeat after a crash leaves no duplicate), stamped with the time and
        ``added_by``; ``flush`` seals them."""
        stamp = int(time.time())
        rows = [
            {"id": c.id, "vector": v.tolist(), "text": c.text[:_MAX_TEXT], "source": c.source[-1024:],
             "heading": c.heading[:1024], "doc": c.doc, "added": stamp, "added_by": added_by[:256],
             "chars": len(c.text)}
            for c, v in zip(chunks, vectors, strict=True)
        ]
        self._upsert(rows)

    def _upsert(self, rows: list[dict[str, Any]]) -> None:
        for start in range(0, len(rows), 256):
            self._call("insert", self.client.upsert, self.collection, rows[start : start + 256])

    def flush(self) -> None:
        """Seal fresh rows so they are searched through the index, not by brute force."""
        self._call("flush", self.client.flush, self.collection)

    def search(self, vector: np.ndarray, limit: int, sources: Sequence[str] = ()) -> list[tuple[Chunk, float]]:
        """The ``limit`` nearest chunks by inner product, best first; only from the documents ``sources`` (all when
        empty). A scope of at most ``EXACT_SCOPE`` chunks is searched exactly, here (``_exact``)."""
        if sources and self.count(sources) <= EXACT_SCOPE:
            return self._exact(vector, limit, sources)
        result = self._call(
            "search", self.client.search, self.collection, data=[vector.tolist()], limit=limit,
            anns_field="vector", output_fields=_FIELDS[1:], search_params={"metric_type": "IP"},
            **_doc_filter(sources),
        )
        return [(_chunk(r), float(r["distance"])) for r in result[0]]

    def search_bm25(self, text: str, limit: int, sources: Sequence[str] = ()) -> list[tuple[Chunk, float]]:
        """The ``limit`` best chunks by BM25 over their text (Milvus full-text search), best first; only from the
        documents ``sources`` (all when empty)."""
        self._require_sparse()
        result = self._call(
            "search by BM25", self.client.search, self.collection, data=[text], limit=limit, anns_field="sparse",
            output_fields=_FIELDS[1:], search_params={"metric_type": "BM25"}, **_doc_filter(sources),
        )
        return [(_chunk(r), abs(float(r["distance"]))) for r in result[0]]  # Lite reports -score; BM25 is >= 0

    def search_hybrid(
        self, vector: np.ndarray, text: str, limit: int, sources: Sequence[str] = ()
    ) -> list[tuple[Chunk, float]]:
        """The ``limit`` best chunks by the RRF fusion of the dense and the BM25 ranking, best first; both rankings
        only from the documents ``sources`` (all when empty)."""
        from pymilvus import AnnSearchRequest, RRFRanker

        self._require_sparse()
        depth = max(limit, FUSION_DEPTH)
        if sources and self.count(sources) <= EXACT_SCOPE:  # the dense side exact (``search``), fused here alike
            return _rrf([self._exact(vector, depth, sources), self.search_bm25(text, depth, sources)], limit)
        scope = _doc_filter(sources)
        expr = {"expr": scope["filter"]} if scope else {}
        requests = [
            AnnSearchRequest([vector.tolist()], "vector", {"metric_type": "IP"}, depth, **expr),
            AnnSearchRequest([text], "sparse", {"metric_type": "BM25"}, depth, **expr),
        ]
        result = self._call(
            "search (hybrid)", self.client.hybrid_search, self.collection, requests, RRFRanker(RRF_K), limit=limit,
            output_fields=_FIELDS[1:],
        )
        return [(_chunk(r), float(r["distance"])) for r in result[0]]

    def _exact(self, vector: np.ndarray, limit: int, sources: Sequence[str]) -> list[tuple[Chunk, float]]:
        """The ``limit`` nearest chunks of the documents ``sources`` by inner product, computed over all of their
        vectors. Milvus Lite 3.2.2's index (HNSW) misses most of a selective filter's rows once a segment is indexed
        (10 asked, 1 found, among 20 rows of the document; ``tests/test_library_documents.py``), so a scope that is
        small enough is not left to it."""
        rows = list(self._scan(["id", "vector", *_FIELDS[1:]], sources))
        if not rows:
            return []
        scores = np.asarray([r["vector"] for r in rows], dtype=np.float32) @ np.asarray(vector, dtype=np.float32)
        best = np.argsort(-scores, kind="stable")[:limit]
        return [(_chunk(rows[i]), float(scores[i])) for i in best]

    def _require_sparse(self) -> None:
        """Refuse, with the remedy, a collection made before it had the BM25 field."""
        if self._has_sparse:
            return
        desc = self._call("describe", self.client.describe_collection, self.collection)
        self._has_sparse = any(f["name"] == "sparse" for f in desc["fields"])
        if not self._has_sparse:
            raise StoreError(
                f"Collection {self.collection!r} was created without the BM25 field that full-text and hybrid "
                "search need. Re-ingest your documents into a new collection (set RAG_COLLECTION to a new name and "
                "run python -m rag ingest PATH, or clear the index and rebuild it in the app), or turn hybrid off "
                "(RAG_HYBRID=false)."
            )

    def rows(self, fields: Sequence[str] = ("id",)) -> list[dict[str, Any]]:
        """Every stored row's ``fields``, in pages (no vector search; for checks and benchmarks)."""
        return list(self._scan(fields))

    def count(self, sources: Sequence[str] = ()) -> int:
        """How many chunks the collection holds (only those of the documents ``sources``, when given)."""
        if not self.exists():
            return 0
        scope = _doc_filter(sources) or {"filter": ""}
        rows = self._call("count", self.client.query, self.collection, output_fields=["count(*)"], **scope)
        return int(rows[0]["count(*)"])

    def documents(self) -> list[DocumentInfo]:
        """Every document in the collection, by name, with its chunk count, pages, characters and when (and by
        whom) it was last added. One pass over the scalar fields, no text or vectors."""
        found: dict[str, dict[str, Any]] = {}
        for row in self._scan(_DOC_FIELDS):
            name = row.get("doc") or origin_of(row["source"])
            d = found.setdefault(name, {"chunks": 0, "pages": 1, "chars": 0, "added": 0, "added_by": ""})
            d["chunks"] += 1
            d["chars"] += int(row.get("chars") or 0)
            page = _page(row["source"])
            d["pages"] = max(d["pages"], page)
            if int(row.get("added") or 0) >= d["added"]:
                d["added"], d["added_by"] = int(row.get("added") or 0), row.get("added_by") or ""
        return [DocumentInfo(name, **d) for name, d in sorted(found.items())]

    def document_ids(self, names: Sequence[str]) -> dict[str, set[str]]:
        """The ids of the chunks each of the documents ``names`` has (a name not in the collection is absent)."""
        out: dict[str, set[str]] = {}
        names = list(dict.fromkeys(names))
        for start in range(0, len(names), _PAGE):
            for row in self._scan(["id", "doc"], names[start : start + _PAGE]):
                out.setdefault(row["doc"], set()).add(row["id"])
        return out

    def delete_ids(self, ids: Sequence[str]) -> None:
        ids = list(ids)
        for start in range(0, len(ids), _PAGE):
            self._call("delete", self.client.delete, self.collection, ids=ids[start : start + _PAGE])

    def delete_documents(self, names: Sequence[str]) -> dict[str, int]:
        """Remove every chunk of the documents ``names`` (dense and BM25 alike: they are one row); returns the
        chunks removed per document found (an unknown name is absent)."""
        found = self.document_ids(names)
        self.delete_ids([i for ids in found.values() for i in ids])
        if found:
            self.flush()
        return {name: len(ids) for name, ids in found.items()}

    def _scan(self, fields: Sequence[str], sources: Sequence[str] = ()) -> Iterator[dict[str, Any]]:
        """Every row's ``fields`` (of the documents ``sources`` only, when given), in pages."""
        if not self.exists():
            return
        scope = _doc_filter(sources) or {"filter": ""}
        it = self._call("read", self.client.query_iterator, self.collection, batch_size=_SCAN_PAGE,
                        output_fields=list(fields), **scope)
        try:
            while page := self._call("read", it.next):
                yield from page
        finally:
            self._call("read", it.close)

    def drop(self) -> None:
        if self.exists():
            self._call("drop", self.client.drop_collection, self.collection)
            self._loaded = self._has_sparse = False

    def close(self) -> None:
        """Close the connection; a Lite file is released (for other processes) when its last store closes."""
        client, self._client = self._client, None
        if client is None or not self._owner:
            return
        client.close()
        if is_lite_uri(self.uri):
            key = _lite_key(self.uri)
            with _LITE_LOCK:
                _LITE_OPEN[key] -= 1
                last = _LITE_OPEN[key] == 0
            if last:  # MilvusClient.close() keeps Lite's in-process server, and its file lock, until exit
                from milvus_lite.server_manager import server_manager_instance

                server_manager_instance.release_server(self.uri)


_LITE_LOCK = threading.Lock()
_LITE_OPEN: dict[str, int] = {}  # Lite file -> stores of this process that have it open
_LITE_CALLS: dict[str, threading.RLock] = {}  # Lite file -> the lock its calls take (see MilvusStore.__init__)


def _lite_calls(uri: str) -> threading.RLock:
    with _LITE_LOCK:
        return _LITE_CALLS.setdefault(_lite_key(uri), threading.RLock())


def _lite_key(uri: str) -> str:
    return os.path.abspath(uri)


def _chunk(row: dict[str, Any]) -> Chunk:
    entity = row.get("entity", row)
    return Chunk(str(row["id"]), entity["text"], entity["source"], entity["heading"], entity.get("doc") or "")


def _rrf(rankings: Sequence[list[tuple[Chunk, float]]], limit: int) -> list[tuple[Chunk, float]]:
    """Reciprocal rank fusion as Milvus's ``RRFRanker(RRF_K)`` computes it: each chunk scores the sum over the
    rankings of 1 / (RRF_K + rank), ranks from 1."""
    fused: dict[str, list[Any]] = {}
    for ranking in rankings:
        for rank, (chunk, _) in enumerate(ranking, 1):
            fused.setdefault(chunk.id, [chunk, 0.0])[1] += 1.0 / (RRF_K + rank)
    return [(c, score) for c, score in sorted(fused.values(), key=lambda cs: -cs[1])[:limit]]


def _doc_filter(sources: Sequence[str]) -> dict[str, Any]:
    """The filter keeping the chunks of the documents ``sources``, as keyword arguments of a query or search (none
    for all documents). Each name is a quoted string literal (``quote``), so it stays data whatever it holds.
    (Milvus Lite 3.2.2 has no filter templates, ``filter_params``: its parser refuses ``{names}``.)"""
    if not sources:
        return {}
    return {"filter": f"doc in [{', '.join(quote(str(s)) for s in sources)}]"}


def quote(value: str) -> str:
    """``value`` as a Milvus expression string literal: in double quotes, with backslash, quote, newline, tab and
    carriage return escaped (``tests/test_store.py`` round-trips hostile names through it)."""
    for raw, escaped in (("\\", "\\\\"), ('"', '\\"'), ("\n", "\\n"), ("\t", "\\t"), ("\r", "\\r")):
        value = value.replace(raw, escaped)
    return f'"{value}"'


def _page(source: str) -> int:
    """N of a source's ``#page=N`` / ``#slide=N``; 1 without one."""
    tail = source.rsplit("#", 1)[-1] if "#" in source else ""
    key, _, number = tail.partition("=")
    return int(number) if key in ("page", "slide") and number.isdigit() else 1



def _lite_locked(uri: str) -> bool:
    """True when another process holds the lock of the Milvus Lite data folder at ``uri``."""
    lock = Path(uri).expanduser() / "LOCK"
    if not lock.exists():
        return False
    try:
        import fcntl
    except ImportError:  # Windows: Lite's own message has to do
        return False
    with open(lock, "a") as f:
        try:
            fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            return True
        fcntl.flock(f, fcntl.LOCK_UN)
    return False
