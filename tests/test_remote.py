"""rag.remote against a loopback server of our own (tests/model_server.py): the protocol's shapes and every
failure a real server will not give on demand. The agreement with the in-process models, the CLI and the app run
against llama.cpp's server in tests/test_llama_cpp_server.py."""

from __future__ import annotations

import math
import time

import numpy as np
import pytest
from conftest import free_port
from model_server import FakeModels, Scripted, vector

from rag.engines import embedder as pick_embedder
from rag.engines import engine_name
from rag.engines import reranker as pick_reranker
from rag.errors import ModelCallError, ModelLoadError, SettingsError
from rag.pipeline import Pipeline
from rag.random_models import QUERY_PROMPT
from rag.remote import RemoteEmbedder, RemoteReranker
from rag.reranker import DEFAULT_INSTRUCTION, SUFFIX, SYSTEM_PREFIX
from rag.settings import load_settings

pytestmark = pytest.mark.timeout(120)


@pytest.fixture
def fake():
    with FakeModels() as server:
        yield server


def unit(v: list[float]) -> np.ndarray:
    a = np.asarray(v, np.float32)
    return a / np.linalg.norm(a)


def remote_embedder(fake: FakeModels, tiny_models, **kw) -> RemoteEmbedder:
    return RemoteEmbedder(fake.url, kw.pop("model", "tiny"), tokenizer=kw.pop("tokenizer", str(tiny_models[0])),
                          **kw)


def test_embeddings_are_matched_by_index_with_the_query_instruction_prepended(fake, tiny_models) -> None:
    emb = remote_embedder(fake, tiny_models, api_key="sk-remote-1", batch_size=2)
    assert emb.dimension == fake.dim and emb.max_tokens > 0
    texts = ["first passage", "second passage", "third"]
    fake.requests.clear()
    got = emb.embed_documents(texts)
    assert [len(r["body"]["input"]) for r in fake.requests] == [2, 1]  # RAG_EMBEDDING_BATCH
    assert fake.embedded() == texts  # documents get no instruction
    np.testing.assert_allclose(got, [unit(vector(t, fake.dim)) for t in texts], atol=1e-6)  # the fake answers
    assert all(r["headers"]["authorization"] == "Bearer sk-remote-1" for r in fake.requests)  # ... reversed
    q = emb.embed_query("where is it?", "Find the answer")
    assert fake.embedded()[-1] == "Instruct: Find the answer\nQuery:where is it?"
    np.testing.assert_allclose(q, unit(vector("Instruct: Find the answer\nQuery:where is it?", fake.dim)), atol=1e-6)
    emb.embed_query("where is it?")
    assert fake.embedded()[-1] == QUERY_PROMPT + "where is it?"
    # the tokenizer is the model's: chunking counts the same tokens as in-process
    from transformers import AutoTokenizer

    ids = AutoTokenizer.from_pretrained(str(tiny_models[0]))("Milvus stores data", add_special_tokens=False)
    assert len(emb.token_spans("Milvus stores data")) == len(ids["input_ids"])


def test_matryoshka_dimension_is_cut_and_normalised_here(fake, tiny_models) -> None:
    emb = remote_embedder(fake, tiny_models, dimension=4)
    v = emb.embed_query("x")
    assert v.shape == (4,) and math.isclose(float(np.linalg.norm(v)), 1.0, rel_tol=1e-6)
    with pytest.raises(ModelLoadError, match="RAG_EMBEDDING_DIM=9"):
        remote_embedder(fake, tiny_models, dimension=9)


def test_the_query_prompt_follows_the_model(fake, tiny_models, minilm) -> None:
    plain = remote_embedder(fake, tiny_models, model="all-MiniLM-L6-v2", tokenizer=minilm)
    plain.embed_query("where is it?")
    assert fake.embedded()[-1] == "where is it?"  # a model without a query prompt gets the text as is
    qwen = remote_embedder(fake, tiny_models, model="Qwen/Qwen3-Embedding-0.6B", tokenizer=minilm)
    qwen.embed_query("where is it?")
    assert fake.embedded()[-1] == QUERY_PROMPT + "where is it?"  # Qwen3-Embedding by name


