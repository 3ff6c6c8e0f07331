"""ZeroGPU on a Hugging Face Space: every model call goes through ``spaces.GPU``; nothing else knows about ``spaces``.

On a ZeroGPU Space (``SPACES_ZERO_GPU=true``, read through the settings) a GPU exists only inside functions that
``spaces.GPU`` decorates, and each call runs in a worker process that ``spaces`` forks from this one: arguments and
results are pickled, and nothing the worker changes comes back. So:

- ``import_spaces`` runs first in ``app.py``: ``spaces`` must be imported before anything touches CUDA;
- ``ZeroGPUPipeline`` loads both models (onto ``cuda``) when it is made, at start-up, before any worker is forked;
- the GPU functions here take plain data (a pipeline key, texts, options) and return plain data (arrays, floats,
  ``Retrieval`` records); a worker finds the models in ``_PIPELINES`` as it inherited it;
- a question costs one GPU call (``_retrieve``): the worker embeds it, asks this process for the first-stage
  candidates over a local socket (``Searcher``: Milvus is used from this process only), reranks them, and yields
  each step back, so the dense column and the reranking still appear as they come;
- indexing embeds in GPU calls of at most ``BATCH`` chunks; Milvus inserts happen here, between the calls, so the
  progress bar moves after each;
- each call declares a duration computed from its size (``*_seconds``): a visitor's daily quota is charged for GPU
  time, and a call that declares more than the visitor has left is refused;
- when a call is refused (quota spent, no GPU free) the question gets the dense results, its question embedded on
  the CPU here, with a one-line notice, and the answer is built from them. Reranking 10 passages on a Space's two
  CPU cores takes about 20 s and would hold up every other visitor, so it is not attempted; indexing falls back to
  the CPU, which is slow but loses nothing.

With ``spaces`` not installed, or installed but SPACES_ZERO_GPU unset, ``make_pipeline`` returns a plain
``Pipeline`` and nothing here runs.

Leaves out: device and dtype (``rag.devices``), the retrieval steps themselves (``rag.pipeline``), the UI.
"""

from __future__ import annotations

import dataclasses
import logging
import math
import os
import secrets
import tempfile
import threading
from collections.abc import Callable, Iterator, Sequence
from typing import Any

import numpy as np

from rag.embedding import Embedder
from rag.errors import RAGError, SettingsError, StoreError, brief
from rag.pipeline import Pipeline, load_embedder, load_reranker, placement
from rag.reranker import Reranker
from rag.settings import Settings, load_settings
from rag.store import MilvusStore
from rag.types import Retrieval

log = logging.getLogger(__name__)

BATCH = 32  # chunks per indexing GPU call: at most 32 x 512 tokens, a few seconds of GPU time
# What a call's duration is computed from. Assumed, not measured: no GPU was lent to this project. A ZeroGPU slice
# (half an RTX Pro 6000) runs a 0.6B model in bf16 far faster than TOKENS_PER_S; START_S covers the worker's start
# and the weights' move to the GPU. Generous on purpose: a call cut off at its duration fails the visitor's question.
START_S = 5.0
TOKENS_PER_S = 4000.0
MAX_S = 120.0
PROMPT_TOKENS = 64  # the reranker's fixed system prefix, instruction tags and suffix, per passage


def import_spaces(settings: Settings | None = None) -> bool:
    """Import ``spaces`` if this is a ZeroGPU Space: it must come before anything touches CUDA. True if it is."""
    try:
        settings = settings or load_settings()
    except RAGError:
        return False  # the app reports the settings error itself
    if settings.zero_gpu:
        _spaces()
    return settings.zero_gpu


def make_pipeline(settings: Settings) -> Pipeline:
    """The pipeline for this hosting: on ZeroGPU one whose model calls go through ``spaces.GPU``, else the plain one."""
    return ZeroGPUPipeline(settings) if settings.zero_gpu else Pipeline(settings)


