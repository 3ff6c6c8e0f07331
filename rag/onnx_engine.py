"""ONNX Runtime as the engine for both models on a CPU: the decoder exported once, cached on disk, run by ORT.

What is exported is the base model without its LM head, written out below (``Decoder``) with the KV cache as plain
tensors so that it traces to one graph::

    inputs:  input_ids (batch, new) int64, attention_mask (batch, past + new) int64,
             past_key_{i} / past_value_{i} (batch, kv_heads, past, head_dim) float32 for each layer i
    outputs: last_hidden (batch, hidden): the final-normed state of the last position only,
             present_key_{i} / present_value_{i} (batch, kv_heads, past + new, head_dim)

Since only the last position leaves the graph, the last layer computes K and V for every position (the cache
needs them) but its query, attention, ``o_proj`` and MLP for the last position only: the same numbers, one layer's
worth (about 1/28 at Qwen3-0.6B) less work.

Positions run from ``past`` on, as in transformers without ``position_ids`` (left padding included), so the
outputs are those of the PyTorch model. The reranker runs the shared prompt prefix once (empty past) and each
passage on its cache, and applies only the "yes"/"no" rows of the head, in float32; the embedder runs left-padded,
length-sorted batches with an empty past and takes the last token's state (the Qwen3-Embedding recipe).

The export is cached under ``.rag-onnx/`` in the model's folder (or ``RAG_ENGINE_CACHE``, or ``data/engines`` if
the model's folder is read-only), in a folder keyed by the model's files, this exporter's version, onnxruntime's
version and the quantisation: a second start loads it without exporting. ``int8`` quantises the weight matmuls
dynamically (``quantize_dynamic``, signed int8 weights), except those named in ``INT8_KEEP_FLOAT``.

Supports decoders of the Qwen3 and Llama families with the default RoPE (``supported``); anything else stays on
PyTorch (``rag.engines`` decides). Leaves out: the engine choice (``rag.engines``), GPUs.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from rag.embedding import TokenizedEmbedder
from rag.errors import model_load_error
from rag.reranker import DEFAULT_INSTRUCTION, YesNoReranker, p_yes

log = logging.getLogger(__name__)

EXPORTER_VERSION = 2  # bump when the exported graph changes: old cache entries are then ignored
OPSET = 17
FAMILIES = ("qwen3", "llama", "qwen2")
PROJECTIONS = ("q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj")  # per layer, in order
# The weight matmuls int8 leaves in float32, as "layer.projection" ("*" for any; a negative layer counts from the
# end): the ones where a real model's outlier activations hurt agreement most. On SmolLM2's real weights, every
# down_proj (its input is the MLP's product, where the outliers are) took max |dP(yes)| from 0.21-0.32 to 0.06 on
# the first two FAQ questions; keeping the last layer, or the first and last, did little (README, "int8 agreement").
INT8_KEEP_FLOAT: tuple[str, ...] = ("*.down_proj",)


# -- the graph ----------------------------------------------------------------------------------------------------
def _rope(x: Any, cos: Any, sin: Any) -> Any:
    """Rotary embedding as transformers applies it (``rotate_half``): x * cos + rotate_half(x) * sin."""
    import torch

    half = x.shape[-1] // 2
    return x * cos + torch.cat((-x[..., half:], x[..., :half]), dim=-1) * sin


def _decoder_class() -> type:
    import torch

    class Decoder(torch.nn.Module):
        """``base``'s forward (a Qwen3Model or LlamaModel) with the KV cache as tensors; see the module docstring."""

        def __init__(self, base: Any) -> None:
            super().__init__()
            self.base = base
            config = base.config
            self.heads, self.kv_heads = config.num_attention_heads, config.num_key_value_heads
            self.head_dim = getattr(config, "head_dim", None) or config.hidden_size // self.heads

        def forward(self, input_ids: Any, attention_mask: Any, *past: Any) -> tuple[Any, ...]:
            b, n = input_ids.shape
            kv, groups, hd = self.kv_heads, self.heads // self.kv_heads, self.head_dim
            start = past[0].shape[2]
            positions = (torch.arange(n) + start).float()  # (n,)
            rotary = self.base.rotary_emb
            freqs = positions[:, None] * rotary.inv_freq[None, :].float()
            emb = torch.cat((freqs, freqs), dim=-1)
            cos = (emb.cos() * rotary.attention_scaling)[None, None]  # (1, 1, n, hd)
            sin = (emb.sin() * rotary.attention_scaling)[None, None]
            total = attention_mask.shape[1]
            allowed = (torch.arange(total)[None, :] <= (torch.arange(n) + start)[:, None])[None]  # (1, n, total)
            allowed = allowed & attention_mask[:, None, :].bool()  # (b, n, total)
            mask = torch.where(allowed, 0.0, torch.finfo(torch.float32).min)[:, None, None]  # (b, 1, 1, n, total)
            h = self.base.embed_tokens(input_ids)
            presents: list[Any] = []
            last = len(self.base.layers) - 1
            for i, layer in enumerate(self.base.layers):
                attn = layer.self_attn
                x = layer.input_layernorm(h)
                k = attn.k_proj(x).view(b, n, kv, hd)
                if hasattr(attn, "k_norm"):  # Qwen3: RMSNorm over each head
                    k = attn.k_norm(k)
                k = torch.cat([past[2 * i], _rope(k.transpose(1, 2), cos, sin)], dim=2)  # (b, kv, total, hd)
                v = torch.cat([past[2 * i + 1], attn.v_proj(x).view(b, n, kv, hd).transpose(1, 2)], dim=2)
                presents += [k, v]
                if i == last:  # only the last position leaves the graph: the rest of this layer needs only its row
                    x, h, mask, cos, sin = x[:, -1:], h[:, -1:], mask[..., -1:, :], cos[..., -1:, :], sin[..., -1:, :]
                m = x.shape[1]  # query rows: n, or 1 in the last layer
                q = attn.q_proj(x).view(b, m, self.heads, hd)
                if hasattr(attn, "q_norm"):
                    q = attn.q_norm(q)
                q = _rope(q.transpose(1, 2), cos, sin)  # (b, heads, m, hd)
                # grouped-query attention without copying K and V: heads are kv-major, as transformers' repeat_kv
                scores = (q.reshape(b, kv, groups * m, hd) @ k.transpose(2, 3)) * attn.scaling
                probs = torch.softmax(scores.view(b, kv, groups, m, -1) + mask, dim=-1)
                out = (probs.view(b, kv, groups * m, -1) @ v).view(b, self.heads, m, hd)
                h = h + attn.o_proj(out.transpose(1, 2).reshape(b, m, self.heads * hd))
                h = h + layer.mlp(layer.post_attention_layernorm(h))
            return (self.base.norm(h[:, -1]), *presents)

    return Decoder


