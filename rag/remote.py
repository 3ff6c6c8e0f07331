"""Models on an inference server: ``RemoteEmbedder`` over an OpenAI-compatible ``/embeddings`` and
``RemoteReranker`` over a ``/rerank``, behind the same ``Embedder`` / ``Reranker`` interfaces as the in-process
models, so the pipeline does not know they are remote. ``rag.engines`` picks them when ``RAG_EMBEDDING_URL`` or
``RAG_RERANK_URL`` is set; each base URL is like ``OPENAI_BASE_URL`` (``http://host:8000/v1``).

The recipe stays the model card's where the protocol lets it:

- embeddings: the query instruction is prepended here, as in-process (``Instruct: {task}\\nQuery:`` for
  Qwen3-Embedding, or the ``query`` prompt of a sentence-transformers folder); documents are sent as they are. The
  server pools and normalises; the vector is cut to ``RAG_EMBEDDING_DIM`` and normalised again here. Vectors are
  matched to texts by their ``index``, never by order.
- reranking: the Jina/Cohere shape (``{model, query, documents, top_n}`` -> ``{results: [{index,
  relevance_score}]}``: vLLM, llama.cpp, Infinity, Cohere, Jina) or TEI's (``{query, texts}`` -> ``[{index,
  score}]``, ``RAG_RERANK_API=tei``), all candidates in one request, matched by ``index``. With
  ``RAG_RERANK_TEMPLATE=server`` the server writes the prompt (llama.cpp: the ``rerank`` template in the GGUF, with
  the card's default instruction), so a custom instruction cannot reach the model and ``notice`` says so; with
  ``client`` the card's prompt is sent as the query and document parts, as vLLM's Qwen3-Reranker example does.
- scores are P(yes) in [0, 1]. A server that returns a score outside [0, 1] returns logits (llama.cpp does for
  cross-encoders without a softmax head): from then on every score is put through a sigmoid, which for a Qwen3
  yes/no head given as one logit (yes - no) is exactly P(yes).

Chunking still counts the embedding model's tokens: the tokenizer is loaded from ``RAG_EMBEDDING_TOKENIZER`` or
``RAG_EMBEDDING_MODEL``. Failures are one ``ModelCallError`` line that says what to change; only 429 and 503 are
retried (``RAG_REMOTE_RETRIES``, with backoff).

Leaves out: running a server (tests/llama_server.py starts llama.cpp's for the tests), and the in-process engines.
"""

from __future__ import annotations

import json
import logging
import math
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from rag.embedding import TokenizedEmbedder
from rag.errors import ModelCallError, ModelLoadError, brief
from rag.reranker import DEFAULT_INSTRUCTION, SUFFIX, SYSTEM_PREFIX, Reranker
from rag.settings import Settings

log = logging.getLogger(__name__)

QWEN3_QUERY_PROMPT = "Instruct: {}\nQuery:"  # Qwen3-Embedding's card; the task is editable
MAX_BACKOFF_S = 10.0


