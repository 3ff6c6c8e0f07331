"""A stand-in for Hugging Face's ``spaces`` package with ZeroGPU's process semantics, for tests without a Space.

On a ZeroGPU Space, ``spaces.GPU`` runs each call in a worker process forked from the app: arguments and results
are pickled, nothing the worker changes comes back, and a call is refused when its declared duration exceeds what
the visitor has left. This stand-in does the same on the CPU, more strictly: every call gets a freshly forked child
(so nothing can rely on state a previous call left in a worker), arguments and results cross a pipe pickled (an
unpicklable one fails the call), and an exception other than ``gr.Error`` comes back only as its class name, as
the real package reports it. Outside ZeroGPU (``SPACES_ZERO_GPU`` unset) ``GPU`` returns the function unchanged.

Put this folder first on PYTHONPATH. Environment, all optional:
- ``STANDIN_SPACES_LOG``: a file that gets one line per call: ``call NAME DURATION_S PID``, and
  ``outside MODULE PID`` for every model forward pass run outside a worker (the tests expect none);
- ``STANDIN_SPACES_QUOTA_S``: the visitor's quota left, in seconds; a call that declares more is refused with the
  real package's message, and each call uses up its declared duration.

A forked child runs torch with one thread: GNU OpenMP is not fork-safe, and a child deadlocks on its first
multi-threaded op once the parent has started its thread pool.
"""

from __future__ import annotations

import functools
import inspect
import os
import pickle
import signal
import struct
import sys
import traceback
from collections.abc import Callable, Iterator
from typing import Any

ZERO_GPU = os.environ.get("SPACES_ZERO_GPU", "").lower() in ("1", "t", "true")
_in_worker = False
_quota: list[float] = []  # [seconds left], when STANDIN_SPACES_QUOTA_S is set


def _log(line: str) -> None:
    path = os.environ.get("STANDIN_SPACES_LOG")
    if path:
        with open(path, "a") as f:
            f.write(line + "\n")


def _guard_model_calls() -> None:
    """Log every top-level torch module call made outside a worker: on ZeroGPU there is no GPU there."""
    import torch

    original = torch.nn.Module.__call__
    depth = [0]

    def call(self: Any, *args: Any, **kwargs: Any) -> Any:
        if not _in_worker and depth[0] == 0:
            _log(f"outside {type(self).__name__} {os.getpid()}")
        depth[0] += 1
        try:
            return original(self, *args, **kwargs)
        finally:
            depth[0] -= 1

    torch.nn.Module.__call__ = call


def GPU(task: Callable[..., Any] | None = None, *, duration: Any = None, size: str | None = None,
        **kwargs: Any) -> Any:  # noqa: N802 - the real package's name
    if not callable(task):
        return functools.partial(GPU, duration=duration, size=size)
    if not ZERO_GPU:
        return task
    if inspect.isgeneratorfunction(task):
        @functools.wraps(task)
        def generator(*args: Any, **kw: Any) -> Iterator[Any]:
            if _in_worker:
                yield from task(*args, **kw)
                return
            yield from _run(task, duration, args, kw, stream=True)
        return generator

    @functools.wraps(task)
    def regular(*args: Any, **kw: Any) -> Any:
        if _in_worker:
            return task(*args, **kw)
        return next(_run(task, duration, args, kw, stream=False))
    return regular


def _schedule(task: Callable[..., Any], duration: Any, args: tuple, kwargs: dict) -> float:
    import gradio as gr

    seconds = float(duration(*args, **kwargs) if callable(duration) else (duration or 60))
    if "STANDIN_SPACES_QUOTA_S" in os.environ:
        if not _quota:
            _quota.append(float(os.environ["STANDIN_SPACES_QUOTA_S"]))
        if seconds > _quota[0]:
            raise gr.Error(f"You have exceeded your free ZeroGPU quota ({round(seconds)}s requested vs. "
                           f"{round(_quota[0])}s left). Try again in 23:59:00.", title="ZeroGPU quota exceeded")
        _quota[0] -= seconds
    _log(f"call {task.__name__} {seconds:g} {os.getpid()}")
    return seconds


def _send(fd: int, obj: Any) -> None:
    data = pickle.dumps(obj)
    os.write(fd, struct.pack("!Q", len(data)))
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view):]


def _receive(f: Any) -> Any:
    head = f.read(8)
    if len(head) < 8:
        return ("aborted", None)
    (size,) = struct.unpack("!Q", head)
    return pickle.loads(f.read(size))


def _run(task: Callable[..., Any], duration: Any, args: tuple, kwargs: dict, stream: bool) -> Iterator[Any]:
    import gradio as gr

    _schedule(task, duration, args, kwargs)
    payload = pickle.dumps((args, kwargs))  # an argument that cannot be pickled fails here, as it would on a Space
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # the worker
        os.close(read)
        code = 0
        try:
            global _in_worker
            _in_worker = True
            import torch

            torch.set_num_threads(1)
            a, kw = pickle.loads(payload)
            if stream:
                for item in task(*a, **kw):
                    _send(write, ("ok", item))
                _send(write, ("end", None))
            else:
                _send(write, ("ok", task(*a, **kw)))
        except gr.Error as exc:
            _send(write, ("gr", str(exc)))
        except BaseException as exc:  # the real package keeps only the class name
            sys.stderr.write(traceback.format_exc())
            try:
                _send(write, ("error", type(exc).__name__))
            except BaseException:
                code = 1
        finally:
            os._exit(code)
    os.close(write)
    done = False
    with os.fdopen(read, "rb") as f:
        try:
            while True:
                kind, value = _receive(f)
                if kind == "ok":
                    done = not stream
                    yield value
                    if not stream:
                        return
                elif kind == "end":
                    done = True
                    return
                elif kind == "gr":
                    raise gr.Error(value)
                elif kind == "error":
                    raise gr.Error(f"ZeroGPU worker error: {value}", title="ZeroGPU worker error")
                else:
                    raise gr.Error("GPU task aborted", title="ZeroGPU worker error")
        finally:
            if not done:  # the caller stopped early, or the worker failed: it may still be writing
                os.kill(pid, signal.SIGKILL)
            os.waitpid(pid, 0)


if ZERO_GPU and os.environ.get("STANDIN_SPACES_LOG"):
    _guard_model_calls()