def supported(folder: Path, kind: str) -> bool:
    """True when ``folder`` holds a decoder this exporter writes out exactly (family, default RoPE, no sliding
    window, no biases) and, for an "embedder", a sentence-transformers model with last-token pooling."""
    try:
        config = json.loads((folder / "config.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False
    rope = config.get("rope_parameters") or config.get("rope_scaling") or {}
    if config.get("model_type") not in FAMILIES or rope.get("rope_type", rope.get("type", "default")) != "default":
        return False
    if config.get("use_sliding_window") or config.get("attention_bias") or config.get("mlp_bias"):
        return False
    if kind == "embedder":  # a sentence-transformers model: last-token pooling, then normalise
        if not (folder / "modules.json").exists():
            return False
        modules = json.loads((folder / "modules.json").read_text(encoding="utf-8"))
        pooling = [m for m in modules if m.get("type", "").endswith("Pooling")]
        if len(pooling) != 1 or len(modules) != 3 or not modules[-1].get("type", "").endswith("Normalize"):
            return False
        text = (folder / pooling[0]["path"] / "config.json").read_text(encoding="utf-8")
        pool = json.loads(text)
        if not (pool.get("pooling_mode") == "lasttoken" or pool.get("pooling_mode_lasttoken")):
            return False
    return True


# -- the export cache ---------------------------------------------------------------------------------------------
def model_folder(model: str) -> Path:
    """The local folder of ``model``: the folder itself, or the hub snapshot (downloaded if needed)."""
    path = Path(model).expanduser()
    if path.is_dir():
        return path.resolve()
    from huggingface_hub import snapshot_download

    return Path(snapshot_download(model))


def cache_key(folder: Path, kind: str, quantize: str, keep: Sequence[str] = INT8_KEEP_FLOAT) -> str:
    """Changes with the model's files, this exporter, onnxruntime and the quantisation."""
    import onnxruntime

    digest = hashlib.sha256()
    digest.update(f"{EXPORTER_VERSION}|{OPSET}|{onnxruntime.__version__}|{kind}|{quantize}|{tuple(keep)}".encode())
    for f in sorted(folder.glob("*.json")) + sorted(folder.glob("*.safetensors")):
        stat = f.stat()
        digest.update(f"{f.name}|{stat.st_size}|{stat.st_mtime_ns}".encode())
    return f"{kind}-{quantize}-{digest.hexdigest()[:16]}"


def cache_root(folder: Path, setting: str = "", data_dir: str = "data") -> Path:
    """Where exports go: ``RAG_ENGINE_CACHE`` if set, else beside the model, else under ``data_dir``."""
    if setting:
        return Path(setting).expanduser()
    if os.access(folder, os.W_OK):
        return folder / ".rag-onnx"
    return Path(data_dir) / "engines" / hashlib.sha256(str(folder).encode()).hexdigest()[:12]


def folder_mb(path: Path) -> float:
    return sum(f.stat().st_size for f in path.rglob("*") if f.is_file()) / 1e6


def export(folder: Path, kind: str, quantize: str, root: Path, keep: Sequence[str] = INT8_KEEP_FLOAT) -> Path:
    """The cache entry of ``folder``'s model for ``kind`` ("reranker" or "embedder"): exported now if absent.

    An entry holds ``model.onnx`` (+ its weights file), ``meta.json`` and, for a reranker, ``head.npy``: the
    (2, hidden) float32 "no"/"yes" rows of the LM head. ``keep``: the matmuls int8 leaves in float32. It is
    written in a temporary folder and renamed into place, so a crashed export leaves nothing a later start loads.
    """
    keep = tuple(keep) if quantize == "int8" else ()
    entry = root / cache_key(folder, kind, quantize, keep)
    if (entry / "meta.json").exists():
        return entry
    root.mkdir(parents=True, exist_ok=True)
    work = root / f".{entry.name}.{os.getpid()}.tmp"
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir()
    start = time.perf_counter()
    try:
        if quantize == "int8":
            source = export(folder, kind, "none", root)
            _quantize(source / "model.onnx", work / "model.onnx", keep)
            for extra in ("head.npy", "meta.json"):
                if (source / extra).exists():
                    shutil.copy(source / extra, work / extra)
        else:
            meta = _export_float(folder, kind, work)
            (work / "meta.json").write_text(json.dumps(meta), encoding="utf-8")
        meta = json.loads((work / "meta.json").read_text(encoding="utf-8"))
        meta.update(export_s=round(time.perf_counter() - start, 1), disk_mb=round(folder_mb(work)), quantize=quantize,
                    keep_float=list(keep))
        (work / "meta.json").write_text(json.dumps(meta), encoding="utf-8")
        try:
            work.rename(entry)
        except OSError:  # another process got there first: use its entry
            shutil.rmtree(work, ignore_errors=True)
    except BaseException:
        shutil.rmtree(work, ignore_errors=True)
        raise
    log.warning("exported the %s %s (%s) to ONNX in %.0f s, %.0f MB on disk: %s", kind, folder.name, quantize,
                meta["export_s"], meta["disk_mb"], entry)
    return entry


def _export_float(folder: Path, kind: str, out: Path) -> dict[str, Any]:
    import torch
    from transformers import AutoModel, AutoModelForCausalLM

    meta: dict[str, Any] = {}
    with torch.inference_mode(False), torch.no_grad():
        if kind == "reranker":
            from transformers import AutoTokenizer

            full = AutoModelForCausalLM.from_pretrained(folder, dtype=torch.float32).eval()
            ids = AutoTokenizer.from_pretrained(folder).convert_tokens_to_ids(["no", "yes"])
            np.save(out / "head.npy", full.get_output_embeddings().weight[ids].detach().float().numpy())
            base = full.model
        else:
            from sentence_transformers import SentenceTransformer

            st = SentenceTransformer(str(folder), device="cpu", model_kwargs={"dtype": torch.float32})
            meta.update(prompts=dict(st.prompts or {}), max_seq_length=int(st.max_seq_length or 512))
            del st
            base = AutoModel.from_pretrained(folder, dtype=torch.float32).eval()
        config = base.config
        layers, kv = config.num_hidden_layers, config.num_key_value_heads
        hd = getattr(config, "head_dim", None) or config.hidden_size // config.num_attention_heads
        names = [f"past_{t}_{i}" for i in range(layers) for t in ("key", "value")]
        outputs = ["last_hidden"] + [n.replace("past", "present") for n in names]
        past = tuple(torch.zeros(1, kv, 3, hd) for _ in names)
        dynamic = {"input_ids": {0: "batch", 1: "new"}, "attention_mask": {0: "batch", 1: "total"},
                   "last_hidden": {0: "batch"}}
        dynamic.update({n: {0: "batch", 2: "past"} for n in names})
        dynamic.update({n: {0: "batch", 2: "total"} for n in outputs[1:]})
        torch.onnx.export(
            _decoder_class()(base).eval(), (torch.ones(1, 5, dtype=torch.long), torch.ones(1, 8, dtype=torch.long),
                                            *past),
            str(out / "model.onnx"), input_names=["input_ids", "attention_mask", *names], output_names=outputs,
            dynamic_axes=dynamic, opset_version=OPSET, dynamo=False, external_data=True,
        )
    meta.update(layers=layers, kv_heads=kv, head_dim=hd, hidden_size=config.hidden_size)
    _single_weights_file(out / "model.onnx")
    return meta


def _single_weights_file(path: Path) -> None:
    """Rewrite ``path`` with all its weights in one ``model.onnx.data`` (the exporter may write one per tensor)."""
    import onnx

    model = onnx.load(str(path))
    for f in path.parent.iterdir():
        if f.name not in ("model.onnx", "head.npy", "meta.json"):
            f.unlink()
    onnx.save_model(model, str(path), save_as_external_data=True, all_tensors_to_one_file=True,
                    location="model.onnx.data", size_threshold=1024)


def weight_matmuls(graph: Any) -> list[tuple[str, int, str]]:
    """(node name, layer, projection) of each matmul by a weight, in graph order (layer by layer)."""
    weights = {init.name for init in graph.initializer}
    nodes = [n.name for n in graph.node if n.op_type == "MatMul" and n.input[1] in weights]
    return [(name, i // len(PROJECTIONS), PROJECTIONS[i % len(PROJECTIONS)]) for i, name in enumerate(nodes)]


def kept_float(graph: Any, keep: Sequence[str]) -> list[str]:
    """The node names ``keep`` ("layer.projection" patterns, see ``INT8_KEEP_FLOAT``) selects."""
    matmuls = weight_matmuls(graph)
    layers = max((layer for _, layer, _ in matmuls), default=-1) + 1
    chosen = []
    for pattern in keep:
        layer, _, proj = pattern.partition(".")
        for name, i, p in matmuls:
            if (layer == "*" or int(layer) % layers == i) and proj in ("*", p):
                chosen.append(name)
    return chosen


def _quantize(source: Path, target: Path, keep: Sequence[str] = INT8_KEEP_FLOAT) -> None:
    import onnx
    from onnxruntime.quantization import QuantType, quantize_dynamic

    graph = onnx.load(str(source), load_external_data=False).graph
    keep = kept_float(graph, keep)
    quantize_dynamic(source, target, op_types_to_quantize=["MatMul"], weight_type=QuantType.QInt8,
                     nodes_to_exclude=keep, use_external_data_format=True,
                     extra_options={"MatMulConstBOnly": True})
    _single_weights_file(target)


# -- running it ---------------------------------------------------------------------------------------------------
class Session:
    """One exported decoder in an ORT session: ``run(ids, mask, past) -> (last_hidden, presents)``."""

    def __init__(self, entry: Path, threads: int = 0) -> None:
        import onnxruntime as ort

        options = ort.SessionOptions()
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        if threads:
            options.intra_op_num_threads = threads
        self.meta = json.loads((entry / "meta.json").read_text(encoding="utf-8"))
        self.session = ort.InferenceSession(str(entry / "model.onnx"), options, providers=["CPUExecutionProvider"])
        self.names = [f"past_{t}_{i}" for i in range(self.meta["layers"]) for t in ("key", "value")]

    def empty_past(self, batch: int) -> list[np.ndarray]:
        return [np.zeros((batch, self.meta["kv_heads"], 0, self.meta["head_dim"]), np.float32) for _ in self.names]

    def run(self, ids: np.ndarray, mask: np.ndarray, past: Sequence[np.ndarray],
            presents: bool = False) -> tuple[np.ndarray, list[np.ndarray]]:
        """(batch, hidden) last states, and the new KV cache when ``presents``."""
        feed = {"input_ids": ids, "attention_mask": mask, **dict(zip(self.names, past, strict=True))}
        wanted = ["last_hidden"] + ([n.replace("past", "present") for n in self.names] if presents else [])
        out = self.session.run(wanted, feed)
        return out[0], out[1:]


def _threads() -> int:
    import torch

    return torch.get_num_threads()


class OnnxReranker(YesNoReranker):
    """The Qwen3 reranker on ONNX Runtime; scores are those of ``rag.reranker.Qwen3Reranker`` in float32."""

    def __init__(self, model: str, instruction: str = DEFAULT_INSTRUCTION, max_length: int = 8192,
                 quantize: str = "none", cache: str = "", data_dir: str = "data", cache_size: int = 4096,
                 keep_float: Sequence[str] = INT8_KEEP_FLOAT) -> None:
        try:
            from transformers import AutoTokenizer

            folder = model_folder(model)
            tokenizer = AutoTokenizer.from_pretrained(folder)
        except Exception as exc:
            raise model_load_error("reranker", model, exc, "RAG_RERANKER_MODEL",
                                   "a Qwen3-Reranker-style causal LM") from exc
        super().__init__(tokenizer, model, instruction, max_length, 1, True, cache_size)
        self.entry = export(folder, "reranker", quantize, cache_root(folder, cache, data_dir), keep_float)
        self.session = Session(self.entry, _threads())
        self.head = np.load(self.entry / "head.npy")  # (2, hidden) float32: "no", "yes"

    def _p_yes(self, hidden: np.ndarray) -> list[float]:
        return p_yes(hidden.astype(np.float32) @ self.head.T)

    def _score_batches(self, prompts: list[list[int]]) -> list[float]:
        scores = []
        for ids in prompts:  # one at a time: no padding
            hidden, _ = self.session.run(np.array([ids], np.int64), np.ones((1, len(ids)), np.int64),
                                         self.session.empty_past(1))
            scores += self._p_yes(hidden)
        return scores

    def _iter_on_prefix(self, prompts: list[list[int]], shared: int) -> Iterator[float]:
        head = np.array([prompts[0][:shared]], np.int64)
        _, cache = self.session.run(head, np.ones_like(head), self.session.empty_past(1), presents=True)
        for ids in prompts:
            rest = np.array([ids[shared:]], np.int64)
            hidden, _ = self.session.run(rest, np.ones((1, len(ids)), np.int64), cache)
            yield self._p_yes(hidden)[0]


class OnnxEmbedder(TokenizedEmbedder):
    """A Qwen3-Embedding-style sentence-transformers model on ONNX Runtime: last token, left padding, L2 norm."""

    def __init__(self, model: str, dimension: int = 0, query_instruction: str = DEFAULT_INSTRUCTION,
                 batch_size: int = 4, quantize: str = "none", cache: str = "", data_dir: str = "data",
                 keep_float: Sequence[str] = INT8_KEEP_FLOAT) -> None:
        try:
            from transformers import AutoTokenizer

            folder = model_folder(model)
            self.tokenizer = AutoTokenizer.from_pretrained(folder, padding_side="left")
        except Exception as exc:
            raise model_load_error("embedding", model, exc, "RAG_EMBEDDING_MODEL",
                                   "a sentence-transformers model") from exc
        self.entry = export(folder, "embedder", quantize, cache_root(folder, cache, data_dir), keep_float)
        self.session = Session(self.entry, _threads())
        meta = self.session.meta
        self.name = model
        self.max_tokens = int(meta["max_seq_length"])
        prompts = meta["prompts"]
        self.query_instruction = query_instruction
        self._model_query_prompt = prompts.get("query") or None
        self.document_prompt = prompts.get("document") or None
        self.batch_size = batch_size
        self.dimension = self.checked_dimension(dimension, meta["hidden_size"])

    def _encode(self, texts: Sequence[str], prompt: str | None) -> np.ndarray:
        texts = [(prompt or "") + t for t in texts]
        order = sorted(range(len(texts)), key=lambda i: -len(texts[i]))  # as sentence-transformers sorts
        out = np.zeros((len(texts), self.session.meta["hidden_size"]), np.float32)
        for start in range(0, len(order), self.batch_size):
            batch = order[start : start + self.batch_size]
            enc = self.tokenizer([texts[i] for i in batch], padding=True, truncation="longest_first",
                                 max_length=self.max_tokens, return_tensors="np")
            hidden, _ = self.session.run(enc["input_ids"].astype(np.int64), enc["attention_mask"].astype(np.int64),
                                         self.session.empty_past(len(batch)))
            out[batch] = hidden
        return out