def _spaces() -> Any:
    try:
        import spaces
    except ImportError:
        raise SettingsError("SPACES_ZERO_GPU is set, but the `spaces` package is not installed: pip install spaces, "
                            "or unset SPACES_ZERO_GPU outside a ZeroGPU Space.") from None
    return spaces


# -- durations: the same arguments as the GPU functions, seconds out -------------------------------------------------
def _seconds(tokens: float) -> int:
    return int(min(MAX_S, math.ceil(START_S + tokens / TOKENS_PER_S)))


def _encode_seconds(key: int, texts: Sequence[str], prompt: str | None) -> int:
    embedder = _PIPELINES[key].raw_embedder
    extra = len(embedder.token_spans(prompt)) if prompt else 0
    return _seconds(sum(min(len(embedder.token_spans(t)) + extra, embedder.max_tokens) for t in texts))


def _score_seconds(key: int, query: str, passages: Sequence[str], instruction: str | None) -> int:
    return _seconds(sum(PROMPT_TOKENS + (len(query) + len(instruction or "") + len(p)) / 2 for p in passages))


def _retrieve_seconds(key: int, collection: str, address: str, authkey: bytes, question: str,
                      options: dict[str, Any]) -> int:
    """N candidates (the option, else RAG_CANDIDATES), each at most RAG_CHUNK_TOKENS long: their exact lengths are
    known only once the worker has searched, so the bound is declared."""
    settings = _PIPELINES[key].settings
    n = options.get("candidates") or settings.candidates
    question_tokens = len(question) / 2 + 32  # characters per token is 2 or more, but for CJK; plus the instruction
    return _seconds(question_tokens + n * (PROMPT_TOKENS + question_tokens + settings.chunk_tokens))


# -- the GPU functions: they run in the worker, on what it inherited -------------------------------------------------
def _encode(key: int, texts: Sequence[str], prompt: str | None) -> np.ndarray:
    return _PIPELINES[key].raw_embedder._encode(texts, prompt)


def _score(key: int, query: str, passages: Sequence[str], instruction: str | None) -> list[float]:
    return _PIPELINES[key].raw_reranker.score(query, passages, instruction)


def _retrieve(key: int, collection: str, address: str, authkey: bytes, question: str,
              options: dict[str, Any]) -> Iterator[tuple[str, Any]]:
    """One question, all of it: ("step", Retrieval) as each is ready, or ("error", RAGError). An expected failure
    travels as data, since ``spaces`` replaces any other exception with its class name."""
    owner = _PIPELINES[key]
    view = Pipeline(owner.settings.replace(collection=collection), owner.raw_embedder, owner.raw_reranker,
                    RemoteStore(address, authkey, collection), owner.generator)
    try:
        for step in view.retrieve_steps(question, **options):
            yield "step", step
    except RAGError as exc:
        yield "error", exc


_PIPELINES: dict[int, ZeroGPUPipeline] = {}  # key -> pipeline, made in the main process before any worker forks
_GPU: dict[str, Callable[..., Any]] = {}  # name -> the function as spaces.GPU wrapped it


def _gpu(name: str) -> Callable[..., Any]:
    if not _GPU:
        gpu = _spaces().GPU
        _GPU.update(encode=gpu(duration=_encode_seconds)(_encode), score=gpu(duration=_score_seconds)(_score),
                    retrieve=gpu(duration=_retrieve_seconds)(_retrieve))
    return _GPU[name]


class NoGPUError(RAGError):
    """spaces.GPU refused or lost the call: the visitor's quota is spent, or no GPU is free."""


def _refused(exc: Exception) -> bool:
    """True for the errors ``spaces`` raises when it cannot run a call (it raises them as ``gr.Error``)."""
    import gradio as gr

    return isinstance(exc, gr.Error)


def _why(exc: Exception) -> str:
    """The message of a refusal, without the quotes ``str(gr.Error)`` adds."""
    return str(getattr(exc, "message", exc))


