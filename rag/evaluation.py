"""Retrieval quality you can measure: IR metrics (pure functions) and a runner over the app's own pipeline.

Metrics as BEIR and MTEB compute them (pytrec_eval): nDCG@10 with linear gains, Recall@10, Recall@100 and MRR@10,
each the mean over the questions. The runner asks ``Pipeline.first_stage`` and ``Pipeline.rerank`` for every
question, the same calls the app and ``rag search`` make, so it measures what they return:

- ``dense``, ``bm25``, ``hybrid``: the first stage alone, ``DEPTH`` (100) deep;
- ``rerank``: the app's two stages: the first stage that RAG_HYBRID picks, its top N (RAG_CANDIDATES) reordered by
  the reranker, then the rest of the first stage's 100 in their order (so Recall@100 is the first stage's).

A BEIR corpus is indexed into its own collection, named from the corpus hash, the embedding model and dimension:
a second run over the same corpus and model embeds nothing.

Leaves out: reading evaluation sets (``rag.evalsets``), HTML (``rag.render``), significance tests.
"""

from __future__ import annotations

import dataclasses
import hashlib
import math
import re
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

from rag.errors import EvaluationSetError
from rag.evalsets import EvalSet
from rag.pipeline import Pipeline
from rag.types import Hit

METRICS = ("ndcg@10", "recall@10", "recall@100", "mrr@10")
MODES = ("dense", "bm25", "hybrid", "rerank")
DEPTH = 100  # first-stage candidates per question: enough for Recall@100

Ranking = Sequence[str]  # document keys, best first
Relevant = Mapping[str, int]  # document key -> relevance grade; > 0 is relevant
StageProgress = Callable[[str, int, int], None]  # (stage: "embedding" or "questions", done, total)


def ndcg_at_k(ranking: Ranking, relevant: Relevant, k: int = 10) -> float:
    """Normalised discounted cumulative gain: sum of grade / log2(rank + 1) over the top k, over the ideal's."""
    dcg = sum(max(relevant.get(d, 0), 0) / math.log2(i + 2) for i, d in enumerate(ranking[:k]))
    ideal = sorted((g for g in relevant.values() if g > 0), reverse=True)[:k]
    idcg = sum(g / math.log2(i + 2) for i, g in enumerate(ideal))
    return dcg / idcg if idcg else 0.0


def precision_at_k(ranking: Ranking, relevant: Relevant, k: int) -> float:
    """The share of the first ``k`` places that hold a relevant document (a ranking shorter than k counts the
    empty places as not relevant)."""
    return sum(1 for d in ranking[:k] if relevant.get(d, 0) > 0) / k if k else 0.0


def question_scores(evalset: EvalSet, query_id: str, hits: Sequence[Hit], k: int) -> dict[str, float | int | None]:
    """What the Compare view shows beside a ranking (``hits``, best first) for one marked question: Precision@k,
    nDCG@k and the rank of the first relevant passage (None: none of ``hits``), the same functions as ``evaluate``
    over the same keys."""
    ranking, relevant = evalset.ranking(query_id, tuple(hits)), evalset.qrels.get(query_id, {})
    return {f"precision@{k}": precision_at_k(ranking, relevant, k), f"ndcg@{k}": ndcg_at_k(ranking, relevant, k),
            "first_relevant": first_relevant(ranking, relevant)}


def recall_at_k(ranking: Ranking, relevant: Relevant, k: int) -> float:
    """The share of the relevant documents found in the top k."""
    wanted = {d for d, g in relevant.items() if g > 0}
    return len(wanted.intersection(ranking[:k])) / len(wanted) if wanted else 0.0


def first_relevant(ranking: Ranking, relevant: Relevant) -> int | None:
    """The rank (from 1) of the first relevant document, or None when none is in the ranking."""
    return next((i for i, d in enumerate(ranking, 1) if relevant.get(d, 0) > 0), None)


def mrr_at_k(ranking: Ranking, relevant: Relevant, k: int = 10) -> float:
    """1 / the rank of the first relevant document, or 0 when it is not in the top k."""
    rank = first_relevant(ranking[:k], relevant)
    return 1.0 / rank if rank else 0.0


def scores(ranking: Ranking, relevant: Relevant) -> dict[str, float]:
    """The four metrics of one question."""
    return {"ndcg@10": ndcg_at_k(ranking, relevant, 10), "recall@10": recall_at_k(ranking, relevant, 10),
            "recall@100": recall_at_k(ranking, relevant, 100), "mrr@10": mrr_at_k(ranking, relevant, 10)}


def mean_scores(run: Mapping[str, Ranking], qrels: Mapping[str, Relevant]) -> dict[str, float]:
    """The four metrics averaged over every question in ``qrels`` (a question missing from ``run`` scores 0)."""
    per_query = [scores(run.get(q, []), rel) for q, rel in qrels.items()]
    return {m: sum(s[m] for s in per_query) / len(per_query) if per_query else 0.0 for m in METRICS}


