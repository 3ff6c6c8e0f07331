"""Kill the app at random points of its first indexing, again and again: ``python tests/restart_stress.py [--runs N]``.

Not a test (it takes minutes): the slow, random version of ``tests/test_crash.py``. Each run starts ``app.py`` with
tiny random models on 1,200 chunks of generated text, sends it ``kill -9`` once a random number of chunks is
stored, reads the Lite file in a fresh process (with a deadline), then starts the app again, asks ``/search`` while
it finishes the interrupted indexing (as the tests do), and waits for "ready in". A run that does not get there
prints the app's log with every thread's stack (SIGUSR1). It found the Milvus Lite race that ``MilvusStore`` now
locks against: before the lock, the second restart of one series hung, and five restarts of another did not (the
race does not always end in a hang; ``tests/test_store.py`` provokes it every time).

Leaves out: Qwen3-0.6B shapes (tiny models make the runs quick; the race is in Milvus, not in the models).
"""

from __future__ import annotations

import argparse
import os
import random
import re
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path[:0] = [str(HERE), str(HERE.parent)]

from apprun import start_app, stop, wait_for_line  # noqa: E402
from openai_server import FakeOpenAI  # noqa: E402
from test_crash import write_corpus  # noqa: E402

from rag.settings import ROOT  # noqa: E402

READ = ("import sys; from pathlib import Path; from test_crash import stored_ids; "
        "print(len(stored_ids(Path(sys.argv[1]))))")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=20)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--dir", type=Path, default=None, help="where the runs' files go (a new temporary folder)")
    args = parser.parse_args(argv)
    from rag.random_models import build_pair

    root = args.dir or Path(tempfile.mkdtemp(prefix="restart-stress-"))
    root.mkdir(parents=True, exist_ok=True)
    models = build_pair(root / "models")
    write_corpus(root / "docs")
    rng = random.Random(args.seed)
    failed = 0
    with FakeOpenAI() as llm:
        for run in range(args.runs):
            tmp = root / f"run{run}"
            tmp.mkdir()
            _, proc = start_app(tmp, models, root / "docs", llm.url, "sk-x", log="killed.log", wait=False)
            target = rng.randrange(8, 1100)
            try:
                while proc.poll() is None:
                    stored = re.findall(r"default documents: (\d+)/1200", (tmp / "killed.log").read_text())
                    if stored and int(stored[-1]) >= target:
                        break
                    time.sleep(rng.random() * 0.05)
                time.sleep(rng.random() * 0.3)
            finally:
                proc.send_signal(signal.SIGKILL)
                proc.wait(30)
            try:
                read = subprocess.run([sys.executable, "-c", READ, str(tmp / "m.db")], capture_output=True, text=True,
                                      timeout=120, cwd=HERE, env={**os.environ, "PYTHONPATH": f"{HERE}:{ROOT}"})
                stored = read.stdout.strip() or f"error: {read.stderr.strip().splitlines()[-1:]}"
            except subprocess.TimeoutExpired:
                stored = "no answer in 120 s"
            try:  # start_app asks /search until it answers, while the app finishes the interrupted indexing
                _, proc = start_app(tmp, models, root / "docs", llm.url, "sk-x", log="restart.log")
            except Exception as exc:  # start_app has printed the app's log and stacks, and stopped it
                failed += 1
                outcome = f"RESTART FAILED: {exc!r}"[:300]
            else:
                try:
                    wait_for_line(tmp / "restart.log", r"ready in", proc)
                    outcome = "restart ready"
                except AssertionError as exc:  # the message holds the app's log and stacks
                    failed += 1
                    outcome = f"RESTART FAILED: {exc}"
                finally:
                    stop(proc)
            print(f"run {run}: killed after {target}+ chunks, {stored} stored; {outcome}", flush=True)
    print(f"{args.runs - failed} of {args.runs} restarts ready ({root})")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