# -- the Milvus side: searched from this process only ------------------------------------------------------------------
class Searcher:
    """The first-stage search for GPU workers: a thread here answers them over a Unix socket, so Milvus (its gRPC
    connection, a Lite file's lock) is used from this process only. The socket sits in a private temporary folder
    and takes a random key; it answers the read methods of ``RemoteStore`` and nothing else."""

    METHODS = frozenset({"exists", "count", "search", "search_bm25", "search_hybrid"})

    def __init__(self) -> None:
        from multiprocessing.connection import Listener

        self.authkey = secrets.token_bytes(32)
        self.address = os.path.join(tempfile.mkdtemp(prefix="rag-search-"), "socket")
        self._listener = Listener(self.address, family="AF_UNIX", authkey=self.authkey)
        self._stores: dict[str, MilvusStore] = {}  # collection -> store
        threading.Thread(target=self._serve, name="zerogpu-searcher", daemon=True).start()

    def register(self, store: MilvusStore) -> str:
        self._stores[store.collection] = store
        return store.collection

    def _serve(self) -> None:
        while True:
            try:
                conn = self._listener.accept()
            except OSError:
                return  # closed
            except Exception:  # a peer without the key
                continue
            threading.Thread(target=self._answer, args=(conn,), daemon=True).start()

    def _answer(self, conn: Any) -> None:
        with conn:
            while True:
                try:
                    collection, method, args = conn.recv()
                except (EOFError, OSError):
                    return
                try:
                    if method not in self.METHODS:
                        raise StoreError(f"{method!r} is not a search method")
                    reply: tuple[str, Any] = ("ok", getattr(self._stores[collection], method)(*args))
                except RAGError as exc:
                    reply = ("error", exc)
                except Exception as exc:  # pymilvus errors do not all survive pickling
                    reply = ("error", StoreError(f"Milvus search failed: {brief(exc)}"))
                conn.send(reply)


class RemoteStore:
    """In a GPU worker: the read methods of ``MilvusStore`` that the first stage uses, answered by ``Searcher``."""

    def __init__(self, address: str, authkey: bytes, collection: str) -> None:
        self.address, self.authkey, self.collection = address, authkey, collection
        self._conn: Any = None

    def _call(self, method: str, *args: Any) -> Any:
        if self._conn is None:
            from multiprocessing.connection import Client

            self._conn = Client(self.address, family="AF_UNIX", authkey=self.authkey)
        self._conn.send((self.collection, method, args))
        status, value = self._conn.recv()
        if status == "error":
            raise value
        return value

    def exists(self) -> bool:
        return self._call("exists")

    def count(self, sources: Sequence[str] = ()) -> int:
        return self._call("count", sources)

    def search(self, vector: np.ndarray, limit: int, sources: Sequence[str] = ()) -> list[Any]:
        return self._call("search", vector, limit, sources)

    def search_bm25(self, text: str, limit: int, sources: Sequence[str] = ()) -> list[Any]:
        return self._call("search_bm25", text, limit, sources)

    def search_hybrid(self, vector: np.ndarray, text: str, limit: int, sources: Sequence[str] = ()) -> list[Any]:
        return self._call("search_hybrid", vector, text, limit, sources)


# -- the models, as the rest of the package sees them ----------------------------------------------------------------
class GPUEmbedder(Embedder):
    """An ``Embedder`` whose every forward pass is a GPU call of at most ``BATCH`` texts. Refused calls run on the
    CPU instead (``fallback``), so indexing loses nothing."""

    def __init__(self, key: int, inner: Embedder, fallback: Callable[[], Embedder]) -> None:
        self._key, self.inner, self._fallback = key, inner, fallback
        self.name, self.dimension, self.max_tokens = inner.name, inner.dimension, inner.max_tokens
        self.document_prompt = inner.document_prompt

    def query_prompt(self, instruction: str | None = None) -> str | None:
        return self.inner.query_prompt(instruction)

    def token_spans(self, text: str) -> list[tuple[int, int]]:
        return self.inner.token_spans(text)

    def _encode(self, texts: Sequence[str], prompt: str | None) -> np.ndarray:
        parts = []
        for start in range(0, len(texts), BATCH):
            part = list(texts[start : start + BATCH])
            try:
                parts.append(_gpu("encode")(self._key, part, prompt))
            except Exception as exc:
                if not _refused(exc):
                    raise
                log.warning("no GPU for embedding %d texts (%s); embedding them on the CPU", len(part), _why(exc))
                parts.append(self._fallback()._encode(part, prompt))
        return np.concatenate(parts) if parts else np.zeros((0, self.inner.dimension), np.float32)