class Server:
    """One base URL: POSTs JSON with a bearer key, retries 429/503, and turns every failure into one line naming
    the setting to change (``role`` says which server: "embedding" or "rerank")."""

    def __init__(self, url: str, api_key: str, role: str, timeout_s: float, retries: int) -> None:
        import httpx

        self.url, self.role, self.retries, self.timeout_s = url.rstrip("/"), role, retries, timeout_s
        self.url_setting = "RAG_EMBEDDING_URL" if role == "embedding" else "RAG_RERANK_URL"
        self.key_setting = "RAG_EMBEDDING_API_KEY" if role == "embedding" else "RAG_RERANK_API_KEY"
        self.model_setting = "RAG_EMBEDDING_MODEL" if role == "embedding" else "RAG_RERANKER_MODEL"
        headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
        self._client = httpx.Client(timeout=timeout_s, headers=headers)
        self._key = api_key  # kept out of every message: a server may echo it in an error body

    def get(self, path: str) -> Any:
        """The JSON at ``path``, or None when the server has no such endpoint or answers anything but 200."""
        import httpx

        try:
            response = self._client.get(self.url + path)
            return response.json() if response.status_code == 200 else None
        except (httpx.HTTPError, ValueError):
            return None

    def post(self, path: str, body: dict[str, Any]) -> Any:
        """The JSON answer to ``body`` at ``path``."""
        import httpx

        where = f"The {self.role} server at {self.url}"
        for attempt in range(self.retries + 1):
            try:
                response = self._client.post(self.url + path, json=body)
            except httpx.TimeoutException:
                raise ModelCallError(key="error.model_server_slow", role=self.role, url=self.url,
                                     seconds=self.timeout_s) from None
            except httpx.HTTPError as exc:
                raise ModelCallError(key="error.model_server_down", role=self.role, url=self.url, detail=brief(exc),
                                     setting=self.url_setting) from None
            if response.status_code in (429, 503) and attempt < self.retries:
                time.sleep(_backoff(response.headers.get("retry-after"), attempt))
                continue
            break
        code = response.status_code
        if code in (401, 403):  # its message is not shown: servers quote the key they were given
            raise ModelCallError(f"{where} refused the request (HTTP {code}). Set {self.key_setting} to a key it "
                                 "accepts.")
        message = _message(response).replace(self._key, "…") if self._key else _message(response)
        if code == 404:
            raise ModelCallError(
                f"{where} answered 404 for {path} ({message}). {self.url_setting} must be the base URL "
                f"the client adds {path} to (like http://host:8000/v1), and {self.model_setting} a model it serves."
            )
        if code >= 400:
            hint = " (retried: the server kept answering that)" if code in (429, 503) and self.retries else ""
            raise ModelCallError(f"{where} answered HTTP {code}{hint}: {message}. Check that "
                                 f"{self.model_setting} names a model it serves and that the request fits its "
                                 "limits.")
        try:
            return response.json()
        except ValueError:
            raise self.malformed(f"not JSON: {response.text[:120]!r}") from None

    def malformed(self, what: str) -> ModelCallError:
        return ModelCallError(f"The {self.role} server at {self.url} answered with a body this client cannot read "
                              f"({what}). Check that {self.url_setting} points at the right kind of server.")


def _backoff(retry_after: str | None, attempt: int) -> float:
    try:
        wait = float(retry_after) if retry_after else 0.5 * 2**attempt
    except ValueError:  # an HTTP date: fall back to the exponential step
        wait = 0.5 * 2**attempt
    return min(max(wait, 0.0), MAX_BACKOFF_S)


def _message(response: Any) -> str:
    """The error text of a response (OpenAI's {"error": {"message"}}, FastAPI's {"detail"}, or the raw body)."""
    try:
        body = response.json()
    except ValueError:
        return response.text.strip()[:200] or response.reason_phrase
    if isinstance(body, dict):
        err = body.get("error", body.get("detail", body.get("message", body)))
        if isinstance(err, dict):
            err = err.get("message", err)
        return str(err)[:200]
    return str(body)[:200]


def _folder_json(source: str, name: str) -> dict[str, Any]:
    """A sentence-transformers config file of a local folder or a hub repository; {} when there is none."""
    folder = Path(source).expanduser()
    try:
        if folder.is_dir():
            path = folder / name
        else:
            from huggingface_hub import hf_hub_download

            path = Path(hf_hub_download(source, name))
        return json.loads(path.read_text(encoding="utf-8"))
    except Exception:  # not there, not downloadable, not JSON: the model has no such config
        return {}


