"""ZeroGPU without a Space: ``rag.zerogpu`` under a stand-in ``spaces`` with ZeroGPU's process semantics.

The stand-in (``tests/zerogpu/spaces``) forks a fresh worker for every call, pickles arguments and results both
ways, refuses calls over the visitor's quota, and logs each call and every model forward pass made outside a
worker. ``SPACES_ZERO_GPU=true`` with ``RAG_DEVICE=cpu`` runs the ZeroGPU code path with the models on the CPU.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
from conftest import cli_env

from rag import zerogpu
from rag.settings import ROOT, load_settings
from rag.zerogpu import BATCH, MAX_S, START_S

STANDIN = ROOT / "tests" / "zerogpu"
QUESTIONS = ["Where does Milvus store data?", "How much does Milvus cost?"]


# -- the duration callables, against the workload sizes they are given ------------------------------------------------
class Words:
    """A stand-in embedder whose tokens are words."""

    max_tokens = 512

    @staticmethod
    def token_spans(text: str) -> list[tuple[int, int]]:
        return [(0, 0)] * len(text.split())


@pytest.fixture
def registered(monkeypatch: pytest.MonkeyPatch) -> int:
    settings = load_settings(env_file=None, environ={})
    monkeypatch.setitem(zerogpu._PIPELINES, 1, SimpleNamespace(raw_embedder=Words(), settings=settings))
    return 1


def test_encode_duration_follows_the_batch_tokens_and_is_bounded(registered: int) -> None:
    small = zerogpu._encode_seconds(registered, ["one two three"], None)
    assert small == START_S + 1  # the worker's start dominates a tiny batch (rounded up to whole seconds)
    chunk = " ".join(["word"] * 512)
    full = zerogpu._encode_seconds(registered, [chunk] * BATCH, None)
    assert small < full <= MAX_S  # an indexing call of the largest size still fits one duration
    assert zerogpu._encode_seconds(registered, [chunk] * (BATCH // 2), None) < full
    longer = " ".join(["word"] * 5000)  # cut to the model's limit, so it costs no more than a full chunk
    assert zerogpu._encode_seconds(registered, [longer] * BATCH, None) == full


def test_question_duration_follows_candidates_and_their_length(registered: int) -> None:
    def seconds(question: str = "Where?", **options: object) -> int:
        return zerogpu._retrieve_seconds(registered, "c", "addr", b"k", question, options)

    assert START_S < seconds(candidates=10) < seconds(candidates=50) <= MAX_S
    assert seconds(candidates=10) == seconds()  # the default is RAG_CANDIDATES (10)
    assert seconds(candidates=3) < seconds(candidates=10)
    assert seconds("x" * 2000, candidates=10) > seconds(candidates=10)
    assert zerogpu._retrieve_seconds(registered, "c", "a", b"k", "q", {"candidates": 10_000}) == MAX_S


def test_rerank_duration_follows_passages(registered: int) -> None:
    one = zerogpu._score_seconds(registered, "q", ["p" * 1000], None)
    assert one < zerogpu._score_seconds(registered, "q", ["p" * 1000] * 50, None) <= MAX_S


# -- without ZeroGPU nothing changes --------------------------------------------------------------------------------
def test_spaces_installed_but_zero_gpu_unset_changes_nothing(make_settings) -> None:
    import spaces  # the real package, installed by requirements-dev.txt

    assert "tests/zerogpu" not in spaces.__file__

    def f(x: int) -> int:
        return x + 1

    assert spaces.GPU(f) is f and spaces.GPU(duration=5)(f) is f
    settings = make_settings()
    assert settings.zero_gpu is False and type(zerogpu.make_pipeline(settings)).__name__ == "Pipeline"


def run(args: list[str], env: dict[str, str], block_spaces: bool = False) -> subprocess.CompletedProcess[str]:
    prelude = "import sys; sys.modules['spaces'] = None; " if block_spaces else ""  # as if it were not installed
    code = prelude + "from rag.cli import main; raise SystemExit(main(sys.argv[1:]))"
    return subprocess.run([sys.executable, "-c", "import sys; " + code, *args], env=env, capture_output=True,
                          text=True, timeout=600)


def search(env: dict[str, str], block_spaces: bool = False, questions: Path | None = None) -> list[dict]:
    """``rag search --json`` of the first question, or of every line of ``questions``."""
    what = ["--questions", str(questions)] if questions else [QUESTIONS[0]]
    proc = run(["search", *what, "--json"], env, block_spaces)
    assert proc.returncode == 0, proc.stderr
    return [json.loads(line) for line in proc.stdout.splitlines()]


def without_timings(results: list[dict]) -> list[dict]:
    return [{k: v for k, v in r.items() if k != "timings"} for r in results]


def vectors(uri: Path) -> dict[str, np.ndarray]:
    """id -> stored vector of a Lite file's collection (read in a child process: Lite opens a file once per process)."""
    code = ("import sys, json; from rag.store import MilvusStore; s = MilvusStore(sys.argv[1], 'documents'); "
            "s.client.load_collection('documents'); print(json.dumps({r['id']: r['vector'] for r in "
            "s.client.query('documents', filter='', output_fields=['id', 'vector'], limit=10000)}))")
    proc = subprocess.run([sys.executable, "-c", code, str(uri)], capture_output=True, text=True, timeout=120,
                          env=cli_env("-", "-"))
    assert proc.returncode == 0, proc.stderr
    return {k: np.array(v) for k, v in json.loads(proc.stdout.splitlines()[-1]).items()}


