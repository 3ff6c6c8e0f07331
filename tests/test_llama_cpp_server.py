"""The remote models against a server nobody here wrote: llama.cpp's, from the xllamacpp wheel, on 127.0.0.1,
serving GGUF files written (``rag.gguf_export``) from the same tiny random Qwen3 weights the other tests use.

Agreement with the in-process PyTorch float32 path on the same weights. With llama.cpp's defaults (flash attention
on the CPU, an F16 KV cache) attention runs in F16, so results differ by its rounding; measured on the FAQ chunks
(these random weights, initialiser range 0.2, make activations larger than real ones): up to 9.3e-4 in a component
of a unit embedding, 1.4e-3 in a dense score (an inner product of two), 2.3e-4 in P(yes). The tests allow 2e-3,
5e-3 and 2e-3, and a ranking may swap only candidates closer than that. With attention in float32 (an F32 cache,
no flash attention) the same comparison is within 1e-6 (measured 8.4e-7, 9.1e-7, 5.7e-7): the GGUF conversion
itself is exact, and ``test_float32_attention_is_exact`` holds it to 1e-5.

Then the CLI (ingest, search, eval, ask) and the app answer through the server, and the failures run against it: a
stopped server, a model name it does not serve.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from conftest import cli_env
from llama_server import LlamaServer
from openai_server import FakeOpenAI

from rag.documents import chunk_document, load_documents
from rag.embedding import SentenceTransformerEmbedder
from rag.gguf_export import write_gguf
from rag.load import default_questions
from rag.pipeline import Pipeline
from rag.remote import RemoteEmbedder, RemoteReranker
from rag.reranker import Qwen3Reranker
from rag.settings import ROOT

pytestmark = [pytest.mark.slow, pytest.mark.timeout(300)]

DENSE_TOL = 5e-3
RERANK_TOL = 2e-3
EVAL_QUESTIONS = 8
# One question of the 8 may swap two neighbours closer than the tolerances above: that moves nDCG@10 by at most
# (1 - 1/log2(3)) / 8 = 0.046, MRR@10 by 0.5 / 8 and a recall by 1/8. Measured: the same figures to 4 decimals.
EVAL_TOL = {"ndcg": 0.05, "mrr": 0.07, "recall": 1 / EVAL_QUESTIONS + 1e-9}


@pytest.fixture(scope="module")
def ggufs(tiny_models, tmp_path_factory) -> tuple[Path, Path]:
    folder = tmp_path_factory.mktemp("gguf")
    return (write_gguf(tiny_models[0], folder / "embedding.gguf", "embedding"),
            write_gguf(tiny_models[1], folder / "reranker.gguf", "reranker"))


@pytest.fixture(scope="module")
def servers(ggufs, tiny_models):
    """(embedding server, rerank server), each serving its model under the folder's path as its name."""
    with LlamaServer(ggufs[0], "embedding", str(tiny_models[0])) as emb, \
            LlamaServer(ggufs[1], "reranker", str(tiny_models[1])) as rr:
        yield emb, rr


def remote_env(tiny_models, servers, **extra: str) -> dict[str, str]:
    return cli_env(*tiny_models, RAG_EMBEDDING_URL=servers[0].url, RAG_RERANK_URL=servers[1].url, **extra)


def run(args: list[str], env: dict[str, str], cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "rag", *args], env=env, cwd=cwd, capture_output=True, text=True,
                          timeout=240)


def faq_chunks(faq_dir: Path, spans) -> list[str]:
    docs, _ = load_documents([faq_dir], 10_000_000, 60, 2048, 20, False)
    return [c.text for d in docs for c in chunk_document(d, 512, 64, spans)]


def assert_same_ranking(local: list[tuple[str, float]], remote: list[tuple[str, float]], tol: float) -> None:
    """The same order, except where the in-process scores are closer than ``tol`` (a near-tie may swap), and every
    score within ``tol`` of the in-process one."""
    assert len(local) == len(remote)
    local_score = dict(local)
    for i, ((lid, ls), (rid, rs)) in enumerate(zip(local, remote, strict=True)):
        assert abs(ls - rs) < tol, (i, ls, rs)  # the i-th best scores agree
        if rid in local_score:
            assert abs(local_score[rid] - rs) < tol, (rid, local_score[rid], rs)
        if lid != rid:  # a swap: only between near-ties
            assert abs(local_score.get(rid, local[-1][1]) - ls) < 2 * tol, (i, lid, rid)


