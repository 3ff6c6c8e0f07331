"""The command line: ``python -m rag ingest|search|compare|ask|documents|remove|eval|info|bench|load|random-models``.

Each command calls the pipeline and prints text, or JSON with ``--json``. Expected failures (``RAGError``) become
one line on stderr and exit code 2, never a traceback.
"""

from __future__ import annotations

import argparse
import json
import sys
import textwrap
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from rag.errors import RAGError
from rag.types import FIRST_STAGES, SETUP_KEYS, Comparison, Hit, Retrieval


def _settings(args: argparse.Namespace, **overrides: object):  # noqa: ANN202 - Settings, imported lazily
    from rag.settings import load_settings

    for name in ("candidates", "top_k", "hybrid"):
        if getattr(args, name, None) is not None:
            overrides[name] = getattr(args, name)
    return load_settings(**overrides)


def _pipeline(args: argparse.Namespace, **overrides: object):  # noqa: ANN202
    """The pipeline for this hosting (on a ZeroGPU Space, one whose model calls go through spaces.GPU)."""
    from rag.zerogpu import make_pipeline

    return make_pipeline(_settings(args, **overrides))


def _quiet_libraries() -> None:
    import logging
    import warnings

    warnings.filterwarnings("ignore")
    for name in ("transformers", "sentence_transformers", "huggingface_hub"):
        logging.getLogger(name).setLevel(logging.ERROR)
    logging.getLogger("pymilvus").setLevel(logging.CRITICAL)  # its RPC errors reach the user as StoreError
    logging.getLogger("grpc._server").setLevel(logging.CRITICAL)  # Milvus Lite's in-process server: unimplemented calls
    try:
        from transformers.utils import logging as hf_logging

        hf_logging.set_verbosity_error()
        hf_logging.disable_progress_bar()
    except ImportError:
        pass


class _Bars:
    """Progress bars on stderr, one per stage, each made at its stage's first report (so an error before any
    progress stays one line). ``when_piped``: also draw them when stderr is not a terminal (a log shows them)."""

    def __init__(self, units: dict[str, str], default_unit: str = "item", when_piped: bool = False) -> None:
        self.units, self.default_unit, self.disable = units, default_unit, False if when_piped else None
        self.bars: dict[str, Any] = {}

    def update(self, stage: str, done: int, total: int) -> None:
        from tqdm import tqdm

        if stage not in self.bars:
            self.bars[stage] = tqdm(total=total, unit=self.units.get(stage, self.default_unit), desc=stage,
                                    file=sys.stderr, disable=self.disable)
        self.bars[stage].total, self.bars[stage].n = total, done
        self.bars[stage].refresh()

    def close(self) -> None:
        for bar in self.bars.values():
            bar.close()


def cmd_ingest(args: argparse.Namespace) -> int:
    # The command line is run by the machine's owner: a URL on loopback or the local network is theirs to fetch.
    pipeline = _pipeline(args, allow_private_urls=True)
    bars = _Bars({"embedding": "chunk"}, when_piped=True)
    report = pipeline.ingest(args.paths, progress=lambda done, total: bars.update("embedding", done, total),
                             sync=args.sync)
    bars.close()
    for s in report.skipped_files:
        print(f"skipped {s.path}: {s.reason}", file=sys.stderr)
    if args.json:
        print(json.dumps(report.to_dict(), ensure_ascii=False))
    else:
        for d in report.documents:
            print(f"{d.status:<9} {d.source} ({d.chunks} chunks)")
        for name in report.removed:
            print(f"{'removed':<9} {name} (gone from its folder)")
        print(
            f"{report.files} files: {report.chunks_added} chunks added, {report.chunks_skipped} already stored "
            f"({report.seconds:.1f} s). Collection {pipeline.settings.collection!r} now holds "
            f"{pipeline.store.count()} chunks."
        )
    return 0


def cmd_documents(args: argparse.Namespace) -> int:
    from rag.pipeline import Pipeline

    docs = Pipeline(_settings(args)).store.documents()  # loads no model
    if args.json:
        print(json.dumps({"documents": [d.to_dict() for d in docs]}, ensure_ascii=False))
        return 0
    for d in docs:
        row = d.to_dict()
        print(f"{row['added']}  {d.chunks:>6} chunks {d.pages:>5} pages {d.chars:>9} chars  {row['format']:<5} "
              f"{d.source}" + (f"  (by {d.added_by})" if d.added_by else ""))
    print(f"{len(docs)} documents, {sum(d.chunks for d in docs)} chunks.")
    return 0


