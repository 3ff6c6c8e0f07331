"""The Milvus wrapper against a real Milvus Lite file and a real Milvus gRPC server on 127.0.0.1."""

from __future__ import annotations

import os
import subprocess
import sys
import time

import grpc
import numpy as np
import pytest

from rag import store as store_module
from rag.errors import IncompatibleCollectionError, StoreError
from rag.settings import ROOT
from rag.store import MilvusStore
from rag.types import Chunk


@pytest.fixture(params=["lite", "server"])
def store(request, tmp_path) -> MilvusStore:
    if request.param == "lite":
        uri = str(tmp_path / "sub" / "lite.db")  # the folder is created
    else:
        uri = request.getfixturevalue("milvus_server")
    # a loaded CI machine can take more than the default 10 s to connect to the local server
    s = MilvusStore(uri, f"c_{request.node.name.split('[')[0][-20:]}_{request.param}", timeout=60)
    s.drop()
    yield s
    s.drop()
    s.close()


def unit(rows: int, dim: int, seed: int) -> np.ndarray:
    v = np.random.default_rng(seed).normal(size=(rows, dim)).astype(np.float32)
    return v / np.linalg.norm(v, axis=1, keepdims=True)


def test_create_insert_search_by_inner_product(store: MilvusStore) -> None:
    assert not store.exists() and store.count() == 0
    store.ensure("model-a", 8)
    assert store.recorded() == ("model-a", 8)
    chunks = [Chunk(f"id{i}", f"text {i}", f"doc{i}.md", f"H{i}", f"doc{i}.md") for i in range(5)]
    vectors = unit(5, 8, 0)
    store.insert(chunks, vectors)
    store.flush()
    assert store.count() == 5
    found = store.search(vectors[3], 3)
    assert found[0][0] == chunks[3] and found[0][1] == pytest.approx(1.0, abs=1e-4)
    scores = [s for _, s in found]
    assert scores == sorted(scores, reverse=True)
    expected = sorted(range(5), key=lambda i: -float(vectors[i] @ vectors[3]))[:3]
    assert [c.id for c, _ in found] == [f"id{i}" for i in expected]


def test_repeat_insert_adds_nothing(store: MilvusStore) -> None:
    store.ensure("m", 4)
    chunks = [Chunk("a", "alpha", "s", "h"), Chunk("b", "beta", "s", "h")]
    store.insert(chunks, unit(2, 4, 1))
    store.insert(chunks, unit(2, 4, 1))
    store.flush()
    assert store.count() == 2
    assert store.existing_ids(["a", "b", "c"]) == {"a", "b"}


def test_refuses_another_model_or_dimension(store: MilvusStore) -> None:
    store.ensure("model-a", 8)
    store.ensure("model-a", 8)  # same: fine
    with pytest.raises(IncompatibleCollectionError, match="RAG_COLLECTION"):
        store.ensure("model-b", 8)
    with pytest.raises(IncompatibleCollectionError, match="dimension 8"):
        store.ensure("model-a", 16)


def test_unreachable_server_says_what_to_change() -> None:
    s = MilvusStore("http://127.0.0.1:1", "x", timeout=2)
    with pytest.raises(StoreError, match="RAG_MILVUS_URI"):
        s.exists()


class _Unavailable(grpc.RpcError):
    """What grpc raises when a server drops the connection (GOAWAY "Too many pings" from milvus-lite server)."""

    def code(self) -> grpc.StatusCode:
        return grpc.StatusCode.UNAVAILABLE


def _client_failing(times: int, exc: Exception) -> tuple[type, list[float]]:
    """A stand-in for MilvusClient whose first ``times`` constructions raise ``exc``; the times of every try."""
    tries: list[float] = []

    class Client:
        def __init__(self, **_: object) -> None:
            tries.append(time.monotonic())
            if len(tries) <= times:
                raise exc

    return Client, tries


def _milvus_refusal() -> Exception:
    from pymilvus.exceptions import MilvusException

    try:
        try:
            raise _Unavailable()
        except grpc.RpcError as cause:
            raise MilvusException(code=2, message="Fail connecting to server") from cause
    except MilvusException as exc:
        return exc


def test_a_server_that_refuses_once_is_tried_again() -> None:
    client, tries = _client_failing(1, _milvus_refusal())
    MilvusStore("http://127.0.0.1:1", "x", timeout=30)._connect(client)
    assert len(tries) == 2 and tries[1] - tries[0] >= store_module.CONNECT_BACKOFF_S[0]


def test_a_refusal_is_tried_at_most_three_times_and_never_past_the_timeout() -> None:
    client, tries = _client_failing(5, _milvus_refusal())
    with pytest.raises(Exception, match="Fail connecting"):
        MilvusStore("http://127.0.0.1:1", "x", timeout=30)._connect(client)
    assert len(tries) == 1 + len(store_module.CONNECT_BACKOFF_S)
    client, tries = _client_failing(5, _milvus_refusal())
    with pytest.raises(Exception, match="Fail connecting"):
        MilvusStore("http://127.0.0.1:1", "x", timeout=0.2)._connect(client)  # the first pause would pass it
    assert len(tries) == 1


