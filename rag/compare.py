"""Two retrieval setups, one question: ``compare`` runs both through the same pipeline and models and reuses what
they share.

A setup (``rag.types.Setup``) is read from a mapping of the keys ``stage``, ``candidates``, ``top_k``, ``rerank``,
``query_instruction``, ``rerank_instruction`` and ``sources``; a key left out takes the settings' value
(``setup``). ``run`` is one setup: the first stage (``Pipeline.first_stage``), then the reranker when it is on
(``Pipeline.rerank``), the same calls ``rag search`` makes. B reuses A's first stage when the two differ only after
it (top-k, reranking, the rerank instruction), and A's reranking as well when they differ only in top-k, so the
comparison shows what the setups change and nothing of the noise of computing a stage twice.

Leaves out: formatting (``rag.render``, ``rag.cli``, ``rag.ui_compare``) and the LLM (a comparison answers nothing).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any

from rag.errors import SettingsError
from rag.pipeline import FIRST_STAGES, Pipeline
from rag.settings import Settings
from rag.types import SETUP_KEYS, Comparison, Retrieval, Setup

_ON = {"on": True, "true": True, "yes": True, "1": True, "off": False, "false": False, "no": False, "0": False}


def setup(settings: Settings, values: Mapping[str, Any] | None = None) -> Setup:
    """A setup from ``values`` (strings, as the command line gives them, or JSON values), the settings' values for
    the keys left out. Unknown keys and bad values are refused with what to give instead."""
    values = dict(values or {})
    unknown = sorted(set(values) - set(SETUP_KEYS))
    if unknown:
        raise SettingsError(f"Unknown setup key(s) {', '.join(unknown)}: a setup takes {', '.join(SETUP_KEYS)}.")
    stage = str(values.get("stage") or ("hybrid" if settings.hybrid else "dense")).strip()
    if stage not in FIRST_STAGES:
        raise SettingsError(f"stage={stage!r} is not one of {', '.join(FIRST_STAGES)}.")
    numbers = {}
    for key, default, high in (("candidates", settings.candidates, 1000), ("top_k", settings.top_k, 100)):
        raw = values.get(key)
        try:
            numbers[key] = default if raw in (None, "") else int(raw)
        except (TypeError, ValueError):
            raise SettingsError(f"{key}={raw!r} is not a whole number.") from None
        if not 1 <= numbers[key] <= high:
            raise SettingsError(f"{key}={numbers[key]} must be between 1 and {high}.")
    rerank = values.get("rerank", True)
    if not isinstance(rerank, bool):
        if str(rerank).strip().lower() not in _ON:
            raise SettingsError(f"rerank={rerank!r} must be on or off.")
        rerank = _ON[str(rerank).strip().lower()]
    sources = values.get("sources") or ()
    if isinstance(sources, str):
        sources = (sources,)
    return Setup(stage, numbers["candidates"], numbers["top_k"], rerank,
                 str(values.get("query_instruction") or settings.query_instruction),
                 str(values.get("rerank_instruction") or settings.rerank_instruction),
                 tuple(dict.fromkeys(str(s) for s in sources)))


def run(pipeline: Pipeline, question: str, s: Setup, first: Retrieval | None = None) -> Retrieval:
    """One setup: its first stage (or ``first``, when that was computed already), then reranking if it is on."""
    if first is None:
        first = pipeline.first_stage(question, s.stage, s.candidates, s.query_instruction, s.top_k, s.sources)
    first = dataclasses.replace(first, top_k=s.top_k)
    return pipeline.rerank(first, s.top_k, s.rerank_instruction) if s.rerank else first


def compare(pipeline: Pipeline, question: str, a: Setup, b: Setup) -> Comparison:
    """``question`` through setup A and setup B (see the module's docstring for what B reuses)."""
    first_a = pipeline.first_stage(question, a.stage, a.candidates, a.query_instruction, a.top_k, a.sources)
    ranked_a = run(pipeline, question, a, first_a)
    shared: tuple[str, ...] = ()
    if _first_key(a) == _first_key(b):
        shared = ("first stage",)
        if a.rerank and b.rerank and a.rerank_instruction == b.rerank_instruction:
            shared += ("rerank",)
            ranked_b = dataclasses.replace(ranked_a, top_k=b.top_k)
        else:
            ranked_b = run(pipeline, question, b, first_a)
    else:
        ranked_b = run(pipeline, question, b)
    return Comparison(ranked_a.question, ranked_a, ranked_b, a, b, shared)


def _first_key(s: Setup) -> tuple[Any, ...]:
    return s.stage, s.candidates, s.query_instruction, s.sources