def test_a_tokenizer_that_cannot_be_had_names_the_setting(fake, tmp_path) -> None:
    with pytest.raises(ModelLoadError, match="RAG_EMBEDDING_TOKENIZER"):
        RemoteEmbedder(fake.url, "some/model-that-is-not-here", tokenizer=str(tmp_path / "nothing"))


def test_429_and_503_are_retried_with_backoff(fake, tiny_models) -> None:
    emb = remote_embedder(fake, tiny_models, retries=3)
    fake.requests.clear()
    fake.enqueue(Scripted(429, headers={"Retry-After": "0.2"}), Scripted(503))
    t0 = time.monotonic()
    emb.embed_query("x")
    assert len(fake.requests) == 3 and time.monotonic() - t0 >= 0.2 + 1.0  # Retry-After, then 0.5 * 2**1


def test_retries_end_in_one_line(fake, tiny_models) -> None:
    emb = remote_embedder(fake, tiny_models, retries=1)
    fake.requests.clear()
    fake.enqueue(Scripted(503, headers={"Retry-After": "0"}), Scripted(503, headers={"Retry-After": "0"}))
    with pytest.raises(ModelCallError, match=r"HTTP 503 \(retried") as info:
        emb.embed_query("x")
    assert len(fake.requests) == 2 and "\n" not in str(info.value)


@pytest.mark.parametrize(("status", "needle"), [(500, "HTTP 500: scripted 500"), (400, "HTTP 400"),
                                                (401, "RAG_EMBEDDING_API_KEY"), (404, "RAG_EMBEDDING_URL")])
def test_other_errors_are_not_retried_and_say_what_to_change(fake, tiny_models, status, needle) -> None:
    emb = remote_embedder(fake, tiny_models)
    fake.requests.clear()
    fake.enqueue(Scripted(status))
    with pytest.raises(ModelCallError, match=needle) as info:
        emb.embed_documents(["x"])
    assert len(fake.requests) == 1 and "\n" not in str(info.value)


def test_the_key_is_never_in_a_message(fake, tiny_models) -> None:
    key = "sk-PLANTED-remote-4242"
    emb = remote_embedder(fake, tiny_models, api_key=key)
    for status in (401, 403, 500, 404):
        fake.enqueue(Scripted(status, {"error": {"message": f"Incorrect API key provided: {key}"}}))
        with pytest.raises(ModelCallError) as info:
            emb.embed_query("x")
        assert key not in str(info.value) and key not in repr(info.value)


@pytest.mark.parametrize("body", ["<html>bad gateway</html>", {"data": []}, {"embeddings": [[1.0]]},
                                  {"data": [{"index": 5, "embedding": [1.0] * 8}]},
                                  {"data": [{"index": 0, "embedding": "AAAA"}]},
                                  {"data": [{"index": 0, "embedding": [float("nan")] * 8}]}])
def test_a_malformed_embeddings_body_is_one_line(fake, tiny_models, body) -> None:
    emb = remote_embedder(fake, tiny_models)
    fake.enqueue(Scripted(200, body if isinstance(body, str) else body))
    with pytest.raises(ModelCallError, match="cannot read") as info:
        emb.embed_documents(["x"])
    assert "\n" not in str(info.value)


def test_a_slow_server_times_out_with_the_setting_named(fake, tiny_models) -> None:
    emb = remote_embedder(fake, tiny_models, timeout_s=0.5)
    fake.enqueue(Scripted(delay=2.0))
    with pytest.raises(ModelCallError, match="within 0.5 s. Raise RAG_REMOTE_TIMEOUT_S"):
        emb.embed_query("x")


def test_a_server_that_is_not_there(tiny_models) -> None:
    url = f"http://127.0.0.1:{free_port()}/v1"
    with pytest.raises(ModelCallError, match="Could not reach the embedding server .* RAG_EMBEDDING_URL"):
        RemoteEmbedder(url, "tiny", tokenizer=str(tiny_models[0]))
    with pytest.raises(ModelCallError, match="Could not reach the rerank server .* RAG_RERANK_URL"):
        RemoteReranker(url, "tiny").score("q", ["a"])