def test_embeddings_agree_with_pytorch(servers, tiny_models, faq_dir) -> None:
    local = SentenceTransformerEmbedder(str(tiny_models[0]), "cpu")
    remote = RemoteEmbedder(servers[0].url, str(tiny_models[0]), batch_size=16)
    assert (remote.dimension, remote.max_tokens) == (local.dimension, local.max_tokens)
    texts = faq_chunks(faq_dir, local.token_spans)
    assert faq_chunks(faq_dir, remote.token_spans) == texts  # chunking counts the same tokens
    a, b = local.embed_documents(texts), remote.embed_documents(texts)
    assert np.abs(a - b).max() < 2e-3 and (a * b).sum(axis=1).min() > 0.9999
    for question in default_questions(8):
        qa, qb = local.embed_query(question), remote.embed_query(question)
        assert np.abs(qa - qb).max() < 2e-3
        sa, sb = a @ qa, b @ qb
        top_a, top_b = np.argsort(-sa)[:10], np.argsort(-sb)[:10]
        assert_same_ranking([(str(i), float(sa[i])) for i in top_a], [(str(i), float(sb[i])) for i in top_b],
                            DENSE_TOL)


def test_rerank_scores_agree_with_pytorch(servers, tiny_models, faq_dir) -> None:
    local = Qwen3Reranker(str(tiny_models[1]))
    remote = RemoteReranker(servers[1].url, str(tiny_models[1]))
    texts = faq_chunks(faq_dir, SentenceTransformerEmbedder(str(tiny_models[0]), "cpu").token_spans)
    worst = 0.0
    for n, question in enumerate(default_questions(6)):
        candidates = texts[n * 10 : n * 10 + 10]
        a, b = local.score(question, candidates), remote.score(question, candidates)
        worst = max(worst, float(np.abs(np.subtract(a, b)).max()))
        assert_same_ranking(sorted(zip(map(str, range(10)), a, strict=True), key=lambda x: -x[1]),
                            sorted(zip(map(str, range(10)), b, strict=True), key=lambda x: -x[1]), RERANK_TOL)
    assert 0 < worst < RERANK_TOL  # not bit-identical (two engines), but close


def test_float32_attention_is_exact(ggufs, tiny_models, faq_dir) -> None:
    local = SentenceTransformerEmbedder(str(tiny_models[0]), "cpu")
    texts = faq_chunks(faq_dir, local.token_spans)[:24]
    with LlamaServer(ggufs[0], "embedding", "e", exact=True) as emb, \
            LlamaServer(ggufs[1], "reranker", "r", exact=True) as rr:
        remote = RemoteEmbedder(emb.url, "e", tokenizer=str(tiny_models[0]))
        assert np.abs(local.embed_documents(texts) - remote.embed_documents(texts)).max() < 1e-5
        question = default_questions(1)[0]
        assert np.abs(local.embed_query(question) - remote.embed_query(question)).max() < 1e-5
        scores = Qwen3Reranker(str(tiny_models[1])).score(question, texts[:10])
        assert np.abs(np.subtract(scores, RemoteReranker(rr.url, "r").score(question, texts[:10]))).max() < 1e-5


def test_the_cli_answers_through_the_server_with_the_in_process_rankings(servers, tiny_models, faq_dir,
                                                                        tmp_path) -> None:
    remote = remote_env(tiny_models, servers, RAG_MILVUS_URI=str(tmp_path / "remote.db"), RAG_ENGINE="torch",
                        RAG_DTYPE="float32")
    local = cli_env(*tiny_models, RAG_MILVUS_URI=str(tmp_path / "local.db"), RAG_ENGINE="torch",
                    RAG_DTYPE="float32")  # PyTorch float32: auto would pick bfloat16 on this CPU
    reports = [run(["ingest", str(faq_dir), "--json"], env, tmp_path) for env in (remote, local)]
    assert all(r.returncode == 0 for r in reports), [r.stderr for r in reports]
    assert json.loads(reports[0].stdout)["chunks_added"] == json.loads(reports[1].stdout)["chunks_added"] > 50
    questions = tmp_path / "q.txt"
    questions.write_text("\n".join(default_questions(4)) + "\n")
    results = []
    for env in (remote, local):
        out = run(["search", "--questions", str(questions), "--candidates", "10", "--json"], env, tmp_path)
        assert out.returncode == 0 and "note:" not in out.stderr, out.stderr
        results.append([json.loads(line) for line in out.stdout.splitlines()])
    for r, ours in zip(*results, strict=True):
        assert_same_ranking([(h["id"], h["dense_score"]) for h in ours["candidates"]],
                            [(h["id"], h["dense_score"]) for h in r["candidates"]], DENSE_TOL)
        assert len(r["reranked"]) == 3 and all(0 <= h["rerank_score"] <= 1 for h in r["reranked"])
        if [h["id"] for h in r["candidates"]] == [h["id"] for h in ours["candidates"]]:  # same candidates
            assert_same_ranking([(h["id"], h["rerank_score"]) for h in ours["reranked"]],
                                [(h["id"], h["rerank_score"]) for h in r["reranked"]], RERANK_TOL)
    scores = []  # the evaluation through the server reads as the one in process
    for env in (remote, local):
        out = run(["eval", "--csv", str(ROOT / "config" / "eval" / "milvus_faq.csv"), "--lang", "en",
                   "--limit", str(EVAL_QUESTIONS), "--modes", "dense,rerank", "--json"], env, tmp_path)
        assert out.returncode == 0 and "note:" not in out.stderr, out.stderr
        scores.append(json.loads(out.stdout))
    through, inside = scores
    assert set(through) == set(inside) == {"dense", "rerank"}
    for mode in ("dense", "rerank"):
        for metric, value in inside[mode].items():
            if isinstance(value, float):
                tol = EVAL_TOL[metric.split("@")[0]]
                assert through[mode][metric] == pytest.approx(value, abs=tol), (mode, metric)
    with FakeOpenAI() as llm:
        asked = run(["ask", "Where does Milvus store data?", "--json"],
                    {**remote, "OPENAI_BASE_URL": llm.url, "OPENAI_API_KEY": "sk-x"}, tmp_path)
    assert asked.returncode == 0, asked.stderr
    answer = json.loads(asked.stdout)
    assert answer["generated"] and len(answer["sources"]) == 3
    assert all(h["rerank_score"] is not None for h in answer["sources"])
    info = json.loads(run(["info", "--json"], remote, tmp_path).stdout)
    assert info["collection_model"] == str(tiny_models[0].resolve())  # recorded like a local model


