"""One frozen, typed settings object, read in one place.

Precedence, lowest first: ``config/default.toml`` < a ``.env`` file < the process environment.
The variable for a setting is ``RAG_`` plus its name in upper case (``candidates`` -> ``RAG_CANDIDATES``),
except the OpenAI ones, which use the OpenAI SDK's own names (``OPENAI_API_KEY``, ``OPENAI_BASE_URL``), and
``zero_gpu``, which is the ``SPACES_ZERO_GPU`` that a ZeroGPU Space sets.
No other module reads ``os.environ``.
"""

from __future__ import annotations

import dataclasses
import os
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from dotenv import dotenv_values

from rag.errors import SettingsError

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_CONFIG = ROOT / "config" / "default.toml"

DEVICES = ("auto", "cpu", "cuda", "mps")
DTYPES = ("auto", "float32", "bfloat16", "float16")
ENGINES = ("auto", "torch", "onnx", "llama")
ANALYZERS = ("standard", "jieba")  # the BM25 analyzer of a new collection (rag.store)
RERANK_APIS = ("jina", "tei")  # the rerank request/response shapes rag.remote speaks
RERANK_TEMPLATES = ("server", "client")  # who writes the reranker's prompt: the server's template, or this client
_PLAIN_ENV_NAMES = {"openai_api_key": "OPENAI_API_KEY", "openai_base_url": "OPENAI_BASE_URL",
                    "zero_gpu": "SPACES_ZERO_GPU"}