def test_a_model_the_server_does_not_list_is_refused(tiny_models) -> None:
    with FakeModels(models=("served-model",)) as fake:
        with pytest.raises(ModelLoadError, match="serves served-model, not 'tiny'. Set RAG_EMBEDDING_MODEL"):
            remote_embedder(fake, tiny_models)
        with pytest.raises(ModelLoadError, match="RAG_RERANKER_MODEL"):
            RemoteReranker(fake.url, "tiny")
        assert remote_embedder(fake, tiny_models, model="served-model").dimension == fake.dim


def test_rerank_scores_are_matched_by_index(fake) -> None:
    rr = RemoteReranker(fake.url, "rr")
    docs = ["a", "ccc", "bb", "dddd"]
    assert rr.score("q", docs) == [0.01, 0.03, 0.02, 0.04]  # the fake answers best first
    body = fake.requests[-1]["body"]
    assert body == {"model": "rr", "query": "q", "documents": docs, "top_n": 4, "return_documents": False}
    assert rr.score("q", []) == []


def test_the_tei_shape() -> None:
    with FakeModels(tei=True) as fake:
        rr = RemoteReranker(fake.url, "rr", api="tei")
        assert rr.score("q", ["a", "ccc", "bb"]) == [0.01, 0.03, 0.02]
        assert fake.requests[-1]["body"] == {"query": "q", "texts": ["a", "ccc", "bb"], "raw_scores": False}
        fake.enqueue(Scripted(body={"results": []}))  # the Jina shape where TEI's is expected
        with pytest.raises(ModelCallError, match="not a list of scores"):
            rr.score("q", ["a"])


def test_logits_are_put_through_a_sigmoid() -> None:
    logits = {"a": 3.0, "b": -2.0, "c": 0.25}
    with FakeModels(scores=lambda q, d: logits[d]) as fake:
        rr = RemoteReranker(fake.url, "rr")
        got = rr.score("q", ["a", "b", "c"])
        assert got == pytest.approx([1 / (1 + math.exp(-x)) for x in logits.values()], abs=1e-12)
        assert rr.logits  # and it stays so: a later answer inside [0, 1] is still read as logits
        assert rr.score("q", ["c"]) == pytest.approx([1 / (1 + math.exp(-0.25))])


@pytest.mark.parametrize("body", [{"results": [{"index": 0, "relevance_score": 0.5}]},  # one of two missing
                                  {"results": [{"index": 0, "relevance_score": 0.5}, {"index": 0,
                                                                                      "relevance_score": 0.1}]},
                                  {"results": [{"index": 0, "relevance_score": "high"},
                                               {"index": 1, "relevance_score": 0.1}]},
                                  {"data": []}, "not json"])
def test_a_malformed_rerank_body_is_one_line(fake, body) -> None:
    fake.enqueue(Scripted(body=body))
    with pytest.raises(ModelCallError, match="rerank server .* cannot read"):
        RemoteReranker(fake.url, "rr").score("q", ["a", "b"])


def test_a_custom_instruction_the_server_cannot_take_is_said(fake) -> None:
    server = RemoteReranker(fake.url, "rr")
    assert server.notice(DEFAULT_INSTRUCTION) == "" and server.notice() == ""
    assert "custom rerank instruction was not used" in server.notice("Find code")
    server.score("q", ["doc"], "Find code")
    assert fake.requests[-1]["body"]["query"] == "q"  # the server writes the prompt
    client = RemoteReranker(fake.url, "rr", template="client")
    assert client.notice("Find code") == ""
    client.score("q", ["doc"], "Find code")
    body = fake.requests[-1]["body"]
    assert body["query"] == f"{SYSTEM_PREFIX}<Instruct>: Find code\n<Query>: q\n"
    assert body["documents"] == [f"<Document>: doc{SUFFIX}"]


