"""What the cluster layout costs on one machine (not a test; the README's "From one machine to a cluster" figures).

``python tests/cluster_load.py [--users 16] [--soak 300] [--json]`` builds the tiny random-weight models, starts a
``milvus-lite server`` and llama.cpp's servers (xllamacpp) on 127.0.0.1, and runs ``rag.load.run_users`` against:

1. one replica with the models in its process (today's layout),
2. one replica with the models on llama.cpp's server,
3. two replicas with the models on llama.cpp's server, the users shared between them;

each against the loopback LLM (a 0.2 s first token, the answer echoing its question so a crossed answer shows).
Then, with ``--soak N``, one replica with the models on the server answers N questions one after another, and the
app process's peak RSS (VmHWM) is read after 50, 150 and 300, with the p95 of each hundred. Everything runs on this
machine's cores, so the figures show the layout's overhead, not a speed-up.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path[:0] = [str(Path(__file__).parent), str(Path(__file__).parent.parent)]

from apprun import start_app, stop  # noqa: E402
from conftest import FAQ, faq_texts, free_port, wait_for_port  # noqa: E402
from llama_server import serve_pair  # noqa: E402
from openai_server import FakeOpenAI, Reply  # noqa: E402

from rag.load import default_questions, percentile, run_users  # noqa: E402
from rag.random_models import build_pair  # noqa: E402


def peak_rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def row(name: str, report) -> dict:
    return {"layout": name, "users": report.users, "p50_s": round(report.p50_s, 2), "p95_s": round(report.p95_s, 2),
            "max_s": round(report.max_s, 2), "failed": report.failed, "crossed": report.cross_talk}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--users", type=int, default=16)
    parser.add_argument("--soak", type=int, default=0)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="cluster-load-"))
    models = build_pair(tmp / "models", faq_texts())
    port = free_port()
    milvus = subprocess.Popen([str(Path(sys.executable).with_name("milvus-lite")), "server", "--data-dir",
                               str(tmp / "milvus"), "--host", "127.0.0.1", "--port", str(port)],
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    rows, soak = [], []
    questions = default_questions(args.users)
    try:
        wait_for_port(port, milvus)
        uri = f"http://127.0.0.1:{port}"
        with serve_pair(models, tmp) as (emb, rr), \
                FakeOpenAI(Reply(chunks=["From the passages [1]."], first_delay=0.2, echo=True)) as llm:
            remote = {"RAG_EMBEDDING_URL": emb.url, "RAG_RERANK_URL": rr.url}
            layouts = [("one replica, models in-process", [{}]),
                       ("one replica, models on llama.cpp's server", [remote]),
                       ("two replicas, models on llama.cpp's server", [remote, {**remote,
                                                                                "RAG_INDEX_ON_START": "false"}])]
            for n, (name, envs) in enumerate(layouts):
                apps = []
                try:
                    for i, env in enumerate(envs):
                        (tmp / f"{n}{i}").mkdir()
                        apps.append(start_app(tmp / f"{n}{i}", models, FAQ, llm.url, "sk-x", env={
                            "RAG_MILVUS_URI": uri, "RAG_COLLECTION": f"layout{n}", **env}))
                    report = run_users([url for url, _ in apps], questions)
                    rows.append(row(name, report))
                    print(json.dumps(rows[-1]), file=sys.stderr, flush=True)
                    if args.soak and n == 1:
                        url, proc = apps[0]
                        from gradio_client import Client

                        client, times = Client(url, verbose=False), []
                        pool = default_questions(24)
                        for i in range(args.soak):
                            t0 = time.perf_counter()
                            reply = client.predict(pool[i % len(pool)], api_name="/ask")
                            times.append(time.perf_counter() - t0)
                            assert not reply.get("error"), reply
                            if i + 1 in (1, 50, 150, 300) or i + 1 == args.soak:
                                soak.append({"questions": i + 1, "peak_rss_mb": round(peak_rss_mb(proc.pid), 1)})
                            if (i + 1) % 100 == 0:
                                soak.append({"hundred": (i + 1) // 100,
                                             "p95_s": round(percentile(times[-100:], 95), 3)})
                                print(json.dumps(soak[-2:]), file=sys.stderr, flush=True)
                finally:
                    for _, proc in apps:
                        stop(proc)
    finally:
        milvus.terminate()
        milvus.wait(15)
    result = {"load": rows, "soak": soak}
    if args.json:
        print(json.dumps(result))
    else:
        for r in rows:
            print(f"{r['layout']:45s} p50 {r['p50_s']:6.2f} s  p95 {r['p95_s']:6.2f} s  max {r['max_s']:6.2f} s  "
                  f"failed {r['failed']}  crossed {r['crossed']}")
        for s in soak:
            print(f"soak: after {s['questions']:3d} questions, peak RSS {s['peak_rss_mb']:.0f} MB" if "questions" in s
                  else f"soak: p95 of hundred {s['hundred']}: {s['p95_s']:.2f} s")


if __name__ == "__main__":
    main()