@pytest.fixture(scope="module")
def indexed(tiny_models, faq_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    """The environment of a CLI whose Lite file holds the FAQ, indexed the plain way."""
    # ZeroGPU runs PyTorch; the plain path it is compared with must too (RAG_ENGINE=auto picks ONNX Runtime on a
    # CPU without native bf16, within 1e-6 of PyTorch but not equal to it)
    env = cli_env(*tiny_models, RAG_MILVUS_URI=str(tmp_path_factory.mktemp("zg") / "m.db"),
                  TOKENIZERS_PARALLELISM="false", RAG_ENGINE="torch")
    proc = run(["ingest", str(faq_dir / "*.md"), "--json"], env)
    assert proc.returncode == 0, proc.stderr
    return env


def zero_gpu_env(env: dict[str, str], log: Path, **extra: str) -> dict[str, str]:
    return {**env, "PYTHONPATH": f"{STANDIN}:{env['PYTHONPATH']}", "SPACES_ZERO_GPU": "true",
            "STANDIN_SPACES_LOG": str(log), **extra}


@pytest.mark.slow
def test_without_spaces_installed_nothing_changes(indexed: dict[str, str]) -> None:
    assert without_timings(search(indexed, block_spaces=True)) == without_timings(search(indexed))
    proc = run(["search", QUESTIONS[0]], {**indexed, "SPACES_ZERO_GPU": "true"}, block_spaces=True)
    assert proc.returncode == 2 and "`spaces` package is not installed" in proc.stderr
    assert "Traceback" not in proc.stderr


# -- the ZeroGPU code path, under ZeroGPU's process semantics -----------------------------------------------------
def calls(log: Path) -> list[list[str]]:
    return [line.split() for line in log.read_text().splitlines()] if log.exists() else []


@pytest.mark.slow
def test_a_question_is_one_gpu_call_with_the_same_result(indexed: dict[str, str], tmp_path: Path,
                                                         faq_dir: Path) -> None:
    log, questions = tmp_path / "gpu.log", tmp_path / "questions.txt"
    questions.write_text("\n".join(QUESTIONS))
    got = search(zero_gpu_env(indexed, log), questions=questions)
    plain = search(indexed, questions=questions)
    assert len(got) == 2 and without_timings(got) == without_timings(plain)  # same candidates, scores and order
    assert [c[:2] for c in calls(log)] == [["call", "_retrieve"]] * 2  # one GPU call per question, nothing else
    assert len({c[3] for c in calls(log)}) == 1  # ... made by the main process (the stand-in forks a worker each)
    one = str(faq_dir / "performance_faq.md")  # a scope travels into the GPU call, and its search stays here
    scoped = run(["search", QUESTIONS[0], "--source", one, "--json"], zero_gpu_env(indexed, tmp_path / "scoped.log"))
    assert scoped.returncode == 0, scoped.stderr
    assert {h["document"] for h in json.loads(scoped.stdout)["candidates"]} == {one}


@pytest.mark.slow
def test_indexing_runs_in_bounded_gpu_calls_and_stores_in_the_main_process(tiny_models, faq_dir: Path,
                                                                           tmp_path: Path) -> None:
    log = tmp_path / "gpu.log"
    base = cli_env(*tiny_models, RAG_MILVUS_URI=str(tmp_path / "m.db"), TOKENIZERS_PARALLELISM="false")
    proc = run(["ingest", str(faq_dir / "*.md"), "--json"], zero_gpu_env(base, log))
    assert proc.returncode == 0, proc.stderr
    added = json.loads(proc.stdout.splitlines()[-1])["chunks_added"]
    encode = [c for c in calls(log) if c[:2] == ["call", "_encode"]]
    assert len(encode) == -(-added // BATCH) and not [c for c in calls(log) if c[0] == "outside"]
    assert all(START_S <= float(c[2]) <= MAX_S for c in encode)
    # the same vectors as the plain path, to within one step of the 8-bit codes that Milvus Lite's AUTOINDEX keeps
    # (a 1e-7 difference from another batching can round a component to the next step)
    plain = cli_env(*tiny_models, RAG_MILVUS_URI=str(tmp_path / "plain.db"), TOKENIZERS_PARALLELISM="false")
    assert run(["ingest", str(faq_dir / "*.md"), "--json"], plain).returncode == 0
    got, expected = vectors(tmp_path / "m.db"), vectors(tmp_path / "plain.db")
    assert got.keys() == expected.keys() and len(got) == added
    assert max(float(np.abs(got[k] - expected[k]).max()) for k in got) < 0.01


@pytest.mark.slow
def test_no_gpu_left_gives_the_dense_results_with_one_line(indexed: dict[str, str], tmp_path: Path) -> None:
    log = tmp_path / "gpu.log"
    env = zero_gpu_env(indexed, log, STANDIN_SPACES_QUOTA_S="3")  # less than any call declares
    proc = run(["search", QUESTIONS[0], "--json"], env)
    assert proc.returncode == 0, proc.stderr
    got = json.loads(proc.stdout)
    plain = search(indexed)[0]
    def dense(r: dict) -> list[tuple[str, float]]:
        return [(h["id"], h["dense_score"]) for h in r["dense"]]

    assert dense(got) == dense(plain) and got["reranked"] == []  # the dense results, not reranked
    notes = [line for line in proc.stderr.splitlines() if line.startswith("note:")]
    assert len(notes) == 1 and "No GPU for this question" in notes[0] and "quota" in notes[0]
    assert calls(log) == [["outside", calls(log)[0][1], calls(log)[0][2]]]  # the question, embedded here on the CPU


def test_the_stand_in_is_strict_about_worker_state_and_pickling(tmp_path: Path) -> None:
    script = '''
import os, threading
import spaces

state = {"loaded": False}

@spaces.GPU(duration=1)
def load():
    state["loaded"] = True  # changed in the worker only
    return os.getpid()

@spaces.GPU(duration=1)
def use():
    return state["loaded"]

@spaces.GPU(duration=1)
def lock():
    return threading.Lock()  # cannot be pickled

worker = load()
assert worker != os.getpid(), "the call ran in this process"
assert use() is False, "state changed inside a worker came back"
try:
    lock()
except Exception as exc:
    assert "ZeroGPU worker error" in str(exc), exc
else:
    raise AssertionError("an unpicklable result went through")
print("strict")
'''
    env = {"PYTHONPATH": str(STANDIN), "SPACES_ZERO_GPU": "true", "PATH": "/usr/bin:/bin"}
    proc = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True, text=True, timeout=120)
    assert proc.stdout.strip() == "strict", proc.stderr


# -- the app, under ZeroGPU's process semantics, in a real browser ------------------------------------------------
@pytest.mark.slow
def test_the_app_indexes_searches_and_answers_on_zerogpu(browser, tiny_models, faq_dir: Path, tmp_path: Path) -> None:
    from apprun import start_app, stop
    from gradio_client import Client
    from openai_server import FakeOpenAI, Reply

    log = tmp_path / "gpu.log"
    env = {"PYTHONPATH": str(STANDIN), "SPACES_ZERO_GPU": "true", "STANDIN_SPACES_LOG": str(log),
           "TOKENIZERS_PARALLELISM": "false"}
    with FakeOpenAI(Reply(chunks=["Milvus keeps data ", "in object storage [1]."])) as llm:
        url, proc = start_app(tmp_path, tiny_models, faq_dir, llm.url, "sk-zerogpu", env=env)
        try:
            page = browser.new_page(viewport={"width": 1440, "height": 1000})
            page.goto(url)
            page.locator("#question textarea").fill("Where does Milvus store data?")
            page.locator("#ask").click()
            page.wait_for_function("document.querySelectorAll('#rerank-col .rag-card').length === 3 && "
                                   "!document.querySelector('#rerank-col .rag-pending')", timeout=120000)
            assert page.locator("#dense-col .rag-card").count() == 3
            page.get_by_text("in object storage [1].").wait_for(timeout=60000)
            scores = page.locator("#rerank-col .rag-scores").all_inner_texts()
            assert len(scores) == 3 and all("P(yes) 0." in s or "P(yes) 1." in s for s in scores)
            (ROOT / "screenshots").mkdir(exist_ok=True)
            page.screenshot(path=str(ROOT / "screenshots" / "zerogpu.png"), full_page=True)

            client = Client(url, verbose=False)
            found = client.predict("Where does Milvus store data?", 10, 3, api_name="/search")
            assert len(found["dense"]) == 3 and len(found["reranked"]) == 3 and len(found["candidates"]) == 10
            answer = client.predict("How much does Milvus cost?", api_name="/ask")
            assert answer["answer"].endswith("in object storage [1].") and len(answer["sources"]) == 3
        finally:
            stop(proc)
    made = calls(log)
    assert not [c for c in made if c[0] == "outside"], made  # no model ran outside a GPU call
    assert {c[1] for c in made} == {"_encode", "_retrieve"}  # indexing, then one call per question
    assert all(START_S <= float(c[2]) <= MAX_S for c in made)


@pytest.mark.slow
def test_the_app_without_gpu_quota_indexes_on_the_cpu_and_shows_dense_results(browser, tiny_models, faq_dir: Path,
                                                                              tmp_path: Path) -> None:
    from apprun import start_app, stop
    from gradio_client import Client
    from openai_server import FakeOpenAI, Reply

    env = {"PYTHONPATH": str(STANDIN), "SPACES_ZERO_GPU": "true", "STANDIN_SPACES_QUOTA_S": "3",
           "TOKENIZERS_PARALLELISM": "false"}
    with FakeOpenAI(Reply(chunks=["From the dense passages [1]."])) as llm:
        url, proc = start_app(tmp_path, tiny_models, faq_dir, llm.url, "sk-zerogpu", env=env)
        try:
            found = Client(url, verbose=False).predict("Where does Milvus store data?", 10, 3, api_name="/search")
            assert len(found["dense"]) == 3 and found["reranked"] == []  # indexed on the CPU: nothing was lost
            page = browser.new_page(viewport={"width": 1440, "height": 1000})
            page.goto(url)
            page.locator("#question textarea").fill("Where does Milvus store data?")
            page.locator("#ask").click()
            page.locator("#rerank-col .rag-unranked").wait_for(timeout=60000)
            notice = page.locator("#rerank-col .rag-unranked").inner_text()
            assert "No GPU for this question" in notice and "quota" in notice and "\n" not in notice.strip()
            assert page.locator("#dense-col .rag-card").count() == 3
            page.get_by_text("From the dense passages [1].").wait_for(timeout=60000)  # answered from them
            (ROOT / "screenshots").mkdir(exist_ok=True)
            page.screenshot(path=str(ROOT / "screenshots" / "zerogpu-no-quota.png"), full_page=True)
        finally:
            stop(proc)
    assert "no GPU for embedding" in (tmp_path / "app.log").read_text()
