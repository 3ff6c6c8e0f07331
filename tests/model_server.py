"""A loopback HTTP server of our own with ``/v1/embeddings``, ``/v1/rerank`` and ``/v1/models``, for the failure
shapes a real server will not produce on demand: 429/503 then success, timeouts, malformed bodies, logits, TEI's
shape, results out of order.

Embeddings are deterministic vectors from a hash of each text; rerank scores come from a given function. Tests
queue ``Scripted`` answers (status, body, delay) that replace the next replies, and read what was sent in
``requests``.

Leaves out: any model; the real peer is llama.cpp's server (tests/llama_server.py).
"""

from __future__ import annotations

import json
import threading
import time
import zlib
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import numpy as np
from openai_server import send_json


def vector(text: str, dim: int) -> list[float]:
    return np.random.default_rng(zlib.crc32(text.encode())).standard_normal(dim).tolist()


@dataclass
class Scripted:
    status: int = 200
    body: Any = None  # None: the normal answer; a str is sent as it is (not JSON)
    delay: float = 0.0
    headers: dict[str, str] = field(default_factory=dict)


class FakeModels:
    def __init__(self, dim: int = 8, models: tuple[str, ...] = (), tei: bool = False,
                 scores: Callable[[str, str], float] | None = None, shuffle: bool = True) -> None:
        self.dim, self.models, self.tei, self.shuffle = dim, models, tei, shuffle
        self.scores = scores or (lambda q, d: min(len(d), 99) / 100)
        self.script: deque[Scripted] = deque()
        self.requests: list[dict[str, Any]] = []
        self.fail_after: int | None = None  # every request after this many embeddings requests answers 500
        fake = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.0"

            def log_message(self, *args: Any) -> None:
                pass

            def do_GET(self) -> None:  # noqa: N802
                if self.path.endswith("/models") and fake.models:
                    self._send(200, {"object": "list", "data": [{"id": m, "object": "model"} for m in fake.models]})
                else:
                    self._send(404, {"error": {"message": "no such endpoint"}})

            def do_POST(self) -> None:  # noqa: N802
                body = json.loads(self.rfile.read(int(self.headers.get("Content-Length", 0))) or b"{}")
                headers = {k.lower(): v for k, v in self.headers.items()}
                fake.requests.append({"path": self.path, "headers": headers, "body": body})
                step = fake.script.popleft() if fake.script else Scripted()
                time.sleep(step.delay)
                done = sum(r["path"].endswith("/embeddings") for r in fake.requests)
                if fake.fail_after is not None and done > fake.fail_after:
                    step = Scripted(500, {"error": {"message": "the model worker died"}})
                if step.status != 200 or step.body is not None:
                    self._send(step.status, step.body if step.body is not None else
                               {"error": {"message": f"scripted {step.status}"}}, step.headers)
                elif self.path.endswith("/embeddings"):
                    data = [{"object": "embedding", "index": i, "embedding": vector(t, fake.dim)}
                            for i, t in enumerate(body["input"])]
                    self._send(200, {"object": "list", "model": body.get("model"),
                                     "data": data[::-1] if fake.shuffle else data})
                elif self.path.endswith("/rerank"):
                    docs = body["texts"] if fake.tei else body["documents"]
                    rows = sorted(({"index": i, "s": fake.scores(body["query"], d)} for i, d in enumerate(docs)),
                                  key=lambda r: -r["s"])  # best first, as servers answer
                    if fake.tei:
                        self._send(200, [{"index": r["index"], "score": r["s"]} for r in rows])
                    else:
                        self._send(200, {"results": [{"index": r["index"], "relevance_score": r["s"]} for r in rows]})
                else:
                    self._send(404, {"error": {"message": "no such endpoint"}})

            def _send(self, status: int, payload: Any, headers: dict[str, str] | None = None) -> None:
                send_json(self, status, payload, headers)

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.httpd.server_address[1]}/v1"

    def enqueue(self, *steps: Scripted) -> None:
        self.script.extend(steps)

    def embedded(self) -> list[str]:
        """Every text sent to /embeddings, in order."""
        return [t for r in self.requests if r["path"].endswith("/embeddings") for t in r["body"]["input"]]

    def __enter__(self) -> FakeModels:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()