def test_settings_pick_the_remote_models_and_never_print_the_keys(fake, make_settings) -> None:
    settings = make_settings(embedding_url=fake.url, rerank_url=fake.url, embedding_api_key="sk-emb-SECRET",
                             rerank_api_key="sk-rr-SECRET")
    assert "SECRET" not in repr(settings)
    emb, rr = pick_embedder(settings, "cpu", None, "none"), pick_reranker(settings, "cpu", None, "none")
    assert (engine_name(emb), engine_name(rr)) == ("remote", "remote")
    rr.score("q", ["a"])
    assert fake.requests[-1]["headers"]["authorization"] == "Bearer sk-rr-SECRET"
    env = {"RAG_EMBEDDING_URL": fake.url, "RAG_RERANK_API": "tei", "RAG_EMBEDDING_BATCH": "4",
           "RAG_REMOTE_TIMEOUT_S": "5", "RAG_RERANK_TEMPLATE": "client"}
    loaded = load_settings(env_file=None, environ=env)
    assert (loaded.rerank_api, loaded.embedding_batch, loaded.remote_timeout_s) == ("tei", 4, 5.0)
    for bad, needle in [({"RAG_RERANK_API": "cohere"}, "RAG_RERANK_API"),
                        ({"RAG_RERANK_TEMPLATE": "vllm"}, "RAG_RERANK_TEMPLATE"),
                        ({"RAG_EMBEDDING_URL": "localhost:8000/v1"}, "not an http"),
                        ({"RAG_EMBEDDING_BATCH": "0"}, "RAG_EMBEDDING_BATCH"),
                        ({"RAG_REMOTE_TIMEOUT_S": "0"}, "RAG_REMOTE_TIMEOUT_S")]:
        with pytest.raises(SettingsError, match=needle):
            load_settings(env_file=None, environ=bad)


def test_a_failed_rerank_call_keeps_the_dense_results_and_says_why(fake, make_settings, faq_dir) -> None:
    pipeline = Pipeline(make_settings(rerank_url=fake.url))  # the embedder in-process, the reranker remote
    pipeline.ingest([faq_dir / "product_faq.md"])
    fine = pipeline.retrieve("Where does Milvus store data?")
    assert len(fine.reranked) == 3 and fine.notice == ""
    fake.enqueue(Scripted(500))
    failed = pipeline.retrieve("Where does Milvus store data?")
    assert failed.reranked == () and [h.id for h in failed.passages] == [h.id for h in fine.dense]
    assert failed.notice.startswith("These are not reranked: The rerank server at") and "HTTP 500" in failed.notice
    fake.enqueue(Scripted(500))
    with pytest.raises(ModelCallError):  # the evaluation's call: unranked must not pass for ranked
        pipeline.rerank(pipeline.dense("Where does Milvus store data?"))
    custom = pipeline.retrieve("Where does Milvus store data?", rerank_instruction="Find code")
    assert len(custom.reranked) == 3 and "custom rerank instruction was not used" in custom.notice


def test_a_failed_embedding_call_keeps_what_was_stored_and_a_rerun_embeds_the_rest(fake, make_settings,
                                                                                 faq_dir) -> None:
    pipeline = Pipeline(make_settings(embedding_url=fake.url, embedding_batch=8))
    _ = pipeline.embedder  # its load costs one request (the vector size)
    fake.fail_after = 1 + 3  # the probe, then three batches of 8
    with pytest.raises(ModelCallError, match="HTTP 500: the model worker died"):
        pipeline.ingest([faq_dir], batch=8)
    assert pipeline.store.count() == 24
    stored = set(fake.embedded()[1 : 1 + 24])  # after the probe: the three batches that were answered
    fake.fail_after, fake.requests[:] = None, []
    report = pipeline.ingest([faq_dir], batch=8)
    assert report.chunks_skipped == 24 and pipeline.store.count() == 24 + report.chunks_added
    assert len(fake.embedded()) == report.chunks_added and not stored & set(fake.embedded())
