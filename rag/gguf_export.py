"""Write a Qwen3 embedding model or reranker folder as a GGUF file that llama.cpp serves, with the ``gguf`` package.

What llama.cpp's ``convert_hf_to_gguf.py`` writes for Qwen3, for the two kinds this project runs:

- ``embedding``: the ``qwen3`` architecture with last-token pooling (``/v1/embeddings`` pools the last token, as
  Qwen3-Embedding's card says), and the tokenizer's end-of-text token appended to every input when the Hugging
  Face tokenizer appends it (Qwen3-Embedding's does);
- ``reranker``: rank pooling with a two-row classifier, the LM head's "yes" and "no" rows (``cls.output``), whose
  softmax llama.cpp returns as the score, so ``/v1/rerank`` gives P(yes); and a ``rerank`` chat template holding the
  card's prompt with its default instruction, which llama.cpp fills with each query and document.

- ``causal``: the plain decoder (Qwen3 or Llama family), no pooling of its own: ``rag.llama_engine`` runs it with
  last-token pooling and applies the head rows itself, with the project's tokenizer and prompts.

Weights are F32, or Q8_0 (blocks of 32 weights with a scale each) for the 2-D matrices of the transformer blocks.
Llama-family Q/K projections are permuted as ``convert_hf_to_gguf.py`` does (llama.cpp's rope pairs adjacent values).

Leaves out: other architectures, and running the file (llama.cpp does that).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np

from rag.reranker import DEFAULT_INSTRUCTION, SUFFIX, SYSTEM_PREFIX, format_pair

RERANK_TEMPLATE = SYSTEM_PREFIX + format_pair(DEFAULT_INSTRUCTION, "{query}", "{document}") + SUFFIX
QTYPES = ("F32", "Q8_0")


def _weights(folder: Path) -> dict[str, np.ndarray]:
    from safetensors.numpy import load_file

    tensors: dict[str, np.ndarray] = {}
    for f in sorted(folder.glob("*.safetensors")):
        tensors.update(load_file(str(f)))
    if not tensors:
        raise FileNotFoundError(f"no .safetensors weights in {folder}")
    return {k.removeprefix("model."): v.astype(np.float32) for k, v in tensors.items()}


def _tokenizer_metadata(writer: Any, folder: Path, vocab_size: int, llama: bool = False) -> dict[str, int]:
    """Tokens, types, merges and special ids from ``tokenizer.json``; returns the token -> id map."""
    import gguf

    spec = json.loads((folder / "tokenizer.json").read_text(encoding="utf-8"))
    config = json.loads((folder / "tokenizer_config.json").read_text(encoding="utf-8"))
    ids: dict[str, int] = dict(spec["model"]["vocab"])
    special = {t["content"] for t in spec.get("added_tokens", []) if t.get("special")}
    for t in spec.get("added_tokens", []):
        ids[t["content"]] = t["id"]
    by_id = {i: t for t, i in ids.items()}
    tokens, types = [], []
    for i in range(vocab_size):
        token = by_id.get(i, f"[PAD{i}]")
        tokens.append(token)
        types.append(gguf.TokenType.UNUSED if i not in by_id else
                     gguf.TokenType.CONTROL if token in special else gguf.TokenType.NORMAL)
    merges = spec["model"].get("merges", [])
    merges = [m if isinstance(m, str) else " ".join(m) for m in merges]
    pre = spec.get("pre_tokenizer") or {}
    # Qwen's own split regex is llama.cpp's "qwen2"; a plain byte-level pre-tokenizer uses GPT-2's regex
    qwen2 = "Split" in json.dumps(pre) and "\\p{L}" in json.dumps(pre)
    writer.add_tokenizer_model("gpt2")
    writer.add_tokenizer_pre("smollm" if llama else "qwen2" if qwen2 else "gpt-2")
    writer.add_token_list(tokens)
    writer.add_token_types(types)
    writer.add_token_merges(merges)
    pad = config.get("pad_token")
    if isinstance(pad, dict):
        pad = pad.get("content")
    if pad in ids:
        writer.add_pad_token_id(ids[pad])
    appended = _appended_token(spec.get("post_processor"))
    eos = appended or config.get("eos_token")
    if isinstance(eos, dict):
        eos = eos.get("content")
    if eos in ids:
        writer.add_eos_token_id(ids[eos])
    writer.add_add_bos_token(False)
    writer.add_add_eos_token(appended is not None)
    return ids


def _appended_token(post: Any) -> str | None:
    """The token a TemplateProcessing post-processor appends to a single text (Qwen3-Embedding: <|endoftext|>)."""
    if not isinstance(post, dict):
        return None
    if post.get("type") == "Sequence":
        found = [_appended_token(p) for p in post.get("processors", [])]
        return next((t for t in found if t), None)
    single = post.get("single") if post.get("type") == "TemplateProcessing" else None
    if single and "SpecialToken" in single[-1]:
        return single[-1]["SpecialToken"]["id"]
    return None


def write_gguf(folder: str | Path, out: str | Path, kind: str, qtype: str = "F32", name: str = "") -> Path:
    """Write the model in ``folder`` (a Hugging Face Qwen3 folder; for ``kind="embedding"`` the sentence-transformers
    folder) to ``out`` as ``kind`` ("embedding" or "reranker") in ``qtype`` ("F32" or "Q8_0")."""
    import gguf

    if kind not in ("embedding", "reranker", "causal") or qtype not in QTYPES:
        raise ValueError(f"kind {kind!r} / qtype {qtype!r}")
    folder, out = Path(folder), Path(out)
    cfg = json.loads((folder / "config.json").read_text(encoding="utf-8"))
    llama = cfg.get("model_type") == "llama"
    if not llama and cfg.get("model_type") != "qwen3":
        raise ValueError(f"{folder} is a {cfg.get('model_type')!r} model; GGUF export knows qwen3 and llama")
    heads, kv_heads = cfg["num_attention_heads"], cfg["num_key_value_heads"]
    head_dim = cfg.get("head_dim") or cfg["hidden_size"] // heads
    weights = _weights(folder)
    if llama:
        for key in [k for k in weights if k.endswith(("q_proj.weight", "k_proj.weight"))]:
            n = heads if key.endswith("q_proj.weight") else kv_heads
            w = weights[key]
            weights[key] = w.reshape(n, 2, w.shape[0] // n // 2, *w.shape[1:]).swapaxes(1, 2).reshape(w.shape)
    writer = gguf.GGUFWriter(str(out), "llama" if llama else "qwen3")
    writer.add_name(name or folder.name)
    writer.add_context_length(cfg["max_position_embeddings"])
    writer.add_embedding_length(cfg["hidden_size"])
    writer.add_block_count(cfg["num_hidden_layers"])
    writer.add_feed_forward_length(cfg["intermediate_size"])
    writer.add_head_count(heads)
    writer.add_head_count_kv(kv_heads)
    writer.add_key_length(head_dim)
    writer.add_value_length(head_dim)
    writer.add_rope_dimension_count(head_dim)
    rope = cfg.get("rope_parameters") or {}  # transformers 5 keeps rope_theta there; older configs at the top
    writer.add_rope_freq_base(float(rope.get("rope_theta", cfg.get("rope_theta", 10000.0))))
    writer.add_layer_norm_rms_eps(cfg.get("rms_norm_eps", 1e-6))
    writer.add_file_type(gguf.LlamaFileType.ALL_F32 if qtype == "F32" else gguf.LlamaFileType.MOSTLY_Q8_0)
    ids = _tokenizer_metadata(writer, folder, cfg["vocab_size"], llama)
    arch = gguf.MODEL_ARCH.LLAMA if llama else gguf.MODEL_ARCH.QWEN3
    names = gguf.get_tensor_name_map(arch, cfg["num_hidden_layers"])
    if kind == "embedding":
        writer.add_pooling_type(gguf.PoolingType.LAST)
    elif kind == "reranker":
        writer.add_pooling_type(gguf.PoolingType.RANK)
        writer.add_classifier_output_labels(["yes", "no"])
        writer.add_chat_template([{"name": "rerank", "template": RERANK_TEMPLATE}])
        head = weights.get("lm_head.weight", weights["embed_tokens.weight"])
        weights["cls.output.weight"] = np.stack([head[ids["yes"]], head[ids["no"]]])  # (2, hidden): yes, no
    weights.pop("lm_head.weight", None)
    for key, data in weights.items():
        target = "cls.output.weight" if key == "cls.output.weight" else names.get_name(
            "model." + key, try_suffixes=(".weight", ".bias"))
        if target is None:
            raise ValueError(f"no GGUF name for the tensor {key!r}")
        if qtype == "Q8_0" and data.ndim == 2 and target.startswith("blk.") and data.shape[-1] % 32 == 0:
            writer.add_tensor(target, gguf.quants.quantize(data, gguf.GGMLQuantizationType.Q8_0),
                              raw_dtype=gguf.GGMLQuantizationType.Q8_0)
        else:
            writer.add_tensor(target, np.ascontiguousarray(data))
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    return out