def cmd_remove(args: argparse.Namespace) -> int:
    from rag.library import Library
    from rag.pipeline import Pipeline

    done = Library(Pipeline(_settings(args))).remove(args.names)  # loads no model
    if args.json:
        print(json.dumps(done.to_dict(), ensure_ascii=False))
    else:
        for name, chunks in done.removed.items():
            print(f"removed {name} ({chunks} chunks)")
    for name in done.unknown:
        print(f"error: no document named {name!r}; python -m rag documents lists them", file=sys.stderr)
    return 2 if done.unknown else 0


def _cell(hit: Hit | None, score: str, width: int) -> list[str]:
    if hit is None:
        return []
    title = hit.heading or "(no heading)"
    body = " ".join(hit.text.split())
    lines = textwrap.wrap(f"{score} {title}", width) + [f"  {hit.source}"[:width]]
    lines += textwrap.wrap(body, width - 2, max_lines=2, placeholder=" …", initial_indent="  ",
                           subsequent_indent="  ")
    return lines


def format_side_by_side(r: Retrieval, width: int = 100) -> str:
    col = (width - 3) // 2
    out = [f"Q: {r.question}", f"{'Dense (inner product)':<{col}} | Reranked (P(yes))", f"{'-' * col}-+-{'-' * col}"]
    for dense, reranked in zip(r.dense, r.reranked, strict=False):
        left = _cell(dense, f"{dense.dense_rank}. [{dense.dense_score:.3f}]", col)
        moved = "" if reranked.dense_rank == reranked.rerank_rank else f" (was {reranked.dense_rank})"
        right = _cell(reranked, f"{reranked.rerank_rank}. [{reranked.rerank_score:.3f}]{moved}", col)
        for i in range(max(len(left), len(right))):
            a = left[i] if i < len(left) else ""
            b = right[i] if i < len(right) else ""
            out.append(f"{a:<{col}} | {b}")
        out.append("")
    t = r.timings
    out.append(f"embed {t.embed_s:.3f} s, search {t.search_s:.3f} s, rerank {t.rerank_s:.3f} s")
    return "\n".join(out)


def parse_setup(pairs: Sequence[str] | None) -> dict[str, Any]:
    """``["stage=hybrid", "rerank=off", "sources=a.md", "sources=b.md"]`` -> a setup mapping (``rag.compare``)."""
    values: dict[str, Any] = {}
    for pair in pairs or ():
        key, sep, value = pair.partition("=")
        key = key.strip()
        if not sep or key not in SETUP_KEYS:
            raise RAGError(f"{pair!r}: give KEY=VALUE with KEY one of {', '.join(SETUP_KEYS)}.")
        if key == "sources":
            values.setdefault("sources", []).append(value)
        else:
            values[key] = value
    return values


