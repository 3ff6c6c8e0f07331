"""The fastest matrix multiply this machine reaches, per precision, for ``rag bench``'s compute floors.

Each library is timed at the same shape, a Qwen3-0.6B MLP matmul on a short prompt (512 x 1024 by 1024 x 3072):
PyTorch (oneDNN / MKL) in float32, bfloat16 and dynamic int8 (``quantize_dynamic`` of a Linear), numpy's BLAS in
float32, and ONNX Runtime's MLAS in float32 and dynamic int8 (``quantize_dynamic`` of a one-MatMul graph, the
quantisation of the activations included, as in the int8 models). The floor of a precision is the work divided by
the best of its rates.

Leaves out: anything but the CPU.
"""

from __future__ import annotations

import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

MATMUL = (512, 1024, 3072)  # (tokens, hidden, intermediate)


def rate(call: Callable[[], Any], seconds: float = 1.5) -> float:
    """GFLOP/s of ``call``, one MATMUL-shaped product, run for about ``seconds`` after a warm-up."""
    m, k, n = MATMUL
    for _ in range(3):
        call()
    count, start = 0, time.perf_counter()
    while time.perf_counter() - start < seconds:
        call()
        count += 1
    return 2 * m * k * n * count / (time.perf_counter() - start) / 1e9


def torch_matmul_rate(dtype: Any, seconds: float = 1.5) -> float:
    """GFLOP/s of PyTorch's matmul in ``dtype`` at the MATMUL shape."""
    import torch

    m, k, n = MATMUL
    a, b = torch.randn(m, k, dtype=dtype), torch.randn(k, n, dtype=dtype)
    return rate(lambda: a @ b, seconds)


def torch_rates(seconds: float = 1.5) -> dict[str, float]:
    import torch

    m, k, n = MATMUL
    out = {"fp32": torch_matmul_rate(torch.float32, seconds), "bf16": torch_matmul_rate(torch.bfloat16, seconds)}
    from torch.ao.quantization import quantize_dynamic

    linear = quantize_dynamic(torch.nn.Sequential(torch.nn.Linear(k, n, bias=False)), {torch.nn.Linear},
                              dtype=torch.qint8)
    x = torch.randn(m, k)
    with torch.inference_mode():
        out["int8"] = rate(lambda: linear(x), seconds)
    return out


def numpy_rate(seconds: float = 1.5) -> float:
    m, k, n = MATMUL
    rng = np.random.default_rng(0)
    a, b = rng.standard_normal((m, k), dtype=np.float32), rng.standard_normal((k, n), dtype=np.float32)
    return rate(lambda: a @ b, seconds)


def ort_rates(threads: int, seconds: float = 1.5) -> dict[str, float]:
    """ONNX Runtime's float32 and dynamic-int8 MatMul rates, on ``threads`` threads."""
    import onnx
    import onnxruntime as ort
    from onnx import TensorProto, helper, numpy_helper
    from onnxruntime.quantization import QuantType, quantize_dynamic

    m, k, n = MATMUL
    rng = np.random.default_rng(0)
    weight = numpy_helper.from_array(rng.standard_normal((k, n), dtype=np.float32) * 0.02, "w")
    graph = helper.make_graph([helper.make_node("MatMul", ["x", "w"], ["y"], name="mm")], "matmul",
                              [helper.make_tensor_value_info("x", TensorProto.FLOAT, [m, k])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, [m, n])], [weight])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], ir_version=8)
    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    x = {"x": rng.standard_normal((m, k), dtype=np.float32)}
    out = {}
    with tempfile.TemporaryDirectory() as tmp:
        fp32, int8 = Path(tmp) / "fp32.onnx", Path(tmp) / "int8.onnx"
        onnx.save(model, str(fp32))
        quantize_dynamic(fp32, int8, weight_type=QuantType.QInt8)
        for name, path in (("fp32", fp32), ("int8", int8)):
            session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
            out[name] = rate(lambda s=session: s.run(None, x), seconds)
    return out


def gemm_rates(threads: int, seconds: float = 1.5) -> dict[str, dict[str, float]]:
    """{precision: {library: GFLOP/s}} for fp32, bf16 and int8; each measured at the same shape."""
    t = torch_rates(seconds)
    o = ort_rates(threads, seconds)
    return {
        "fp32": {"torch": t["fp32"], "numpy": numpy_rate(seconds), "onnxruntime": o["fp32"]},
        "bf16": {"torch": t["bf16"]},
        "int8": {"torch": t["int8"], "onnxruntime": o["int8"]},
    }


def best(rates: dict[str, dict[str, float]]) -> dict[str, tuple[str, float]]:
    """{precision: (library, GFLOP/s)} of the fastest library for each precision."""
    return {p: max(by_lib.items(), key=lambda kv: kv[1]) for p, by_lib in rates.items()}