def checked_model(server: Server, model: str, setting: str) -> None:
    """Refuse a model name the server does not list under ``/models`` (when it lists any)."""
    listing = server.get("/models")
    names = [m.get("id") for m in listing.get("data", []) if isinstance(m, dict)] if isinstance(listing, dict) else []
    if names and model not in names:
        raise ModelLoadError(f"The {server.role} server at {server.url} serves {', '.join(map(str, names[:5]))}, "
                             f"not {model!r}. Set {setting} to the name it serves (for llama.cpp, its --alias).")


class RemoteEmbedder(TokenizedEmbedder):
    """An embedding model behind an OpenAI-compatible ``/embeddings``."""

    def __init__(self, url: str, model: str, api_key: str = "", tokenizer: str = "", dimension: int = 0,
                 query_instruction: str = DEFAULT_INSTRUCTION, batch_size: int = 32, timeout_s: float = 60.0,
                 retries: int = 3) -> None:
        from transformers import AutoTokenizer

        self.name, self.batch_size, self.query_instruction = model, batch_size, query_instruction
        source = tokenizer or model
        try:
            self.tokenizer = AutoTokenizer.from_pretrained(source)
        except Exception as exc:
            raise ModelLoadError(
                f"Chunking counts the embedding model's tokens, and its tokenizer could not be loaded from {source!r} "
                f"({brief(exc)}). Set RAG_EMBEDDING_TOKENIZER to a hub id or a local folder with the tokenizer of "
                f"the model the server runs."
            ) from exc
        prompts = _folder_json(source, "config_sentence_transformers.json").get("prompts") or {}
        own = prompts.get("query") or None
        if own is None and "qwen3-embedding" in model.lower():
            own = QWEN3_QUERY_PROMPT.format(query_instruction)
        self._model_query_prompt, self.document_prompt = own, prompts.get("document") or None
        # as sentence-transformers sets max_seq_length: its config's, else the smaller of the model's and the
        # tokenizer's limits
        limit = _folder_json(source, "sentence_bert_config.json").get("max_seq_length")
        sizes = [n for n in (self.tokenizer.model_max_length,
                             _folder_json(source, "config.json").get("max_position_embeddings"))
                 if isinstance(n, int) and n < 1_000_000]
        self.max_tokens = int(limit or (min(sizes) if sizes else 512))
        self.server = Server(url, api_key, "embedding", timeout_s, retries)
        checked_model(self.server, model, "RAG_EMBEDDING_MODEL")
        full = self._request(["dimension"]).shape[1]  # one call at load: the server answers, and its vector size
        self.dimension = self.checked_dimension(dimension, full)

    def _request(self, texts: Sequence[str]) -> np.ndarray:
        body = self.server.post("/embeddings", {"model": self.name, "input": list(texts), "encoding_format": "float"})
        data = body.get("data") if isinstance(body, dict) else None
        if not isinstance(data, list) or len(data) != len(texts):
            raise self.server.malformed(f"expected {len(texts)} embeddings under 'data'")
        rows: list[Any] = [None] * len(texts)
        for item in data:
            index = item.get("index") if isinstance(item, dict) else None
            if not isinstance(index, int) or not 0 <= index < len(texts) or rows[index] is not None:
                raise self.server.malformed(f"an embedding with index {index!r}")
            rows[index] = item.get("embedding")
        try:
            vectors = np.asarray(rows, dtype=np.float32)
        except (TypeError, ValueError):
            raise self.server.malformed("an embedding that is not a list of numbers of the common length") from None
        if vectors.ndim != 2 or not vectors.shape[1] or not np.isfinite(vectors).all():
            raise self.server.malformed("embeddings that are not finite vectors")
        return vectors

    def _encode(self, texts: Sequence[str], prompt: str | None) -> np.ndarray:
        inputs = [f"{prompt}{t}" if prompt else t for t in texts]  # as sentence-transformers joins a prompt
        parts = [self._request(inputs[i : i + self.batch_size]) for i in range(0, len(inputs), self.batch_size)]
        return np.concatenate(parts) if parts else np.zeros((0, self.dimension), np.float32)