@dataclass(frozen=True)
class Settings:
    embedding_model: str = "Qwen/Qwen3-Embedding-0.6B"
    reranker_model: str = "Qwen/Qwen3-Reranker-0.6B"
    device: str = "auto"
    dtype: str = "auto"
    embedding_dim: int = 0  # 0 = the model's full size
    quantize: str = "none"  # int8: dynamic int8 linears on the CPU (opt-in); q8_0: llama.cpp's (engine llama)
    engine: str = "auto"  # auto: ONNX Runtime on a CPU in float32 where it supports the model, else PyTorch
    engine_cache: str = ""  # where ONNX exports are kept; empty: beside the model (or data_dir/engines)
    embedding_url: str = ""  # an OpenAI-compatible base URL (http://host:8000/v1): embeddings from that server
    embedding_api_key: str = field(default="", repr=False)
    embedding_tokenizer: str = ""  # where the embedding tokenizer is loaded from; empty: embedding_model
    embedding_batch: int = 32  # texts per /embeddings request
    rerank_url: str = ""  # a base URL whose /rerank scores the candidates, instead of the reranker in this process
    rerank_api_key: str = field(default="", repr=False)
    rerank_api: str = "jina"  # jina: {query, documents} -> {results: [{index, relevance_score}]}; tei: {query, texts}
    rerank_template: str = "server"  # server: the server formats the prompt; client: the card's prompt is sent
    remote_timeout_s: float = 60.0  # one request to RAG_EMBEDDING_URL or RAG_RERANK_URL
    remote_retries: int = 3  # retries of a request answered 429 or 503, with backoff
    zero_gpu: bool = False  # SPACES_ZERO_GPU, set by a ZeroGPU Space: every model call goes through spaces.GPU
    milvus_uri: str = "data/milvus.db"
    milvus_token: str = field(default="", repr=False)
    collection: str = "documents"
    analyzer: str = ""  # RAG_ANALYZER: standard or jieba, fixed (a collection of the other is refused); empty: a new
    # collection gets jieba (rag.store.DEFAULT_ANALYZER) and an existing one keeps its own
    candidates: int = 10
    top_k: int = 3
    hybrid: bool = False  # first stage: dense + BM25 fused by RRF, instead of dense alone
    query_instruction: str = "Given a web search query, retrieve relevant passages that answer the query"
    rerank_instruction: str = "Given a web search query, retrieve relevant passages that answer the query"
    rerank_max_tokens: int = 8192
    max_question_tokens: int = 512  # a longer question is cut to this many embedding-model tokens, with a notice
    chunk_tokens: int = 512
    chunk_overlap: int = 64
    max_file_mb: float = 10.0
    convert_timeout_s: float = 60.0  # a PDF/Office/HTML/EPUB conversion that runs longer is stopped, the file skipped
    convert_memory_mb: int = 2048  # the converter process's address-space cap (RLIMIT_AS)
    fetch_timeout_s: float = 20.0  # one URL: connect, redirects and the whole body
    allow_private_urls: bool = False  # the app may fetch loopback/private/link-local addresses (the CLI always may)
    llm_model: str = "gpt-4o"
    temperature: float = 0.2
    max_tokens: int = 1024
    history_turns: int = 3
    llm_timeout_s: float = 60.0
    llm_retries: int = 3
    index_on_start: bool = True  # index RAG_DOCS (or the FAQ) when the collection is empty; one replica only
    docs: str = ""  # RAG_DOCS: the folder the app indexes on first start, instead of the Milvus FAQ
    data_dir: str = "data"  # uploads and the downloaded default corpus
    max_upload_files: int = 50
    eval_paths: str = ""  # RAG_EVAL_PATHS: more folders the app's Evaluate tab may read (os.pathsep-separated)
    max_upload_mb: float = 100.0  # the largest single upload (a zip included); the web server refuses larger ones
    auth: str = field(default="", repr=False)  # RAG_AUTH: "user:password[,user:password...]" turns on the login
    admins: str = ""  # RAG_ADMINS: users who may upload, clear and rebuild; empty: everyone who can open the app
    mcp: bool = False  # RAG_MCP: serve /search and /ask as MCP tools at /gradio_api/mcp/ (behind RAG_AUTH)
    hf_oauth: bool = False  # "Sign in with Hugging Face" in a Space (auto when the Space has hf_oauth: true)
    browser_secret: str = field(default="", repr=False)  # encrypts visitors' chats; empty: data_dir/browser-secret
    openai_api_key: str = field(default="", repr=False)
    openai_base_url: str = ""

    def __post_init__(self) -> None:
        if self.device not in DEVICES:
            raise SettingsError(f"RAG_DEVICE={self.device!r} is not one of {', '.join(DEVICES)}.")
        if self.quantize not in ("none", "int8", "q8_0"):
            raise SettingsError(f"RAG_QUANTIZE={self.quantize!r} is not one of none, int8, q8_0.")
        if (self.quantize == "q8_0") != (self.engine == "llama") and self.quantize != "none":
            raise SettingsError(f"RAG_QUANTIZE={self.quantize} goes with RAG_ENGINE="
                                f"{'llama' if self.quantize == 'q8_0' else 'onnx, torch or auto'}; "
                                f"RAG_ENGINE={self.engine} takes RAG_QUANTIZE="
                                f"{'none or q8_0' if self.engine == 'llama' else 'none or int8'}.")
        if self.engine not in ENGINES:
            raise SettingsError(f"RAG_ENGINE={self.engine!r} is not one of {', '.join(ENGINES)}.")
        if self.analyzer and self.analyzer not in ANALYZERS:
            raise SettingsError(f"RAG_ANALYZER={self.analyzer!r} is not one of {', '.join(ANALYZERS)}, or empty "
                                "(jieba for a new collection; an existing one keeps its own).")
        if self.rerank_api not in RERANK_APIS:
            raise SettingsError(f"RAG_RERANK_API={self.rerank_api!r} is not one of {', '.join(RERANK_APIS)}.")
        if self.rerank_template not in RERANK_TEMPLATES:
            raise SettingsError(f"RAG_RERANK_TEMPLATE={self.rerank_template!r} is not one of "
                                f"{', '.join(RERANK_TEMPLATES)}.")
        for name in ("embedding_url", "rerank_url"):
            url = getattr(self, name)
            if url and not url.startswith(("http://", "https://")):
                raise SettingsError(f"{env_name(name)}={url!r} is not an http(s) URL; give the base URL, like "
                                    "http://localhost:8000/v1, or leave it empty to run the model in this process.")
        if self.dtype not in DTYPES:
            raise SettingsError(f"RAG_DTYPE={self.dtype!r} is not one of {', '.join(DTYPES)}.")
        for name in ("candidates", "top_k", "chunk_tokens", "rerank_max_tokens", "max_question_tokens",
                     "convert_memory_mb", "embedding_batch"):
            if getattr(self, name) < 1:
                raise SettingsError(f"{env_name(name)} must be at least 1, not {getattr(self, name)}.")
        if self.remote_retries < 0:
            raise SettingsError(f"RAG_REMOTE_RETRIES must be 0 or more, not {self.remote_retries}.")
        for name in ("convert_timeout_s", "fetch_timeout_s", "remote_timeout_s"):
            if getattr(self, name) <= 0:
                raise SettingsError(f"{env_name(name)} must be a positive number of seconds.")
        if self.embedding_dim < 0:
            raise SettingsError("RAG_EMBEDDING_DIM must be a positive number, or empty for the full size.")
        if not 0 <= self.chunk_overlap < self.chunk_tokens:
            raise SettingsError("RAG_CHUNK_OVERLAP must be at least 0 and smaller than RAG_CHUNK_TOKENS.")
        self.logins()  # validates RAG_AUTH

    def logins(self) -> list[tuple[str, str]]:
        """The (user, password) pairs of RAG_AUTH; empty when the login is off."""
        pairs = []
        for entry in filter(None, (e.strip() for e in self.auth.split(","))):
            user, sep, password = entry.partition(":")
            if not (sep and user.strip() and password):
                raise SettingsError("RAG_AUTH must be user:password, or several separated by commas "
                                    "(user1:pw1,user2:pw2); an entry has no user or no password.")
            pairs.append((user.strip(), password))
        return pairs

    def admin_names(self) -> frozenset[str]:
        """The users of RAG_ADMINS; empty means anyone who can open the app may change the index."""
        return frozenset(n.strip() for n in self.admins.split(",") if n.strip())

    def replace(self, **changes: Any) -> Settings:
        """A copy with some settings changed (validated like the original)."""
        return dataclasses.replace(self, **changes)


