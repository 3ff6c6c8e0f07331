"""``python -m rag`` as a user runs it: real subprocesses, real Milvus, tiny models."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import cli_env

HIT_KEYS = {"id", "text", "source", "heading", "dense_rank", "dense_score", "rerank_rank", "rerank_score",
            "document"}


def run(args: list[str], env: dict[str, str], cwd: Path, timeout: float = 300) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "rag", *args], env=env, cwd=cwd, capture_output=True, text=True,
                          timeout=timeout)


@pytest.fixture
def env(tmp_path: Path, tiny_models) -> dict[str, str]:
    return cli_env(*tiny_models)


def assert_one_line_error(proc: subprocess.CompletedProcess, *needles: str) -> None:
    assert proc.returncode != 0
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), proc.stderr
    assert "Traceback" not in proc.stderr
    for needle in needles:
        assert needle in lines[0]


def test_ingest_search_info_on_a_lite_file(env, tmp_path: Path, faq_dir: Path) -> None:
    first = run(["ingest", str(faq_dir), "--json"], env, tmp_path)
    assert first.returncode == 0, first.stderr
    report = json.loads(first.stdout)
    assert report["files"] == 5 and report["chunks_added"] > 50 and report["chunks_skipped"] == 0
    assert report["seconds"] > 0
    again = json.loads(run(["ingest", str(faq_dir), "--json"], env, tmp_path).stdout)
    assert (again["chunks_added"], again["chunks_skipped"]) == (0, report["chunks_added"])
    assert (tmp_path / "data" / "milvus.db").exists()  # the default: a Lite file in a data folder

    questions = tmp_path / "q.txt"
    questions.write_text("Where does Milvus store data?\n\nHow much does Milvus cost?\n")
    out = run(["search", "How is data stored in milvus?", "--questions", str(questions), "--candidates", "8",
               "--top-k", "2", "--json"], env, tmp_path)
    assert out.returncode == 0, out.stderr
    lines = [json.loads(line) for line in out.stdout.splitlines()]
    assert [r["question"] for r in lines] == ["How is data stored in milvus?", "Where does Milvus store data?",
                                             "How much does Milvus cost?"]
    for r in lines:
        assert_search_result(r, candidates=8, top_k=2)

    text = run(["search", "Where", "does", "Milvus", "store", "data?"], env, tmp_path)
    assert text.returncode == 0, text.stderr
    assert "Dense (inner product)" in text.stdout and "Reranked (P(yes))" in text.stdout
    assert "Q: Where does Milvus store data?" in text.stdout

    info = json.loads(run(["info", "--json"], env, tmp_path).stdout)
    assert info["chunks"] == report["chunks_added"] and info["dimension"] == 64 and info["device"] == "cpu"
    assert {"collection", "embedding_model", "reranker_model", "uri"} <= set(info)


def test_search_on_a_terminal_shows_the_reranking_as_it_goes(env, tmp_path: Path, faq_dir: Path) -> None:
    import os

    assert run(["ingest", str(faq_dir)], env, tmp_path).returncode == 0
    leader, terminal = os.openpty()  # stderr is a terminal, as for a person; stdout stays a pipe
    proc = subprocess.run([sys.executable, "-m", "rag", "search", "Where does Milvus store data?", "--candidates",
                           "4"], env=env, cwd=tmp_path, stdout=subprocess.PIPE, stderr=terminal, text=True, timeout=300)
    os.close(terminal)
    err = b""
    while True:
        try:
            chunk = os.read(leader, 65536)
        except OSError:  # the terminal's other end is closed: all read
            break
        if not chunk:
            break
        err += chunk
    os.close(leader)
    assert proc.returncode == 0
    progress = err.decode()
    assert [f"Reranking {k} of 4" in progress for k in range(5)] == [True] * 5, progress
    assert progress.endswith("\r\x1b[K")  # cleared once done
    assert "Reranked (P(yes))" in proc.stdout and "Reranking" not in proc.stdout


def test_same_commands_against_a_milvus_server(env, tmp_path: Path, faq_dir: Path, milvus_server: str) -> None:
    env = {**env, "RAG_MILVUS_URI": milvus_server, "RAG_COLLECTION": "cli_test"}
    first = json.loads(run(["ingest", str(faq_dir), "--json"], env, tmp_path).stdout)
    again = json.loads(run(["ingest", str(faq_dir), "--json"], env, tmp_path).stdout)
    assert first["chunks_added"] > 50 and (again["chunks_added"], again["chunks_skipped"]) == (0, first["chunks_added"])
    out = run(["search", "How is data stored in milvus?", "--json"], env, tmp_path)
    assert out.returncode == 0, out.stderr
    assert_search_result(json.loads(out.stdout), candidates=10, top_k=3)
    assert not (tmp_path / "data" / "milvus.db").exists()  # nothing went to a Lite file (data/ holds the texts)


def assert_search_result(r: dict, candidates: int, top_k: int) -> None:
    assert set(r) == {"question", "dense", "reranked", "candidates", "timings", "sources"}
    assert set(r["timings"]) == {"embed_s", "search_s", "rerank_s"}
    assert len(r["dense"]) == top_k and len(r["reranked"]) == top_k and len(r["candidates"]) == candidates
    assert all(set(h) == HIT_KEYS for h in r["candidates"] + r["reranked"])
    assert [h["dense_rank"] for h in r["candidates"]] == list(range(1, candidates + 1))
    assert [h["rerank_rank"] for h in r["reranked"]] == list(range(1, top_k + 1))
    assert r["dense"] == r["candidates"][:top_k]


def test_a_failing_command_prints_one_line_without_traceback(env, tmp_path: Path, faq_dir: Path) -> None:
    proc = run(["ingest", str(faq_dir)], {**env, "RAG_EMBEDDING_MODEL": str(tmp_path / "nope")}, tmp_path)
    assert_one_line_error(proc, "RAG_EMBEDDING_MODEL", "local folder")


@pytest.mark.parametrize(
    "args,environ,needles",
    [
        (["ingest", "{faq}"], {"RAG_EMBEDDING_MODEL": "no-org/no-model"}, ["RAG_EMBEDDING_MODEL", "local folder"]),
        (["search", "hello"], {"RAG_MILVUS_URI": "http://127.0.0.1:1"}, ["RAG_MILVUS_URI"]),
        (["search", "hello"], {"RAG_COLLECTION": "never_filled"}, ["rag ingest"]),
        (["search", "  "], {}, ["question is empty"]),
        (["ingest", "{empty}"], {}, ["No usable document"]),
        (["search", "x"], {"RAG_TOP_K": "many"}, ["RAG_TOP_K"]),
    ],
)
def test_errors_are_one_clear_line(args, environ, needles, env, tmp_path: Path, faq_dir: Path, capsys,
                                   monkeypatch) -> None:
    from rag.cli import main

    (tmp_path / "empty").mkdir()
    run_in = {**env, **environ}
    monkeypatch.chdir(tmp_path)
    for key, value in run_in.items():
        if key.startswith("RAG_"):
            monkeypatch.setenv(key, value)
    code = main([a.replace("{empty}", str(tmp_path / "empty")).replace("{faq}", str(faq_dir)) for a in args])
    err = capsys.readouterr().err
    assert_one_line_error(subprocess.CompletedProcess(args, code, "", err), *needles)


def test_ingest_a_folder_with_one_file_of_each_format(env, tmp_path: Path) -> None:
    from test_convert import bad_files, good_files

    good = good_files(tmp_path / "docs")
    bad = bad_files(tmp_path / "docs", good["docx"])
    proc = run(["ingest", str(tmp_path / "docs"), "--json"], env, tmp_path)
    assert proc.returncode == 0, proc.stderr
    report = json.loads(proc.stdout)
    assert report["files"] == len(good) and report["chunks_added"] >= len(good) + 2  # + a 2nd page and slide
    assert {Path(s["path"]).name for s in report["skipped_files"]} == {p.name for p in bad.values()}
    for p in bad.values():  # each bad file named on stderr with its reason, one line each
        assert any(line.startswith(f"skipped {p}: ") for line in proc.stderr.splitlines())
    out = run(["search", "object storage segments", "--candidates", "20", "--top-k", "20", "--json"], env, tmp_path)
    sources = {Path(h["source"]).name for h in json.loads(out.stdout)["candidates"]}
    assert {"report.pdf#page=1", "report.pdf#page=2", "deck.pptx#slide=2", "notes.docx", "book.epub"} <= sources