class GPUReranker(Reranker):
    """A ``Reranker`` whose every call is one GPU call."""

    def __init__(self, key: int, inner: Reranker) -> None:
        self._key, self.inner, self.name = key, inner, inner.name

    def score(self, query: str, passages: Sequence[str], instruction: str | None = None) -> list[float]:
        try:
            return _gpu("score")(self._key, query, list(passages), instruction)
        except Exception as exc:
            if not _refused(exc):
                raise
            raise NoGPUError(f"No GPU for reranking right now: {_why(exc)}") from None


class ZeroGPUPipeline(Pipeline):
    """A ``Pipeline`` for a ZeroGPU Space: the models are placed when it is made, every model call is a GPU call,
    a question is one GPU call, and Milvus stays in this process."""

    def __init__(self, settings: Settings, embedder: Embedder | None = None, reranker: Reranker | None = None,
                 store: MilvusStore | None = None, **kwargs: Any) -> None:
        super().__init__(settings, store=store, **kwargs)
        _spaces()
        # PyTorch, the engine that runs on CUDA (and the only one a forked worker may inherit: ONNX Runtime's thread
        # pools do not survive a fork); placed now, before any worker is forked
        models = settings.replace(engine="torch")
        self.raw_embedder = embedder or load_embedder(models)
        self.raw_reranker = reranker or load_reranker(models)
        self._key = id(self)
        _PIPELINES[self._key] = self
        self._cpu: Embedder | None = None
        self._embedder = GPUEmbedder(self._key, self.raw_embedder, self.cpu_embedder)
        self._reranker = GPUReranker(self._key, self.raw_reranker)
        self._searcher = Searcher()

    def cpu_embedder(self) -> Embedder:
        """The embedder on the CPU, for when no GPU is to be had (loaded on first need, unless it is on the CPU)."""
        with self._lock:
            if self._cpu is None:
                on_cpu = placement(self.settings)[0] == "cpu"
                self._cpu = self.raw_embedder if on_cpu else load_embedder(
                    self.settings.replace(device="cpu", engine="torch"))  # no ONNX export in the middle of a question
            return self._cpu

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
        """``Pipeline.retrieve_steps`` in one GPU call. Refused: the dense results, embedded on the CPU, with a
        notice that says why they are not reranked."""
        options = dict(candidates=candidates, top_k=top_k, query_instruction=query_instruction,
                       rerank_instruction=rerank_instruction, hybrid=hybrid, sources=tuple(sources), stage=stage)
        first: Retrieval | None = None
        try:
            steps = _gpu("retrieve")(self._key, self._searcher.register(self.store), self._searcher.address,
                                     self._searcher.authkey, question, options)
            for kind, value in steps:
                if kind == "error":
                    raise value
                first = first or value
                yield value
            return
        except Exception as exc:
            if not _refused(exc):
                raise
            notice = (f"No GPU for this question ({_why(exc)}): these are the dense results, not reranked, and the "
                      "answer is built from them. Signing in to Hugging Face gives more GPU time.")
            log.warning("no GPU for a question: %s", _why(exc))
        if first is None:
            cpu = Pipeline(self.settings, self.cpu_embedder(), self.raw_reranker, self.store, self.generator)
            first = (cpu.dense(question, candidates, query_instruction, top_k, hybrid, sources) if stage is None
                     else cpu.first_stage(question, stage, candidates, query_instruction, top_k, sources))
            yield first
        yield dataclasses.replace(first, reranked_all=(), notice=notice)