def test_a_stopped_rerank_server_leaves_the_dense_results_and_a_stopped_embedding_server_one_line(
        ggufs, tiny_models, faq_dir, tmp_path) -> None:
    with LlamaServer(ggufs[0], "embedding", str(tiny_models[0])) as emb, \
            LlamaServer(ggufs[1], "reranker", str(tiny_models[1])) as rr:
        env = remote_env(tiny_models, (emb, rr), RAG_MILVUS_URI=str(tmp_path / "m.db"))
        assert run(["ingest", str(faq_dir / "product_faq.md")], env, tmp_path).returncode == 0
        rr.stop()
        out = run(["search", "Where does Milvus store data?", "--json"], env, tmp_path)
        assert out.returncode == 0, out.stderr
        result = json.loads(out.stdout)
        assert result["reranked"] == [] and len(result["dense"]) == 3
        note = out.stderr.strip().splitlines()
        assert len(note) == 1 and note[0].startswith("note: These are not reranked: Could not reach the rerank server")
        assert "RAG_RERANK_URL" in note[0]
        emb.stop()
        out = run(["search", "Where does Milvus store data?"], env, tmp_path)
    lines = out.stderr.strip().splitlines()
    assert out.returncode != 0 and len(lines) == 1 and "Traceback" not in out.stderr
    assert lines[0].startswith("error: Could not reach the embedding server") and "RAG_EMBEDDING_URL" in lines[0]


def test_a_model_name_the_server_does_not_serve(servers, tiny_models, tmp_path) -> None:
    env = remote_env(tiny_models, servers, RAG_MILVUS_URI=str(tmp_path / "m.db"),
                     RAG_EMBEDDING_MODEL="Qwen/Qwen3-Embedding-8B", RAG_EMBEDDING_TOKENIZER=str(tiny_models[0]))
    (tmp_path / "a.md").write_text("# A\n\nSome text about Milvus.\n")
    out = run(["ingest", str(tmp_path / "a.md")], env, tmp_path)
    lines = out.stderr.strip().splitlines()
    assert out.returncode != 0 and len(lines) == 1, out.stderr
    assert f"serves {tiny_models[0]}, not 'Qwen/Qwen3-Embedding-8B'. Set RAG_EMBEDDING_MODEL" in lines[0]


def test_the_app_answers_through_the_server(servers, tiny_models, faq_dir, tmp_path) -> None:
    from apprun import start_app, stop
    from openai_server import Reply

    from rag.load import run_users

    with FakeOpenAI(Reply(chunks=["From the passages [1]."], echo=True)) as llm:
        url, proc = start_app(tmp_path, tiny_models, faq_dir, llm.url, "sk-x",
                              env={"RAG_EMBEDDING_URL": servers[0].url, "RAG_RERANK_URL": servers[1].url})
        try:
            report = run_users(url, default_questions(4))
        finally:
            stop(proc)
    assert report.failed == 0 and report.cross_talk == 0, [r.error for r in report.results]
    assert all(len(r.sources) == 3 and r.answer.endswith(f"({r.question})") for r in report.results)
    log = (tmp_path / "app.log").read_text()
    assert f"the server at {servers[0].url}" in log and f"the server at {servers[1].url}" in log


def test_pipeline_over_the_server_is_the_pipeline(servers, make_settings, faq_dir) -> None:
    """Nothing in the pipeline knows the models are remote: the same object, given remote settings."""
    pipeline = Pipeline(make_settings(embedding_url=servers[0].url, rerank_url=servers[1].url))
    report = pipeline.ingest([faq_dir / "performance_faq.md"])
    assert report.chunks_added > 0
    result = pipeline.retrieve("How fast is Milvus?")
    assert len(result.reranked) == 3 and result.notice == ""
