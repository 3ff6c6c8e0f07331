from __future__ import annotations

import dataclasses

import pytest

from rag.errors import SettingsError
from rag.settings import Settings, env_name, load_settings
from rag.store import is_lite_uri


def test_defaults_come_from_config_file() -> None:
    s = load_settings(env_file=None, environ={})
    assert s.embedding_model == "Qwen/Qwen3-Embedding-0.6B"
    assert s.reranker_model == "Qwen/Qwen3-Reranker-0.6B"
    assert (s.candidates, s.top_k, s.device, s.dtype, s.embedding_dim) == (10, 3, "auto", "auto", 0)
    assert s.milvus_uri.endswith(".db") and is_lite_uri(s.milvus_uri)


def test_environment_beats_dotenv_beats_toml(tmp_path) -> None:
    env_file = tmp_path / ".env"
    env_file.write_text("RAG_TOP_K=5\nRAG_CANDIDATES=20\nRAG_COLLECTION=from_dotenv\n")
    s = load_settings(env_file=env_file, environ={"RAG_TOP_K": "4", "RAG_EMBEDDING_DIM": ""})
    assert (s.top_k, s.candidates, s.collection, s.embedding_dim) == (4, 20, "from_dotenv", 0)


@pytest.mark.parametrize(
    "name,var",
    [("embedding_model", "RAG_EMBEDDING_MODEL"), ("reranker_model", "RAG_RERANKER_MODEL"),
     ("milvus_uri", "RAG_MILVUS_URI"), ("milvus_token", "RAG_MILVUS_TOKEN"), ("collection", "RAG_COLLECTION"),
     ("device", "RAG_DEVICE"), ("dtype", "RAG_DTYPE"), ("embedding_dim", "RAG_EMBEDDING_DIM"),
     ("query_instruction", "RAG_QUERY_INSTRUCTION"), ("rerank_instruction", "RAG_RERANK_INSTRUCTION"),
     ("candidates", "RAG_CANDIDATES"), ("top_k", "RAG_TOP_K"), ("openai_api_key", "OPENAI_API_KEY")],
)
def test_documented_variable_names(name: str, var: str) -> None:
    assert env_name(name) == var
    value = {"device": "cpu", "dtype": "float16", "embedding_dim": "8", "candidates": "7", "top_k": "2"}.get(name, "x")
    assert str(getattr(load_settings(env_file=None, environ={var: value}), name)) == value


def test_frozen_and_secret_not_in_repr() -> None:
    s = load_settings(env_file=None, environ={"OPENAI_API_KEY": "sk-secret-123", "RAG_MILVUS_TOKEN": "tok-9"})
    with pytest.raises(dataclasses.FrozenInstanceError):
        s.top_k = 1  # type: ignore[misc]
    assert "sk-secret-123" not in repr(s) and "tok-9" not in repr(s)


@pytest.mark.parametrize(
    "environ,needle",
    [({"RAG_DEVICE": "tpu"}, "RAG_DEVICE"), ({"RAG_DTYPE": "int4"}, "RAG_DTYPE"),
     ({"RAG_TOP_K": "three"}, "RAG_TOP_K"), ({"RAG_CANDIDATES": "0"}, "RAG_CANDIDATES")],
)
def test_bad_values_name_the_variable(environ: dict[str, str], needle: str) -> None:
    with pytest.raises(SettingsError, match=needle):
        load_settings(env_file=None, environ=environ)


def test_replace_validates() -> None:
    with pytest.raises(SettingsError):
        Settings().replace(top_k=0)
