"""The first reranked card at Qwen3-0.6B shapes, in a real browser: ``python tests/first_card.py [SETTING=VALUE ...]``.

Measures (asserts nothing): it starts ``app.py`` with random-weight models of the exact Qwen3-0.6B shapes (built
in ``--models``, about 5 GB, if absent), the loopback LLM and the FAQ pages; waits until the index is built; then
asks each question in a new chat in Debian's Chromium and prints the app's own timing line ("first card" is the
time from the dense column to the first reranked card), then the median of each part. Settings such as
``RAG_DTYPE=float32`` or ``RAG_QUANTIZE=int8`` pick the engine, as for the app.

Leaves out: quality (random weights), and a browser on another machine (here Chromium shares the CPU).
"""

from __future__ import annotations

import argparse
import re
import statistics
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path[:0] = [str(HERE), str(HERE.parent)]

from apprun import start_app, stop, wait_for_line  # noqa: E402
from conftest import CHROMIUM, FLAGS  # noqa: E402
from openai_server import FakeOpenAI, Reply  # noqa: E402

QUESTIONS = ["Where does Milvus store data?", "Can I run Milvus on Windows?", "How do I pick nlist and nprobe?",
             "Is Milvus free to use?", "How many dimensions can a vector have?", "Where are the log files written?"]
PARTS = ("embed", "search", "first card", "rerank", "first token", "total")
LINE = " ".join(f"{p} ([0-9.]+) s" for p in PARTS)  # the timing line once every part is in
DONE = ("([before, line]) => { const t = document.querySelector('#timings').innerText.replace(/\\s+/g, ' ').trim();"
        " return t !== before && new RegExp('^' + line + '$').test(t); }")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("settings", nargs="*", help="SETTING=VALUE for the app, e.g. RAG_DTYPE=float32")
    parser.add_argument("--models", type=Path, default=Path(tempfile.gettempdir()) / "rag-qwen3-0.6b-shapes")
    args = parser.parse_args(argv)
    env = dict(s.split("=", 1) for s in args.settings)
    faq = HERE.parent / "corpus" / "milvus_faq"
    if not (args.models / "reranker" / "config.json").exists():
        from rag.bench import build_models

        print(f"building Qwen3-0.6B-shaped random models in {args.models} …", flush=True)
        build_models(args.models, faq)
    from playwright.sync_api import sync_playwright

    tmp = Path(tempfile.mkdtemp())
    rows: list[tuple[float, ...]] = []
    with FakeOpenAI(Reply(chunks=["Milvus keeps ", "data in object storage [1]."])) as llm:
        start = time.perf_counter()
        url, proc = start_app(tmp, (args.models / "embedding", args.models / "reranker"), faq, llm.url, "sk-local",
                              env=env)
        try:
            wait_for_line(tmp / "app.log", r"ready in", proc, seconds=900)  # the whole FAQ is indexed
            what = " ".join(args.settings) or "default settings"
            print(f"app up and indexed in {time.perf_counter() - start:.0f} s ({what})", flush=True)
            with sync_playwright() as p:
                browser = p.chromium.launch(executable_path=CHROMIUM, args=FLAGS, headless=True)
                page = browser.new_page(viewport={"width": 1440, "height": 1000})
                for question in QUESTIONS:
                    page.goto(url)  # a new chat: with history, the question would be rewritten by the LLM first
                    page.locator("#question textarea").fill(question)
                    page.locator("#ask").click()
                    page.wait_for_function(DONE, arg=["", LINE], timeout=300000)
                    line = " ".join(page.locator("#timings").inner_text().split())
                    rows.append(tuple(float(v) for v in re.fullmatch(LINE, line).groups()))
                    print(f"{question:42} {line}", flush=True)
                browser.close()
        finally:
            stop(proc)
    print("median: " + " ".join(f"{p} {statistics.median(r[i] for r in rows):.2f} s" for i, p in enumerate(PARTS)))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