def sigmoid(x: float) -> float:
    return 1.0 / (1.0 + math.exp(-x)) if x >= 0 else math.exp(x) / (1.0 + math.exp(x))


class RemoteReranker(Reranker):
    """A reranker behind a ``/rerank`` endpoint: one request per question, scores matched by ``index``."""

    def __init__(self, url: str, model: str, api_key: str = "", api: str = "jina", template: str = "server",
                 instruction: str = DEFAULT_INSTRUCTION, timeout_s: float = 60.0, retries: int = 3) -> None:
        self.name, self.api, self.template, self.instruction = model, api, template, instruction
        self.server = Server(url, api_key, "rerank", timeout_s, retries)
        self.logits = False  # set once the server has returned a score outside [0, 1]
        if api == "jina":
            checked_model(self.server, model, "RAG_RERANKER_MODEL")

    def notice(self, instruction: str | None = None) -> str:
        if self.template == "server" and (instruction or self.instruction) != DEFAULT_INSTRUCTION:
            return ("The rerank server writes the prompt with its default instruction, so the custom rerank "
                    "instruction was not used (RAG_RERANK_TEMPLATE=client sends it, to a server that takes the "
                    "card's prompt parts, such as vLLM).")
        return ""

    def _parts(self, query: str, passages: Sequence[str], instruction: str | None) -> tuple[str, list[str]]:
        if self.template == "server":
            return query, list(passages)
        head = f"{SYSTEM_PREFIX}<Instruct>: {instruction or self.instruction}\n<Query>: {query}\n"
        return head, [f"<Document>: {p}{SUFFIX}" for p in passages]

    def score(self, query: str, passages: Sequence[str], instruction: str | None = None) -> list[float]:
        if not passages:
            return []
        query, documents = self._parts(query, passages, instruction)
        if self.api == "tei":
            body = self.server.post("/rerank", {"query": query, "texts": documents, "raw_scores": False})
            results, key = body, "score"
        else:
            body = self.server.post("/rerank", {"model": self.name, "query": query, "documents": documents,
                                                "top_n": len(documents), "return_documents": False})
            results, key = (body.get("results") if isinstance(body, dict) else None), "relevance_score"
        if not isinstance(results, list):
            raise self.server.malformed("no list of results" if self.api == "jina" else "not a list of scores")
        scores: list[float | None] = [None] * len(documents)
        for item in results:
            index = item.get("index") if isinstance(item, dict) else None
            value = item.get(key) if isinstance(item, dict) else None
            if not isinstance(index, int) or not 0 <= index < len(documents) or scores[index] is not None:
                raise self.server.malformed(f"a result with index {index!r}")
            if not isinstance(value, int | float) or not math.isfinite(value):
                raise self.server.malformed(f"a {key} of {value!r}")
            scores[index] = float(value)
        if None in scores:
            raise self.server.malformed(f"{scores.count(None)} of {len(documents)} documents without a score")
        if not self.logits and any(s < 0 or s > 1 for s in scores):  # type: ignore[operator]
            self.logits = True
            log.warning("the rerank server at %s returned scores outside [0, 1]: read as logits, put through a "
                        "sigmoid from now on", self.server.url)
        return [sigmoid(s) if self.logits else s for s in scores]  # type: ignore[arg-type]


def embedder(settings: Settings) -> RemoteEmbedder:
    return RemoteEmbedder(
        settings.embedding_url, settings.embedding_model, settings.embedding_api_key, settings.embedding_tokenizer,
        settings.embedding_dim, settings.query_instruction, settings.embedding_batch, settings.remote_timeout_s,
        settings.remote_retries,
    )


def reranker(settings: Settings) -> RemoteReranker:
    return RemoteReranker(
        settings.rerank_url, settings.reranker_model, settings.rerank_api_key, settings.rerank_api,
        settings.rerank_template, settings.rerank_instruction, settings.remote_timeout_s, settings.remote_retries,
    )
