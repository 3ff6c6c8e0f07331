"""A real HTTP server on 127.0.0.1 that speaks OpenAI's chat-completions protocol, with scripted replies.

Streaming replies are server-sent events of ``chat.completion.chunk`` objects ending in ``data: [DONE]``, so the
real ``openai`` client parses them. Tests queue replies with ``enqueue`` and read what was sent in ``requests``.
Run it as a script (``python tests/openai_server.py PORT``) to serve a fixed answer to another process.
"""

from __future__ import annotations

import json
import sys
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


def send_json(
    handler: BaseHTTPRequestHandler, status: int, payload: Any, headers: dict[str, str] | None = None
) -> None:
    """One JSON reply (a string ``payload`` is sent as it is: a malformed body, on purpose)."""
    data = payload.encode() if isinstance(payload, str) else json.dumps(payload).encode()
    handler.send_response(status)
    handler.send_header("Content-Type", "application/json")
    handler.send_header("Content-Length", str(len(data)))
    for k, v in (headers or {}).items():
        handler.send_header(k, v)
    handler.end_headers()
    handler.wfile.write(data)


@dataclass
class Reply:
    chunks: list[str] = field(default_factory=lambda: ["Milvus stores ", "inserted data in MinIO [1]."])
    status: int = 200
    first_delay: float = 0.0  # seconds before the first chunk
    cut_after: int | None = None  # close the stream after this many chunks, with no finish and no [DONE]
    headers: dict[str, str] = field(default_factory=dict)
    error: str = "scripted error"
    echo: bool = False  # end the answer with the question it was asked, in parentheses (to see cross-talk)
    finish: str = "stop"  # the last chunk's finish_reason ("length" when a real server hits max_tokens)
    detail: bool = False  # an error body as FastAPI servers write it, {"detail": error}, instead of OpenAI's


class FakeOpenAI:
    def __init__(self, default: Reply | None = None) -> None:
        self.script: deque[Reply] = deque()
        self.default = default or Reply()
        self.requests: list[dict[str, Any]] = []
        fake = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.0"  # the body ends when the connection closes

            def log_message(self, *args: Any) -> None:
                pass

            def do_POST(self) -> None:  # noqa: N802
                body = json.loads(self.rfile.read(int(self.headers.get("Content-Length", 0))) or b"{}")
                headers = {k.lower(): v for k, v in self.headers.items()}
                fake.requests.append({"path": self.path, "headers": headers, "body": body})
                reply = fake.script.popleft() if fake.script else fake.default
                if reply.status != 200:
                    payload = {"detail": reply.error} if reply.detail else {
                        "error": {"message": reply.error, "type": "scripted", "code": str(reply.status)}}
                    self._json(reply.status, payload, reply.headers)
                elif body.get("stream"):
                    self._stream(body, reply)
                else:
                    self._json(200, {
                        "id": "c1", "object": "chat.completion", "created": int(time.time()), "model": body["model"],
                        "choices": [{"index": 0, "finish_reason": "stop",
                                     "message": {"role": "assistant", "content": "".join(reply.chunks)}}],
                    })

            def _json(self, status: int, payload: dict, headers: dict[str, str] | None = None) -> None:
                send_json(self, status, payload, headers)

            def _stream(self, body: dict, reply: Reply) -> None:
                model = body.get("model", "m")
                self.send_response(200)
                self.send_header("Content-Type", "text/event-stream")
                self.end_headers()
                time.sleep(reply.first_delay)

                def event(delta: dict, finish: str | None = None) -> None:
                    chunk = {"id": "s1", "object": "chat.completion.chunk", "created": int(time.time()),
                             "model": model, "choices": [{"index": 0, "delta": delta, "finish_reason": finish}]}
                    self.wfile.write(f"data: {json.dumps(chunk)}\n\n".encode())
                    self.wfile.flush()

                event({"role": "assistant", "content": ""})
                chunks = [*reply.chunks, f" ({fake.question(body)})"] if reply.echo else reply.chunks
                for i, text in enumerate(chunks):
                    if reply.cut_after is not None and i >= reply.cut_after:
                        return
                    event({"content": text})
                event({}, reply.finish)
                self.wfile.write(b"data: [DONE]\n\n")

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    @staticmethod
    def question(body: dict) -> str:
        """The question inside the last user message (rag's prompt puts it between <question> tags)."""
        text = body["messages"][-1]["content"]
        return text.split("<question>")[-1].split("</question>")[0].strip()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.httpd.server_address[1]}/v1"

    def enqueue(self, *replies: Reply) -> None:
        self.script.extend(replies)

    def __enter__(self) -> FakeOpenAI:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


if __name__ == "__main__":
    server = FakeOpenAI()
    server.httpd.server_close()
    server.httpd = ThreadingHTTPServer(("127.0.0.1", int(sys.argv[1])), server.httpd.RequestHandlerClass)
    print(server.url, flush=True)
    server.httpd.serve_forever()