def test_other_errors_and_lite_files_are_not_tried_again(tmp_path) -> None:
    client, tries = _client_failing(1, ValueError("bad token"))
    with pytest.raises(ValueError):
        MilvusStore("http://127.0.0.1:1", "x", timeout=30)._connect(client)
    assert len(tries) == 1
    client, tries = _client_failing(1, _milvus_refusal())
    with pytest.raises(Exception, match="Fail connecting"):
        MilvusStore(str(tmp_path / "x.db"), "x", timeout=30)._connect(client)
    assert len(tries) == 1


def test_a_second_process_on_a_lite_file_gets_a_clear_message(tmp_path) -> None:
    import subprocess
    import sys

    from rag.settings import ROOT

    first = MilvusStore(str(tmp_path / "x.db"), "c")
    assert not first.exists()
    code = (f"from rag.store import MilvusStore\ntry:\n    MilvusStore({str(tmp_path / 'x.db')!r}, 'c').exists()\n"
            "except Exception as e:\n    print(type(e).__name__, e)\n")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60,
                          env={"PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin"})
    assert proc.stdout.startswith("StoreError Another process has the Milvus Lite file"), proc.stdout + proc.stderr
    first.close()


def test_threads_opening_one_store_share_its_client(tmp_path) -> None:
    from concurrent.futures import ThreadPoolExecutor

    store = MilvusStore(str(tmp_path / "x.db"), "c")
    with ThreadPoolExecutor(8) as pool:
        assert list(pool.map(lambda _: store.count(), range(8))) == [0] * 8
    store.close()


def test_close_releases_a_lite_file_when_its_last_store_closes(tmp_path) -> None:
    uri = str(tmp_path / "shared.db")
    first, second = MilvusStore(uri, "a"), MilvusStore(uri, "b")
    first.ensure("m", 4)
    second.ensure("m", 4)
    view = first.with_collection("b")
    view.close()  # a view leaves the shared connection open
    first.close()  # the file is still open through `second`
    assert second.count() == 0 and second.exists()
    second.close()
    code = f"from rag.store import MilvusStore; s = MilvusStore({uri!r}, 'a'); print(s.recorded()); s.close()"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120,
                         env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert out.returncode == 0 and "('m', 4)" in out.stdout, out.stderr[-500:]



def test_threads_first_touching_a_lite_file_left_by_a_killed_process_all_get_answers(tmp_path) -> None:
    """Milvus Lite 3.2.2 builds a collection's state twice when two threads touch it first at once and keeps one copy;
    a load done on the other was lost, load_collection waited for ever, and the app's restart after a crash hung."""
    import shutil

    killed = tmp_path / "killed.db"
    code = f"""
import os, signal, numpy as np
from rag.store import MilvusStore
from rag.types import Chunk
s = MilvusStore({str(killed)!r}, "c")
s.ensure("m", 8)
v = np.random.default_rng(3).normal(size=(2000, 8)).astype(np.float32)
v /= np.linalg.norm(v, axis=1, keepdims=True)
for i in range(0, 2000, 8):  # the app's batches of 8, flushed now and then; the last ones only in the WAL
    s.insert([Chunk(f"id{{j}}", "t", "s.md", "") for j in range(i, i + 8)], v[i : i + 8])
    if i % 64 == 0:
        s.flush()
os.kill(os.getpid(), signal.SIGKILL)
"""
    proc = subprocess.run([sys.executable, "-c", code], env={**os.environ, "PYTHONPATH": str(ROOT)}, timeout=300,
                          capture_output=True, text=True)
    assert proc.returncode == -9, proc.stderr[-2000:]  # it got as far as its own kill
    query = unit(2000, 8, 3)[1999]  # stored by the last batch
    for round in range(5):  # each round recovers the same killed file afresh
        uri = str(tmp_path / f"round{round}.db")
        shutil.copytree(killed, uri)
        found = first_touches(MilvusStore(uri, "c"), query)
        assert sorted(map(str, found)) == ["('m', 8)"] * 3 + ["id1999"], f"{found} after 30 s"


def first_touches(first: MilvusStore, query: np.ndarray) -> list:
    """A search (which loads the collection first, as the pipeline does) and three first calls of other requests
    (describe, through views: one client, each view its own load state), all at the same moment."""
    import threading

    views = [first.with_collection("c") for _ in range(3)]
    start, found = threading.Barrier(1 + len(views)), []

    def search() -> None:
        start.wait()
        found.append(first.exists() and first.search(query, 1)[0][0].id)

    def describe(view: MilvusStore) -> None:
        start.wait()
        found.append(view.recorded())

    threads = [threading.Thread(target=search, daemon=True)]
    threads += [threading.Thread(target=describe, args=(v,), daemon=True) for v in views]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    if len(found) == len(threads):
        first.close()
    return found