def format_comparison(c: Comparison, width: int = 100) -> str:
    """The two final top-k lists side by side, what each setup was, and how the passages moved."""
    col = (width - 3) // 2

    def described(label: str, r: Retrieval, s: dict[str, Any]) -> str:
        rerank = f"reranked (P(yes)), {s['candidates']} candidates" if s["rerank"] else "not reranked"
        scope = f", {len(s['sources'])} documents" if s["sources"] else ""
        t = r.timings
        return (f"{label}: {s['stage']}, {rerank}, top {s['top_k']}{scope}; embed {t.embed_s:.3f} s, "
                f"search {t.search_s:.3f} s, rerank {t.rerank_s:.3f} s")

    def score(h: Hit, reranked: bool) -> str:
        return f"[{h.rerank_score:.3f}]" if reranked and h.rerank_score is not None else f"[{h.dense_score:.3f}]"

    a, b = c.final(c.a), c.final(c.b)
    out = [f"Q: {c.question}", described("A", c.a, c.setup_a.to_dict()), described("B", c.b, c.setup_b.to_dict())]
    if c.shared:
        out.append(f"B reused A's {' and '.join(c.shared)}.")
    out += [f"{'A':<{col}} | B", f"{'-' * col}-+-{'-' * col}"]
    for i in range(max(len(a), len(b))):
        left = _cell(a[i], f"{i + 1}. {score(a[i], bool(c.a.reranked))}", col) if i < len(a) else []
        right = _cell(b[i], f"{i + 1}. {score(b[i], bool(c.b.reranked))}", col) if i < len(b) else []
        for j in range(max(len(left), len(right))):
            out.append(f"{left[j] if j < len(left) else '':<{col}} | {right[j] if j < len(right) else ''}")
        out.append("")
    out.append(f"overlap {c.overlap:.2f} (top-k of A and B in common)")
    for hit, in_a, in_b in c.moves():
        where = ("only in A" if in_b is None else "only in B" if in_a is None else
                 "same" if in_a == in_b else f"{'↑' if in_b < in_a else '↓'}{abs(in_a - in_b)} in B")
        out.append(f"  A {in_a or '–'} · B {in_b or '–'}  {where:<10} {hit.heading or '(no heading)'}")
    return "\n".join(out)


def cmd_compare(args: argparse.Namespace) -> int:
    from rag.compare import compare, setup

    pipeline = _pipeline(args)
    a, b = setup(pipeline.settings, parse_setup(args.a)), setup(pipeline.settings, parse_setup(args.b))
    result = compare(pipeline, " ".join(args.question), a, b)
    for r in (result.a, result.b):
        if r.notice:
            print(f"note: {r.notice}", file=sys.stderr)
    print(json.dumps(result.to_dict(), ensure_ascii=False) if args.json else format_comparison(result))
    return 0


def cmd_search(args: argparse.Namespace) -> int:
    questions = [" ".join(args.question)] if args.question else []
    if args.questions:
        with open(args.questions, encoding="utf-8") as f:
            questions += [line.strip() for line in f if line.strip()]
    if not questions:
        raise RAGError("Give a question, or --questions FILE with one question per line.")
    pipeline = _pipeline(args)
    live = not args.json and sys.stderr.isatty()  # a person at a terminal: show the reranking as it goes
    for question in questions:
        for result in pipeline.retrieve_steps(question, args.candidates, args.top_k, sources=args.source or (),
                                              stage=args.stage):
            if live and result.candidates:
                print(f"\rReranking {len(result.reranked_all)} of {len(result.candidates)}…", end="", file=sys.stderr,
                      flush=True)
        if live:
            print("\r\033[K", end="", file=sys.stderr, flush=True)  # the progress line goes; the table stays
        if result.notice:
            print(f"note: {result.notice}", file=sys.stderr)
        if args.json:
            print(json.dumps(result.to_dict(), ensure_ascii=False), flush=True)
        else:
            print(format_side_by_side(result), flush=True)
    return 0


def cmd_ask(args: argparse.Namespace) -> int:
    pipeline = _pipeline(args)
    retrieval, answer = pipeline.ask(" ".join(args.question), candidates=args.candidates, top_k=args.top_k,
                                     sources=args.source or ())
    if retrieval.notice:
        print(f"note: {retrieval.notice}", file=sys.stderr)
    for delta in answer:
        if not args.json and not (answer.error and delta.lstrip().startswith("⚠")):
            print(delta, end="", flush=True)
    if args.json:
        print(json.dumps({
            "answer": answer.text,
            "sources": [h.to_dict() for h in retrieval.passages],
            "generated": answer.generated,
            "error": answer.error,
            "finish_reason": answer.finish_reason,
            "timings": {**retrieval.timings.to_dict(), "first_token_s": _round(answer.first_token_s),
                        "generate_s": _round(answer.generate_s)},
        }, ensure_ascii=False))
    else:
        if answer.generated:
            print("\n\nSources:")
            for i, h in enumerate(retrieval.passages, 1):
                score = "–" if h.rerank_score is None else f"{h.rerank_score:.3f}"
                print(f"  [{i}] {h.heading or '(no heading)'} ({h.source})  P(yes)={score}")
        print()
    if answer.error:
        print(f"error: {answer.error}", file=sys.stderr)
        if not answer.partial.strip():
            return 2  # nothing but the error could be shown
    return 0