def env_name(setting: str) -> str:
    """The environment variable that overrides ``setting``."""
    return _PLAIN_ENV_NAMES.get(setting, f"RAG_{setting.upper()}")


_TRUE = ("1", "true", "yes", "on")
_FALSE = ("0", "false", "no", "off", "")


def _coerce(name: str, kind: str, raw: Any) -> Any:
    if not isinstance(raw, str):
        return raw
    raw = raw.strip()
    if kind == "bool":
        if raw.lower() not in _TRUE + _FALSE:
            raise SettingsError(f"{env_name(name)}={raw!r} is not true or false; use 1/0, true/false or yes/no.")
        return raw.lower() in _TRUE
    try:
        if kind == "int":
            return int(raw) if raw else 0
        if kind == "float":
            return float(raw)
    except ValueError:
        raise SettingsError(f"{env_name(name)}={raw!r} is not a number.") from None
    return raw


def load_settings(
    config_file: Path | None = None,
    env_file: Path | None = Path(".env"),
    environ: Mapping[str, str] | None = None,
    **overrides: Any,
) -> Settings:
    """Read the settings: the TOML defaults, then ``.env``, then the environment, then ``overrides``.

    Example:
        >>> load_settings(environ={"RAG_TOP_K": "5"}, env_file=None).top_k
        5
    """
    values: dict[str, Any] = {}
    with open(config_file or DEFAULT_CONFIG, "rb") as f:
        for section in tomllib.load(f).values():
            values.update(section)
    dotenv = {k: v for k, v in dotenv_values(env_file).items() if v is not None} if env_file else {}
    env = os.environ if environ is None else environ
    kinds = {f.name: f.type for f in dataclasses.fields(Settings)}
    unknown = set(values) - set(kinds)
    if unknown:
        raise SettingsError(f"Unknown setting(s) in {config_file or DEFAULT_CONFIG}: {', '.join(sorted(unknown))}.")
    for name in kinds:
        var = env_name(name)
        for source in (dotenv, env):
            if var in source:
                values[name] = source[var]
    in_space = bool(env.get("SPACE_ID") and env.get("OAUTH_CLIENT_ID"))  # a Space with hf_oauth: true
    if env_name("hf_oauth") not in dotenv and env_name("hf_oauth") not in env:
        values["hf_oauth"] = values.get("hf_oauth") or in_space
    elif _coerce("hf_oauth", "bool", values["hf_oauth"]) and not in_space:
        raise SettingsError("RAG_HF_OAUTH=true works only in a Hugging Face Space with hf_oauth: true in its README "
                            "(SPACE_ID and OAUTH_CLIENT_ID are not set here). Use RAG_AUTH=user:password instead.")
    values.update(overrides)
    return Settings(**{name: _coerce(name, kinds[name], value) for name, value in values.items()})
