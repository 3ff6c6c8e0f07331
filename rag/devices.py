"""Device and dtype choice, in one place. Nothing else names "cuda" or picks a dtype.

``auto`` prefers CUDA, then Apple's MPS, then the CPU. On the CPU, ``auto`` picks bfloat16 only where the
processor computes it natively (AVX-512 BF16 or AMX); elsewhere bfloat16 is emulated and slower than float32.
"""

from __future__ import annotations

import functools
from typing import Any

import torch

from rag.errors import SettingsError

_DTYPES = {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}


def pick_device(setting: str = "auto") -> str:
    """The torch device name for a ``RAG_DEVICE`` value (auto, cpu, cuda or mps)."""
    if setting == "auto":
        if torch.cuda.is_available():
            return "cuda"
        if torch.backends.mps.is_available():
            return "mps"
        return "cpu"
    if setting == "cuda" and not torch.cuda.is_available():
        raise SettingsError("RAG_DEVICE=cuda but no CUDA GPU is visible; set RAG_DEVICE=auto or cpu.")
    if setting == "mps" and not torch.backends.mps.is_available():
        raise SettingsError("RAG_DEVICE=mps but MPS is not available; set RAG_DEVICE=auto or cpu.")
    return setting


@functools.cache
def cpu_has_native_bf16() -> bool:
    """True when this CPU does bfloat16 matmuls in hardware (oneDNN's own check)."""
    try:
        return bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())
    except (AttributeError, RuntimeError):
        return False


def pick_dtype(setting: str, device: str) -> torch.dtype:
    """The torch dtype for a ``RAG_DTYPE`` value on ``device``."""
    if setting != "auto":
        return _DTYPES[setting]
    if device == "cuda":
        return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
    if device == "mps":
        return torch.float16
    return torch.bfloat16 if cpu_has_native_bf16() else torch.float32


def quantize_int8(model: Any) -> Any:
    """Dynamic int8 quantisation of every ``nn.Linear`` (CPU only; opt-in with ``RAG_QUANTIZE=int8``)."""
    from torch.ao.quantization import quantize_dynamic

    return quantize_dynamic(model.float(), {torch.nn.Linear}, dtype=torch.qint8)
