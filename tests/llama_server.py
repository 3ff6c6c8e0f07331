"""llama.cpp's own HTTP server (the ``xllamacpp`` wheel) on 127.0.0.1, serving one GGUF file: a server nobody here
wrote, for the remote-model tests.

``python tests/llama_server.py GGUF PORT KIND ALIAS [THREADS [exact]]`` serves ``GGUF`` as ``KIND``
("embedding": ``/v1/embeddings`` with last-token pooling; "reranker": ``/v1/rerank`` with rank pooling) under the
model name ``ALIAS`` until it is terminated; ``exact`` runs attention in float32. ``LlamaServer`` starts that
process from a test, waits for ``/health`` with a deadline, and stops it.

Leaves out: writing the GGUF (``rag.gguf_export``).
"""

from __future__ import annotations

import contextlib
import json
import signal
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

CONTEXT = 4096  # tokens per request: a 512-token chunk, or a rerank prompt, fits in one batch


def serve(gguf: str, port: int, kind: str, alias: str, threads: int = 1, exact: bool = False) -> None:
    """``exact``: attention in float32 (an F32 KV cache, no flash attention) instead of llama.cpp's F16 defaults."""
    import xllamacpp as xlc

    params = xlc.CommonParams()
    params.model.path = gguf
    params.model_alias = {alias}
    params.hostnames = ["127.0.0.1"]
    params.port = port
    params.embedding = True
    params.n_ctx = params.n_batch = params.n_ubatch = CONTEXT  # an embedding input must fit one micro-batch
    params.n_parallel = 1
    params.cpuparams.n_threads = params.cpuparams_batch.n_threads = threads
    params.pooling_type = (xlc.llama_pooling_type.LLAMA_POOLING_TYPE_LAST if kind == "embedding"
                           else xlc.llama_pooling_type.LLAMA_POOLING_TYPE_RANK)
    if exact:
        params.cache_type_k = params.cache_type_v = xlc.ggml_type.GGML_TYPE_F32
        params.flash_attn_type = xlc.llama_flash_attn_type.LLAMA_FLASH_ATTN_TYPE_DISABLED
    server = xlc.Server(params)
    print(json.dumps({"listening": server.listening_address}), flush=True)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    stop.wait()


class LlamaServer:
    """``with LlamaServer(gguf, kind, alias) as s:`` s.url is the OpenAI-style base URL (``.../v1``)."""

    def __init__(self, gguf: str | Path, kind: str, alias: str, deadline_s: float = 120.0, threads: int = 1,
                 exact: bool = False) -> None:
        from conftest import free_port

        self.gguf, self.kind, self.alias, self.deadline_s, self.threads = str(gguf), kind, alias, deadline_s, threads
        self.exact = exact
        self.port = free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        self.url = self.base + "/v1"
        self.proc: subprocess.Popen | None = None

    def start(self) -> LlamaServer:
        self.proc = subprocess.Popen(
            [sys.executable, __file__, self.gguf, str(self.port), self.kind, self.alias, str(self.threads),
             "exact" if self.exact else "default"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + self.deadline_s
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"llama.cpp's server exited with {self.proc.returncode} serving {self.gguf}")
            try:
                with urllib.request.urlopen(self.base + "/health", timeout=2) as r:
                    if r.status == 200:
                        return self
            except OSError:
                time.sleep(0.2)
        self.stop()
        raise TimeoutError(f"llama.cpp's server was not healthy on port {self.port} within {self.deadline_s} s")

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(15)

    def __enter__(self) -> LlamaServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


@contextlib.contextmanager
def serve_pair(models: tuple[Path, Path], folder: Path) -> Iterator[tuple[LlamaServer, LlamaServer]]:
    """(embedding server, rerank server) for the tiny ``models``, written as GGUF into ``folder``, each serving
    under its folder's path as the model name (what RAG_EMBEDDING_MODEL / RAG_RERANKER_MODEL send)."""
    from rag.gguf_export import write_gguf

    emb = write_gguf(models[0], folder / "embedding.gguf", "embedding")
    rr = write_gguf(models[1], folder / "reranker.gguf", "reranker")
    with LlamaServer(emb, "embedding", str(models[0])) as e, LlamaServer(rr, "reranker", str(models[1])) as r:
        yield e, r


if __name__ == "__main__":
    gguf_path, port_arg, kind_arg, alias_arg, *rest = sys.argv[1:]
    serve(gguf_path, int(port_arg), kind_arg, alias_arg, int(rest[0]) if rest else 1, rest[1:] == ["exact"])