def cmd_eval(args: argparse.Namespace) -> int:
    from rag.evalsets import read_beir, read_csv
    from rag.evaluation import METRICS, evaluate, parse_modes

    modes = parse_modes(args.modes)
    if args.marks is not None:
        from rag.evalsets import read_marks

        evalset = read_marks(args.marks or _marks_path(args), args.limit)
    elif args.beir:
        evalset = read_beir(args.beir, args.split, args.limit)
    else:
        evalset = read_csv(args.csv, args.lang, args.limit)
    bars = _Bars({"embedding": "doc"}, default_unit="question")
    report = evaluate(_pipeline(args), evalset, modes, args.candidates, bars.update)
    bars.close()
    if args.json:
        print(json.dumps(report.to_dict()))
        return 0
    print(f"{'mode':<8}" + "".join(f"{m:>12}" for m in METRICS))
    for mode, values in report.metrics.items():
        print(f"{mode:<8}" + "".join(f"{values[m]:>12.4f}" for m in METRICS))
    print(f"{report.name}: {len(report.qrels)} questions, {report.embedded} documents embedded, "
          f"{report.seconds:.1f} s.")
    if report.rerank_over:
        print(f"rerank: the top {report.rerank_depth} of {report.rerank_over} reordered; the first relevant document "
              f"moved up in {len(report.helped)} and down in {len(report.hurt)} of the {len(report.qrels)} questions.")
    return 0


def _marks_path(args: argparse.Namespace) -> Path:
    return Path(_settings(args).data_dir) / "marks.csv"


def cmd_marks(args: argparse.Namespace) -> int:
    from rag.marks import Marks

    path = _marks_path(args)
    marks = Marks(path).all()
    if args.json:
        print(json.dumps({"marks": [{"question": m.question, "document": m.document, "text": m.text,
                                     "relevant": m.relevant, "marked": m.marked} for m in marks]},
                         ensure_ascii=False))
        return 0
    for m in marks:
        snippet = " ".join(m.text.split())[:60]
        print(f"{'relevant    ' if m.relevant else 'not relevant'}  {m.question}  ·  {m.document}  ·  {snippet}")
    print(f"{len(marks)} marks, {len({m.question for m in marks})} questions, in {path}.")
    return 0


def _round(value: float | None) -> float | None:
    return None if value is None else round(value, 4)


def cmd_info(args: argparse.Namespace) -> int:
    from rag.pipeline import Pipeline

    info = Pipeline(_settings(args)).info()  # loads no model, on any hosting
    if args.json:
        print(json.dumps(info))
    else:
        width = max(map(len, info))
        for key, value in info.items():
            print(f"{key:<{width}}  {value}")
    return 0


def cmd_random_models(args: argparse.Namespace) -> int:
    from rag.documents import load_documents
    from rag.random_models import build_pair

    docs, _ = load_documents(args.corpus, max_bytes=10**8) if args.corpus else ([], [])
    embedding, reranker = build_pair(args.folder, [d.text for d in docs])
    print(f"RAG_EMBEDDING_MODEL={embedding}\nRAG_RERANKER_MODEL={reranker}")
    return 0


def cmd_bench(args: argparse.Namespace) -> int:
    from rag import bench
    from rag.settings import ROOT

    if args.scale:
        import tempfile

        sizes = [int(n) for n in args.sizes.split(",")]
        with tempfile.TemporaryDirectory() as tmp:
            indexes = [k.strip().upper() for k in args.indexes.split(",") if k.strip()]
            unknown = set(indexes) - set(bench.SCALE_INDEXES)
            if unknown:
                raise RAGError(f"--indexes: {', '.join(sorted(unknown))} not among {', '.join(bench.SCALE_INDEXES)}.")
            rows = bench.scale(str(Path(tmp) / "scale.db"), sizes, log=lambda m: print(m, file=sys.stderr, flush=True),
                               indexes=indexes)
        print(json.dumps({"scale": rows}) if args.json else bench.scale_table(rows))
        return 0
    if args.agreement:
        from rag import agreement

        try:
            found = agreement.run(log=lambda m: print(m, file=sys.stderr, flush=True))
        except ModuleNotFoundError as exc:
            raise RAGError(f"--agreement needs the measurement packages ({exc.name}): "
                           "pip install -r requirements-dev.txt") from None
        print(json.dumps(found) if args.json else agreement.table(found))
        return 0
    corpus = Path(args.corpus) if args.corpus else ROOT / "corpus" / "milvus_faq"
    if not any(corpus.glob("*.md")):
        raise RAGError(f"No .md files in {corpus}; pass --corpus FOLDER (the Milvus FAQ pages).")
    result = bench.run(corpus, int8=args.int8, log=lambda m: print(m, file=sys.stderr, flush=True))
    print(json.dumps(result) if args.json else bench.table(result))
    return 0


