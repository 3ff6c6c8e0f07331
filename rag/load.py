"""Many users at once against a running app: each asks its own question through ``gradio_client`` at the same time.

``run_users`` opens one client (one Gradio session) per user, starts every ``/ask`` together, and times each
from start to full answer. Afterwards it asks ``/search`` for each question alone, one at a time, and compares the
reranked passages with the sources that user got: a difference is cross-talk between sessions (or a
non-deterministic ranking), and is reported. ``python -m rag load URL`` prints the report.

Leaves out: starting the app (``python app.py``) and the questions' answers' quality.
"""

from __future__ import annotations

import csv
import math
import threading
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from rag.errors import RAGError
from rag.settings import ROOT

QUESTIONS = ROOT / "config" / "eval" / "milvus_faq.csv"  # distinct questions about the default corpus


@dataclass(frozen=True)
class UserResult:
    question: str
    seconds: float  # from the common start to the full answer
    answer: str
    sources: tuple[str, ...]  # chunk ids of the sources, in order
    error: str | None  # the request failed, or the answer ended in an error line
    alone: tuple[str, ...] = ()  # the reranked ids /search gives for the same question asked alone


@dataclass(frozen=True)
class LoadReport:
    users: int
    wall_s: float
    p50_s: float
    p95_s: float
    max_s: float
    failed: int
    cross_talk: int  # users whose sources differ from the same question asked alone
    results: tuple[UserResult, ...]

    def to_dict(self) -> dict[str, Any]:
        return {k: v for k, v in asdict(self).items() if k != "results"} | {
            "results": [asdict(r) for r in self.results]}


def percentile(values: Sequence[float], q: float) -> float:
    """Nearest-rank percentile: the smallest value with at least q% of the values at or below it."""
    ordered = sorted(values)
    return ordered[max(0, math.ceil(q / 100 * len(ordered)) - 1)]


def default_questions(n: int) -> list[str]:
    """``n`` different English questions from the shipped FAQ evaluation set."""
    with open(QUESTIONS, newline="", encoding="utf-8") as f:
        rows = [r["question"] for r in csv.DictReader(f) if r.get("lang", "en") == "en"]
    if n > len(rows):
        raise RAGError(f"The shipped set has {len(rows)} questions; pass --questions FILE for {n} users.")
    return rows[:n]


def run_users(url: str | Sequence[str], questions: Sequence[str], auth: tuple[str, str] | None = None,
              check: bool = True) -> LoadReport:
    """Ask every question at once, one user (client session) each; then, with ``check``, each alone. Several URLs
    (replicas of one app) share the users in turn, and each question alone is asked of the first."""
    from gradio_client import Client

    urls = [url] if isinstance(url, str) else list(url)
    url = urls[0]
    clients = [Client(urls[i % len(urls)], auth=auth, verbose=False) for i in range(len(questions))]
    results: list[UserResult | None] = [None] * len(questions)
    gate = threading.Barrier(len(questions) + 1)
    start = 0.0

    def user(i: int) -> None:
        gate.wait()
        try:
            reply = clients[i].predict(questions[i], api_name="/ask")
            error = reply.get("error")
            sources = tuple(s["id"] for s in reply["sources"])
            answer = reply["answer"]
        except Exception as exc:  # a failed request is a result to report, not a crash of the run
            error, sources, answer = f"{type(exc).__name__}: {exc}", (), ""
        results[i] = UserResult(questions[i], time.perf_counter() - start, answer, sources, error)

    threads = [threading.Thread(target=user, args=(i,), daemon=True) for i in range(len(questions))]
    for t in threads:
        t.start()
    start = time.perf_counter()
    gate.wait()
    for t in threads:
        t.join()
    wall = time.perf_counter() - start
    done = [r for r in results if r is not None]
    if check:
        solo = Client(url, auth=auth, verbose=False)
        done = [UserResult(**{**asdict(r), "alone": tuple(
            h["id"] for h in solo.predict(r.question, api_name="/search")["reranked"])}) for r in done]
    seconds = [r.seconds for r in done]
    return LoadReport(
        users=len(done), wall_s=wall, p50_s=percentile(seconds, 50), p95_s=percentile(seconds, 95),
        max_s=max(seconds), failed=sum(r.error is not None for r in done),
        cross_talk=sum(check and r.error is None and r.sources != r.alone for r in done), results=tuple(done),
    )


def table(report: LoadReport) -> str:
    lines = [f"{report.users} users at once: p50 {report.p50_s:.1f} s, p95 {report.p95_s:.1f} s, "
             f"slowest {report.max_s:.1f} s, all done in {report.wall_s:.1f} s; {report.failed} failed, "
             f"{report.cross_talk} with sources that differ from the question asked alone."]
    lines += [f"{r.seconds:7.1f} s  {'FAILED ' + r.error if r.error else 'ok'}  {r.question}" for r in
              sorted(report.results, key=lambda r: r.seconds)]
    return "\n".join(lines)


def read_questions(path: str | Path | None, users: int) -> list[str]:
    if path is None:
        return default_questions(users)
    lines = [q.strip() for q in Path(path).read_text(encoding="utf-8").splitlines() if q.strip()]
    if len(lines) < users:
        raise RAGError(f"{path} has {len(lines)} questions; give at least {users}, one per line.")
    return lines[:users]