@dataclass(frozen=True)
class Change:
    """A question whose first relevant document moved with reranking (None: not among the candidates)."""

    question: str
    before: int | None  # rank in the first stage
    after: int | None  # rank after reranking

    @property
    def helped(self) -> bool:
        return (self.after or math.inf) < (self.before or math.inf)


@dataclass(frozen=True)
class EvalReport:
    name: str
    metrics: dict[str, dict[str, float]]  # mode -> metric -> mean over the questions
    runs: dict[str, dict[str, list[str]]]  # mode -> query id -> document keys, best first
    qrels: dict[str, dict[str, int]]
    changes: tuple[Change, ...]  # every question whose first relevant rank moved with reranking
    embedded: int  # documents embedded by this run (0 when the collection had them all)
    seconds: float
    rerank_over: str = ""  # the first stage the reranker reordered, when "rerank" was run
    rerank_depth: int = 0  # how many of its candidates it reordered

    @property
    def helped(self) -> tuple[Change, ...]:
        return tuple(c for c in self.changes if c.helped)

    @property
    def hurt(self) -> tuple[Change, ...]:
        return tuple(c for c in self.changes if not c.helped)

    def to_dict(self) -> dict[str, dict[str, float]]:
        """``{mode: {metric: value}}``, what ``rag eval --json`` prints."""
        return {mode: {m: round(v, 4) for m, v in values.items()} for mode, values in self.metrics.items()}


def collection_for(pipeline: Pipeline, evalset: EvalSet) -> str:
    """The collection a BEIR corpus goes into: one per corpus, embedding model, dimension and BM25 analyzer (a
    ``standard`` one keeps the name it had before analyzers were a setting)."""
    key = f"{evalset.corpus_hash}\n{pipeline.model_id}\n{pipeline.embedder.dimension}"
    if pipeline.store.analyzer != "standard":
        key += f"\n{pipeline.store.analyzer}"
    name = re.sub(r"[^A-Za-z0-9_]", "_", evalset.name)[:40]
    return f"eval_{name}_{hashlib.sha256(key.encode()).hexdigest()[:16]}"


def parse_modes(text: str | Sequence[str]) -> tuple[str, ...]:
    """``"dense,hybrid"`` -> ("dense", "hybrid"), refusing unknown names."""
    modes = tuple(m.strip() for m in (text.split(",") if isinstance(text, str) else text) if m.strip())
    unknown = [m for m in modes if m not in MODES]
    if unknown or not modes:
        raise EvaluationSetError(f"Unknown mode(s) {', '.join(unknown) or '(none given)'}: choose from "
                                 f"{','.join(MODES)}.")
    return tuple(dict.fromkeys(modes))


def evaluate(
    pipeline: Pipeline, evalset: EvalSet, modes: Sequence[str] = MODES, candidates: int | None = None,
    progress: StageProgress | None = None,
) -> EvalReport:
    """Run every question of ``evalset`` through ``pipeline`` in each mode and score the rankings.

    A BEIR corpus is indexed first, into its own collection over the same models and Milvus connection; a CSV set
    is asked of the pipeline's collection as it is. ``candidates`` is how many the reranker reorders
    (default RAG_CANDIDATES, as in the app).
    """
    start = time.perf_counter()
    modes = parse_modes(modes)
    embedded = 0
    if evalset.corpus:
        pipeline = pipeline.with_collection(collection_for(pipeline, evalset))
        embedded = pipeline.index(evalset.corpus, (lambda d, t: progress("embedding", d, t)) if progress else None)
    over = "hybrid" if pipeline.settings.hybrid else "dense"
    depth = candidates or pipeline.settings.candidates
    stages = [m for m in modes if m != "rerank"]
    if "rerank" in modes and over not in stages:
        stages.append(over)
    runs: dict[str, dict[str, list[str]]] = {m: {} for m in modes}
    changes = []
    for i, (qid, question) in enumerate(evalset.queries.items(), 1):
        found = {m: pipeline.first_stage(question, m, DEPTH) for m in stages}
        for m in stages:
            if m in runs:
                runs[m][qid] = evalset.ranking(qid, found[m].candidates)
        if "rerank" in modes:
            first = found[over]
            ranked = pipeline.rerank(dataclasses.replace(first, candidates=first.candidates[:depth]))
            runs["rerank"][qid] = evalset.ranking(qid, ranked.reranked_all + first.candidates[depth:])
            before = first_relevant(evalset.ranking(qid, first.candidates), evalset.qrels[qid])
            after = first_relevant(runs["rerank"][qid], evalset.qrels[qid])
            if before != after:
                changes.append(Change(question, before, after))
        if progress:
            progress("questions", i, len(evalset.queries))
    metrics = {m: mean_scores(runs[m], evalset.qrels) for m in modes}
    return EvalReport(
        evalset.name, metrics, runs, evalset.qrels, tuple(changes), embedded, time.perf_counter() - start,
        over if "rerank" in modes else "", depth if "rerank" in modes else 0,
    )