def cmd_load(args: argparse.Namespace) -> int:
    from rag import load

    auth = tuple(args.auth.split(":", 1)) if args.auth else None
    if auth is not None and len(auth) != 2:
        raise RAGError("--auth must be user:password.")
    questions = load.read_questions(args.questions, args.users)
    print(f"{args.users} users ask {' and '.join(args.url)} at once…", file=sys.stderr, flush=True)
    report = load.run_users(args.url, questions, auth)  # type: ignore[arg-type]
    print(json.dumps(report.to_dict()) if args.json else load.table(report))
    return 0 if report.failed == 0 and report.cross_talk == 0 else 1


def _retrieval_options(p: argparse.ArgumentParser, top_k_help: str) -> None:
    """The options ``search`` and ``ask`` share."""
    p.add_argument("--candidates", type=int, metavar="N", help="dense candidates to rerank (RAG_CANDIDATES)")
    p.add_argument("--top-k", type=int, metavar="K", help=top_k_help)
    p.add_argument("--hybrid", action=argparse.BooleanOptionalAction, help="dense + BM25 candidates (RAG_HYBRID)")
    p.add_argument("--source", action="append", metavar="NAME",
                   help="search only this document (repeatable; `python -m rag documents` lists the names)")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m rag", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("ingest", help="add files (Markdown, text, PDF, Word, PowerPoint, Excel, CSV, HTML, EPUB), "
                                      "folders, globs or http(s) URLs of web pages")
    p.add_argument("paths", nargs="+", metavar="PATH_OR_URL")
    p.add_argument("--sync", action="store_true",
                   help="also remove the indexed documents under these folders whose files are gone from them")
    p.add_argument("--json", action="store_true", help="print a JSON report")
    p.set_defaults(func=cmd_ingest)

    p = sub.add_parser("documents", help="the documents in the collection: name, format, pages, chunks, added")
    p.add_argument("--json", action="store_true", help='print {"documents": [{"source", "chunks", ...}]}')
    p.set_defaults(func=cmd_documents)

    p = sub.add_parser("remove", help="remove documents by name: their chunks, kept text, kept upload and URL")
    p.add_argument("names", nargs="+", metavar="NAME", help="document names, as `python -m rag documents` lists them")
    p.add_argument("--json", action="store_true", help='print {"removed": [{"source", "chunks"}], "unknown": [...]}')
    p.set_defaults(func=cmd_remove)

    p = sub.add_parser("search", help="dense top-k and reranked top-k, side by side")
    p.add_argument("question", nargs="*", metavar="QUESTION")
    p.add_argument("--questions", metavar="FILE", help="a file with one question per line")
    _retrieval_options(p, top_k_help="results kept in each ranking (RAG_TOP_K)")
    p.add_argument("--stage", choices=FIRST_STAGES, help="the first stage by name (--hybrid is --stage hybrid)")
    p.add_argument("--json", action="store_true", help="one JSON object per question")
    p.set_defaults(func=cmd_search)

    p = sub.add_parser("compare", help="one question through two retrieval setups, their top-k side by side")
    p.add_argument("question", nargs="+", metavar="QUESTION")
    for side in ("a", "b"):
        p.add_argument(f"--{side}", nargs="*", action="extend", metavar="KEY=VALUE",
                       help=f"setup {side.upper()}: {', '.join(SETUP_KEYS)} (rerank=on|off; sources= repeatable); "
                            "keys left out take the settings' values")
    p.add_argument("--json", action="store_true", help='print {"question", "a", "b", "overlap"}')
    p.set_defaults(func=cmd_compare)

    p = sub.add_parser("ask", help="a streamed answer grounded in the reranked passages, then its sources")
    p.add_argument("question", nargs="+", metavar="QUESTION")
    _retrieval_options(p, top_k_help="passages given to the LLM (RAG_TOP_K)")
    p.add_argument("--json", action="store_true", help='print {"answer", "sources", "timings"} at the end')
    p.set_defaults(func=cmd_ask)

    p = sub.add_parser("eval", help="nDCG@10, Recall@10/100 and MRR@10 of each retrieval mode on a labelled set")
    source = p.add_mutually_exclusive_group(required=True)
    source.add_argument("--beir", metavar="DIR", help="a BEIR folder: corpus.jsonl, queries.jsonl, qrels/SPLIT.tsv")
    source.add_argument("--csv", metavar="FILE", help="question,expected_source[,lang] rows over the collection")
    source.add_argument("--marks", nargs="?", const="", metavar="FILE",
                        help="the relevance marks (default: RAG_DATA_DIR/marks.csv), over the collection")
    p.add_argument("--split", default="test", help="the BEIR qrels file to use (default: test)")
    p.add_argument("--lang", help="only the CSV rows of this lang")
    p.add_argument("--modes", default=",".join(("dense", "bm25", "hybrid", "rerank")),
                   help="comma-separated: dense, bm25, hybrid, rerank (default: all four)")
    p.add_argument("--limit", type=int, metavar="N", help="only the first N questions")
    p.add_argument("--candidates", type=int, metavar="N", help="candidates the reranker reorders (RAG_CANDIDATES)")
    p.add_argument("--json", action="store_true", help='print {"MODE": {"ndcg@10", "recall@10", ...}, ...}')
    p.set_defaults(func=cmd_eval)

    p = sub.add_parser("marks", help="the relevance marks made in the app (RAG_DATA_DIR/marks.csv)")
    p.add_argument("--json", action="store_true", help='print {"marks": [{"question", "document", "text", ...}]}')
    p.set_defaults(func=cmd_marks)

    p = sub.add_parser("info", help="the collection, chunk count, models, dimension, URI and device")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_info)

    p = sub.add_parser("bench", help="the tutorial's code against the project's path, with the compute floor")
    p.add_argument("--json", action="store_true")
    p.add_argument("--corpus", metavar="FOLDER", help="the Milvus FAQ pages (default: corpus/milvus_faq)")
    p.add_argument("--int8", action="store_true", help="also measure PyTorch's int8 reranker")
    p.add_argument("--agreement", action="store_true",
                   help="only int8 against float32 on real weights (SmolLM2-135M as a stand-in, FAQ questions)")
    p.add_argument("--scale", action="store_true", help="only Milvus search latency at growing sizes (1024-d)")
    p.add_argument("--sizes", default="1000,10000,100000,1000000", help="vector counts for --scale")
    p.add_argument("--indexes", default="FLAT,HNSW,IVF_FLAT", help="index types for --scale (FLAT always runs)")
    p.set_defaults(func=cmd_bench)

    p = sub.add_parser("load", help="many users at once against a running app: p50/p95 and a cross-talk check")
    p.add_argument("url", metavar="URL", nargs="+",
                   help="the app, e.g. http://127.0.0.1:7860/; several replicas share the users in turn")
    p.add_argument("--users", type=int, default=16, help="simultaneous users, one question each (default: 16)")
    p.add_argument("--questions", metavar="FILE", help="one question per line (default: the shipped FAQ set)")
    p.add_argument("--auth", metavar="USER:PASSWORD", help="the login, when the app has RAG_AUTH")
    p.add_argument("--json", action="store_true", help="print the report as JSON")
    p.set_defaults(func=cmd_load)

    p = sub.add_parser("random-models", help="write tiny random-weight Qwen3 models (for offline trials and tests)")
    p.add_argument("folder", metavar="FOLDER")
    p.add_argument("--corpus", nargs="*", metavar="PATH", help="text to train their tokenizer on")
    p.set_defaults(func=cmd_random_models)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    _quiet_libraries()
    try:
        return args.func(args)
    except RAGError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
