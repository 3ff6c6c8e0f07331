"""The benchmark's pieces, without timing anything: FLOP counts, the tutorial's code, the report's forms."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from test_reranker import DOCS, QUERY, card_reference
from transformers import AutoModelForCausalLM, AutoTokenizer, Qwen3Config

from rag import bench
from rag.random_models import QWEN3_0_6B


def test_forward_flops_counts_linear_layers_and_causal_attention() -> None:
    config = Qwen3Config(**QWEN3_0_6B)
    # per layer: q 1024x2048, k and v 1024x1024, o 2048x1024, MLP 3 x 1024x3072 = 15,728,640 weights
    per_token_linear = 2 * 15_728_640 * 28
    attention_1 = 2 * 2 * 16 * 128 * 1 * 28  # one token attends to itself
    assert bench.forward_flops(config, 1) == per_token_linear + attention_1
    assert bench.forward_flops(config, 350) == pytest.approx(350 * per_token_linear + 2 * 2 * 2048 * 350 * 351 / 2 * 28)


def test_cached_and_last_position_work_is_counted_exactly() -> None:
    config = Qwen3Config(**QWEN3_0_6B)
    flops = bench.forward_flops
    # a pass split at any point costs what the whole pass does: the second part attends to the first's cache
    assert flops(config, 50) + flops(config, 300, past=50) == pytest.approx(flops(config, 350))
    # the last position only: the last layer keeps K and V for every token, the rest for one
    rest = 1024 * 2048 * 2 + 3 * 1024 * 3072  # weights of q, o and the MLP
    attention = 2 * 2 * 16 * 128 * (350 * 351 / 2 - 350)  # the query rows the last layer no longer computes
    assert flops(config, 350, last_only=True) == pytest.approx(flops(config, 350) - 2 * rest * 349 - attention)
    assert flops(config, 1, last_only=True) == flops(config, 1)
    prompts = [list(range(20)) + [100 + i] * (5 + i) for i in range(3)]  # 20 shared tokens, then 5, 6 and 7 more
    assert bench.prefix_cached_flops(config, prompts) == pytest.approx(
        flops(config, 20, last_only=True) + sum(flops(config, 5 + i, past=20, last_only=True) for i in range(3)))
    few = [[1, 2, 3, 9], [1, 2, 3, 8]]  # under 8 shared tokens: each prompt runs whole, as the reranker does
    assert bench.prefix_cached_flops(config, few) == 2 * flops(config, 4, last_only=True)


def test_the_tutorials_rerank_code_is_the_model_cards(tiny_models) -> None:
    path = str(tiny_models[1])
    tokenizer = AutoTokenizer.from_pretrained(path, padding_side="left")
    model = AutoModelForCausalLM.from_pretrained(path, dtype=torch.float32).eval()
    assert bench.tutorial_rerank(model, tokenizer, QUERY, DOCS) == pytest.approx(card_reference(path, QUERY, DOCS),
                                                                                 abs=1e-6)


def test_tutorial_chunks_are_its_split(faq_dir: Path) -> None:
    assert len(bench.tutorial_chunks(faq_dir)) == 72  # as the tutorial (and PROVENANCE.txt) count them


def test_table_shows_every_figure() -> None:
    result = {
        "machine": {"cpu": "X", "threads": 2, "fp32_gflops": 100.0, "bf16_gflops": 1.0, "native_bf16": False},
        "rerank": {"candidates": 10, "tokens": 3500, "tutorial_s": 60.0, "project_s": 30.0, "floor_s": 25.0,
                   "max_abs_diff": 1e-6, "top3_same": True},
        "ingest": {"chunks": 62, "tutorial_chunks": 72, "tokens": 9000, "tutorial_s": 20.0, "project_s": 10.0,
                   "floor_s": 8.0},
        "dense_top3_s": 0.12, "peak_rss_mb": 3000, "dtype": "float32",
        "int8": {"rerank_s": 12.0, "max_abs_diff": 0.01, "top3_same": False},
    }
    text = bench.table(result)
    assert "2.0x" in text and "1.20x" in text and "1.25x" in text and "0.120 s" in text and "3000 MB" in text
    assert "int8 (opt-in): rerank 12.00 s" in text


def test_scale_runs_each_index_on_one_insert(tmp_path) -> None:
    from rag.bench import scale, scale_table

    rows = scale(str(tmp_path / "s.db"), [300], dim=16, queries=5, log=lambda m: None, indexes=("HNSW",))
    assert [(r["vectors"], r["index"]) for r in rows] == [(300, "FLAT"), (300, "HNSW")]
    assert rows[0]["recall@10"] == 1.0 and 0 <= rows[1]["recall@10"] <= 1 and rows[0]["insert_s"] == rows[1]["insert_s"]
    assert "HNSW" in scale_table(rows)


def test_engines_table_shows_each_engine_against_today_and_its_floor() -> None:
    row = {"engine": "onnx", "precision": "fp32", "rerank_s": 10.0, "first_score_s": 1.2, "vs_tutorial": 5.0,
           "vs_today": 1.75, "x_floor": 1.1, "max_abs_diff": 3e-7, "top3_same": True, "dense_top3_s": 0.25}
    result = {"floors": {"fp32": {"library": "onnxruntime", "gflops": 120.0, "rerank_floor_s": 9.1}},
              "engines": {"onnx_fp32": row, "torch_fp32": {**row, "vs_today": 1.0, "rerank_s": 17.5}},
              "peak_rss_mb_by_engine": {"onnx_int8": 2100}}
    text = bench.engines_table(result)
    assert "onnx_fp32" in text and "1.75x" in text and "1.10x" in text and "3.0e-07" in text
    assert "fp32 120.0 GFLOP/s (onnxruntime" in text and "onnx_int8 2100 MB" in text


def test_every_engine_mode_names_valid_settings(make_settings) -> None:
    for name, mode in bench.ENGINE_MODES.items():
        assert make_settings(**mode).engine in ("torch", "onnx", "llama")
        assert bench.precision(mode) in name or mode["quantize"] in name  # llama_q8_0: floored at the int8 rate


def test_the_best_gemm_is_picked_per_precision() -> None:
    from rag.floors import best

    rates = {"fp32": {"torch": 90.0, "numpy": 80.0, "onnxruntime": 120.0}, "int8": {"torch": 150.0, "onnxruntime": 300}}
    assert best(rates) == {"fp32": ("onnxruntime", 120.0), "int8": ("onnxruntime", 300)}
