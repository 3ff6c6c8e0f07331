"""HTML for the web app's comparison panel, chart, timings, sources and evaluation view. Pure functions: records
in, HTML out.

Every piece of document text, source and heading is escaped here: documents are untrusted, and nothing inside them
may become markup or script in the page.
"""

from __future__ import annotations

from collections.abc import Sequence
from html import escape
from typing import TYPE_CHECKING

from rag.marks import hit_key
from rag.types import Comparison, DocumentInfo, Hit, PassageView, Retrieval

if TYPE_CHECKING:
    from rag.evaluation import Change, EvalReport

SNIPPET_CHARS = 220
# first stage -> (column title, what its score is, the score's short label on a card)
STAGES = {"dense": ("Dense retrieval", "inner product", "IP"), "bm25": ("Full-text retrieval", "BM25", "BM25"),
          "hybrid": ("Hybrid retrieval", "dense + BM25, RRF", "RRF")}


def rank_marker(hit: Hit, top_k: int) -> tuple[str, str]:
    """(text, css class) for a reranked hit: ↑2 / ↓1 against its dense rank, "new" if it was outside the dense top-k."""
    if hit.rerank_rank is None:
        return "", ""
    if hit.dense_rank > top_k:
        return "new", "new"
    moved = hit.dense_rank - hit.rerank_rank
    if moved > 0:
        return f"↑{moved}", "up"
    if moved < 0:
        return f"↓{-moved}", "down"
    return "=", "same"


def dense_marker(hit: Hit, top_k: int) -> tuple[str, str]:
    """(text, css class) for a dense hit: where reranking put it."""
    if hit.rerank_rank is None:
        return "", ""
    if hit.rerank_rank > top_k:
        return f"out (#{hit.rerank_rank})", "down"
    moved = hit.dense_rank - hit.rerank_rank
    return (f"→ #{hit.rerank_rank}", "up" if moved > 0 else "down" if moved < 0 else "same")


def _card(hit: Hit, n: int, marker: tuple[str, str], cite: bool, stage: str = "dense", unranked: str = "…",
          badge: str = "") -> str:
    body = hit.text[len(hit.heading):] if hit.heading and hit.text.startswith(hit.heading) else hit.text
    text = " ".join(body.split())  # the heading is shown above it already
    snippet = text if len(text) <= SNIPPET_CHARS else text[:SNIPPET_CHARS].rsplit(" ", 1)[0] + " …"
    p_yes = unranked if hit.rerank_score is None else f"{hit.rerank_score:.3f}"
    label = f"[{n}]" if cite else f"#{n}"
    mark = f'<span class="rag-marker {marker[1]}">{escape(marker[0])}</span>' if marker[0] else ""
    return (
        f'<div class="rag-card" data-id="{escape(hit.id)}">'
        f'<div class="rag-card-head"><span class="rag-rank">{label}</span>'
        f'<span class="rag-heading">{escape(hit.heading or "(no heading)")}</span>{mark}{badge}</div>'
        f'<div class="rag-scores"><span title="{STAGES[stage][1]}">{STAGES[stage][2]} {hit.dense_score:.3f}</span>'
        f'<span title="reranker probability that the passage answers">P(yes) {p_yes}</span></div>'
        f'<div class="rag-source" title="{escape(hit.source)}">{escape(short_source(hit.source))}</div>'
        f'<div class="rag-snippet">{escape(snippet)}</div>'
        f'<details><summary>Full text</summary><pre class="rag-full">{escape(hit.text)}</pre></details></div>'
    )


def comparison(r: Retrieval | None, reranking: bool = False, scope: str = "") -> str:
    """Dense top-k and reranked top-k side by side; the reranked side says so while it is still being computed.
    ``scope`` says what was searched ("3 of 41 documents")."""
    if r is None:
        return '<div class="rag-empty">Ask a question to see the dense and reranked passages side by side.</div>'
    stage = r.first_stage if r.first_stage in STAGES else "dense"
    title, what, _ = STAGES[stage]
    dense = "".join(_card(h, h.dense_rank, dense_marker(h, r.top_k), False, stage) for h in r.dense)
    right = "".join(_card(h, i, rank_marker(h, r.top_k), True, stage) for i, h in enumerate(r.reranked, 1))
    if r.reranked and len(r.reranked_all) < len(r.candidates):  # still going: the best so far, and how far
        right = (f'<div class="rag-pending rag-progress">Reranking {len(r.reranked_all)} of {len(r.candidates)}…'
                 f'</div>{right}')
    elif not r.reranked and reranking:
        right = f'<div class="rag-pending">Reranking {len(r.candidates)} candidates…</div>'
    elif not r.reranked:
        why = f": {escape(r.notice)}" if r.notice else ""
        right = f'<div class="rag-pending rag-unranked">Not reranked{why}</div>'
    searched = f'<div class="rag-scope" id="scope">Searched {escape(scope)}</div>' if scope else ""
    return (
        f'{searched}<div class="rag-compare">'
        f'<div class="rag-col" id="dense-col"><h4>{title} <small>{what} · top {r.top_k} of '
        f'{len(r.candidates)}</small></h4>{dense}</div>'
        f'<div class="rag-col" id="rerank-col"><h4>Reranked <small>P(yes) · cited as [n]</small></h4>{right}</div>'
        "</div>"
    )


def scope_text(sources: Sequence[str], total: int) -> str:
    """What a question searched: "all 41 documents", or "3 of 41 documents: a.md, b.pdf, …"."""
    if not sources:
        return f"all {total} documents"
    names = ", ".join(short_source(s) for s in sources[:3]) + (", …" if len(sources) > 3 else "")
    return f"{len(sources)} of {total} documents: {names}"


def documents_table(docs: Sequence[DocumentInfo], total: int, limit: int) -> str:
    """The documents of the collection as a table (the first ``limit`` of ``docs``, which are those of ``total``
    that match the filter). Names are escaped: a document's name is as untrusted as its text."""
    if not total:
        return '<div class="rag-empty">The index holds no documents. Upload files or fetch web pages below.</div>'
    rows = "".join(
        f'<tr><td class="rag-doc-name" title="{escape(d.source)}">{escape(d.source)}</td>'
        f"<td>{escape(d.format)}</td><td>{d.pages}</td><td>{d.chunks}</td><td>{d.chars:,}</td>"
        f'<td>{d.to_dict()["added"].replace("T", " ").rstrip("Z")}</td><td>{escape(d.added_by)}</td></tr>'
        for d in docs[:limit]
    )
    shown = min(len(docs), limit)
    note = (f"{total} documents" if len(docs) == total and shown == total
            else f"{len(docs)} of {total} documents match" + (f"; the first {shown} are shown, type more of a name "
                                                                "to narrow them" if shown < len(docs) else ""))
    return (f'<div class="rag-docs"><div class="rag-docs-note">{note}</div><table class="rag-docs-table"><tr>'
            "<th>Document</th><th>Format</th><th>Pages</th><th>Chunks</th><th>Characters</th><th>Added (UTC)</th>"
            f"<th>Added by</th></tr>{rows}</table></div>")


def chart(r: Retrieval | None) -> str:
    """A bar chart of both scores for every candidate, in dense order."""
    if r is None or not r.candidates:
        return ""
    top = max(max(h.dense_score for h in r.candidates), 1e-6)
    rows = []
    for h in r.candidates:
        ip = max(h.dense_score, 0.0) / top * 100
        py = (h.rerank_score or 0.0) * 100
        kept = " kept" if h.rerank_rank is not None and h.rerank_rank <= r.top_k else ""
        rows.append(
            f'<div class="rag-bar-row{kept}" title="{escape(h.heading)}">'
            f'<span class="rag-bar-label">#{h.dense_rank} {escape(h.heading[:38] or "(no heading)")}</span>'
            f'<span class="rag-bars"><span class="rag-bar ip" style="width:{ip:.1f}%"></span>'
            f'<span class="rag-bar py" style="width:{py:.1f}%"></span></span>'
            f'<span class="rag-bar-val">{h.dense_score:.2f} · '
            f'{"…" if h.rerank_score is None else f"{h.rerank_score:.2f}"}</span></div>'
        )
    legend = ('<div class="rag-legend"><span class="rag-swatch ip"></span>inner product (relative to the best) '
              '<span class="rag-swatch py"></span>P(yes) · bold rows are kept</div>')
    return f'<div class="rag-chart">{legend}{"".join(rows)}</div>'


def timings(parts: Sequence[tuple[str, float | None]]) -> str:
    cells = "".join(
        f'<span class="rag-timing"><b>{escape(name)}</b> {"–" if v is None else f"{v:.2f} s"}</span>'
        for name, v in parts
    )
    return f'<div class="rag-timings">{cells}</div>'


SOURCES_HEADER = "\n\n**Sources**  \n"


def short_source(source: str) -> str:
    """The last two parts of a path: enough to recognise a file without a wall of folders."""
    parts = source.replace("\\", "/").rstrip("/").split("/")
    return "/".join(parts[-2:])


def sources_markdown(hits: Sequence[Hit]) -> str:
    """The list under an answer that its [n] citations point at (escaped for the chat's markdown)."""
    lines = [f"[{i}] {md_escape(h.heading or '(no heading)')} · *{md_escape(short_source(h.source))}*"
             for i, h in enumerate(hits, 1)]
    return SOURCES_HEADER + "  \n".join(lines)


def md_escape(text: str) -> str:
    """Document text made inert for a markdown renderer: HTML escaped, so tags show as text."""
    return escape(text, quote=False)


MODE_NAMES = {"dense": "Dense", "bm25": "BM25", "hybrid": "Hybrid", "rerank": "Reranked"}


def eval_metrics(report: EvalReport | None) -> str:
    """The metrics of each mode side by side: a table (best of each row in bold), bars, and what was run."""
    if report is None:
        return '<div class="rag-empty">Run an evaluation set to see dense, hybrid and reranked metrics.</div>'
    modes = list(report.metrics)
    metrics = list(next(iter(report.metrics.values()), {}))
    head = "".join(f"<th>{escape(MODE_NAMES.get(m, m))}</th>" for m in modes)
    rows, bars = [], []
    for metric in metrics:
        values = [report.metrics[m][metric] for m in modes]
        best = max(values, default=0.0)
        cells = "".join(f"<td>{'<b>' if v == best else ''}{v:.3f}{'</b>' if v == best else ''}</td>" for v in values)
        rows.append(f"<tr><th>{escape(metric)}</th>{cells}</tr>")
        group = "".join(
            f'<div class="rag-eval-bar-row"><span class="rag-bar-label">{escape(MODE_NAMES.get(m, m))}</span>'
            f'<span class="rag-bars"><span class="rag-bar mode-{escape(m)}" style="width:{min(max(v, 0), 1):.1%}">'
            f'</span></span><span class="rag-bar-val">{v:.3f}</span></div>'
            for m, v in zip(modes, values, strict=True)
        )
        bars.append(f'<div class="rag-eval-group"><div class="rag-eval-metric">{escape(metric)}</div>{group}</div>')
    note = (f"{escape(report.name)}: {len(report.qrels)} questions · {report.embedded} documents embedded for this "
            f"run · {report.seconds:.1f} s")
    if report.rerank_over:
        note += (f" · reranked: the top {report.rerank_depth} of {escape(MODE_NAMES.get(report.rerank_over, ''))} "
                 "reordered")
    return (f'<div class="rag-eval"><table class="rag-eval-table"><tr><th></th>{head}</tr>{"".join(rows)}</table>'
            f'<div class="rag-chart rag-eval-chart">{"".join(bars)}</div><div class="rag-eval-note">{note}</div></div>')


def _rank(rank: int | None) -> str:
    return "–" if rank is None else f"#{rank}"


def eval_changes(report: EvalReport | None, limit: int = 15) -> str:
    """The questions where reranking moved the first relevant document up, and those where it moved it down."""
    if report is None or not report.rerank_over:
        return ""

    def listing(title: str, changes: Sequence[Change], css: str) -> str:
        items = "".join(
            f'<li><span class="rag-marker {css}">{_rank(c.before)} → {_rank(c.after)}</span> {escape(c.question)}</li>'
            for c in changes[:limit]
        )
        more = f"<li>… and {len(changes) - limit} more</li>" if len(changes) > limit else ""
        return (f'<div class="rag-col"><h4>{title} <small>{len(changes)} questions · first relevant document, before '
                f'→ after reranking (– : not among the candidates)</small></h4><ul class="rag-changes">{items}{more}'
                "</ul></div>")

    def gain(c: Change) -> int:
        return (c.before or report.rerank_depth + 1) - (c.after or report.rerank_depth + 1)

    helped = sorted(report.helped, key=gain, reverse=True)
    hurt = sorted(report.hurt, key=gain)
    return (f'<div class="rag-compare">{listing("Reranking helped", helped, "up")}'
            f'{listing("Reranking hurt", hurt, "down")}</div>')


MARK_BADGES = {True: ('<span class="rag-marker up" title="marked relevant">✓ relevant</span>'),
               False: ('<span class="rag-marker down" title="marked not relevant">✗ not relevant</span>')}


def setup_title(label: str, r: Retrieval, setup: dict) -> str:
    """ "A: hybrid · reranked · top 3 of 10 · 2 documents" """
    parts = [STAGES.get(setup["stage"], STAGES["dense"])[0].replace(" retrieval", "").lower(),
             "reranked" if setup["rerank"] else "not reranked", f"top {setup['top_k']} of {len(r.candidates)}"]
    if setup["sources"]:
        parts.append(f"{len(setup['sources'])} documents")
    return f"{label}: " + " · ".join(parts)


def compare_view(c: Comparison | None, marks: dict[str, bool] | None = None,
                 scores: dict[str, dict[str, float | int | None]] | None = None) -> str:
    """Two setups side by side: each one's final top-k as cards (with where the passage stands in the other
    setup, and its mark), the time of each stage and, with marks, Precision@k, nDCG@k and the first relevant
    rank; above them the overlap, below them every passage's rank in A and in B."""
    if c is None:
        return '<div class="rag-empty">Ask a question to see setup A and setup B side by side.</div>'
    marks = marks or {}
    final = {"a": c.final(c.a), "b": c.final(c.b)}
    rank = {side: {h.id: i for i, h in enumerate(hits, 1)} for side, hits in final.items()}
    cols = []
    for side, r, s in (("a", c.a, c.setup_a.to_dict()), ("b", c.b, c.setup_b.to_dict())):
        other = "b" if side == "a" else "a"
        cards = []
        for i, h in enumerate(final[side], 1):
            there = rank[other].get(h.id)
            moved = (("=", "same") if there == i else (f"{other.upper()} #{there}", "up" if there > i else "down")
                     if there else (f"only in {side.upper()}", "new"))
            cards.append(_card(h, i, moved, False, r.first_stage if r.first_stage in STAGES else "dense", "–",
                               MARK_BADGES.get(marks.get(hit_key(h)), "")))
        t = r.timings
        shared = " (A's)" if side == "b" and c.shared else ""
        timing = (f'<div class="rag-timings"><span class="rag-timing"><b>embed</b> {t.embed_s:.2f} s</span>'
                  f'<span class="rag-timing"><b>search</b> {t.search_s:.2f} s{shared}</span>'
                  f'<span class="rag-timing"><b>rerank</b> {t.rerank_s:.2f} s</span></div>')
        got = (scores or {}).get(side)
        metrics = ""
        if got:
            first = got["first_relevant"]
            cells = "".join(f"<span class=\"rag-timing\"><b>{escape(k)}</b> {v:.3f}</span>" for k, v in got.items()
                            if k != "first_relevant" and isinstance(v, float))
            metrics = (f'<div class="rag-timings rag-metrics">{cells}<span class="rag-timing"><b>first relevant</b> '
                       f'{"–" if first is None else f"#{first}"}</span></div>')
        empty = '<div class="rag-pending">No passage.</div>'
        cols.append(f'<div class="rag-col" id="setup-{side}"><h4>{escape(setup_title(side.upper(), r, s))}</h4>'
                    f'{timing}{metrics}{"".join(cards) or empty}</div>')
    common = len(set(rank["a"]) & set(rank["b"]))
    k = max(c.a.top_k, c.b.top_k)
    reuse = f" · B reused A's {' and '.join(c.shared)}" if c.shared else ""
    head = f'<div class="rag-scope" id="overlap">Overlap {common} of {k} ({c.overlap:.2f}){reuse}</div>'
    rows = "".join(
        f"<tr><td>{'–' if a is None else f'#{a}'}</td><td>{'–' if b is None else f'#{b}'}</td>"
        f'<td>{_move(a, b)}</td><td>{escape(h.heading or "(no heading)")}</td>'
        f"<td>{escape(short_source(h.source))}</td></tr>"
        for h, a, b in c.moves()
    )
    table = ('<table class="rag-docs-table rag-moves" id="moves"><tr><th>A</th><th>B</th><th>move</th><th>passage'
             f"</th><th>source</th></tr>{rows}</table>")
    return f'{head}<div class="rag-compare">{"".join(cols)}</div>{table}'


def _move(a: int | None, b: int | None) -> str:
    if b is None:
        return '<span class="rag-marker down">only in A</span>'
    if a is None:
        return '<span class="rag-marker new">only in B</span>'
    if a == b:
        return '<span class="rag-marker same">=</span>'
    return f'<span class="rag-marker {"up" if b < a else "down"}">{"↑" if b < a else "↓"}{abs(a - b)} in B</span>'


CSS = """
.rag-compare { display: grid; grid-template-columns: 1fr 1fr; gap: 12px; }
.rag-col h4 { margin: 0 0 8px; font-size: 0.95rem; }
.rag-col h4 small { font-weight: normal; opacity: 0.65; margin-left: 4px; }
.rag-card { border: 1px solid var(--border-color-primary); border-radius: 10px; padding: 8px 10px; margin-bottom: 8px;
  background: var(--background-fill-secondary); }
.rag-card-head { display: flex; gap: 6px; align-items: baseline; }
.rag-rank { font-weight: 700; color: var(--color-accent); }
.rag-heading { font-weight: 600; flex: 1; }
.rag-marker { font-size: 0.75rem; padding: 1px 6px; border-radius: 8px; white-space: nowrap; }
.rag-marker.up { background: #dcfce7; color: #166534; } .rag-marker.down { background: #fee2e2; color: #991b1b; }
.rag-marker.new { background: #dbeafe; color: #1e40af; } .rag-marker.same { background: #f3f4f6; color: #374151; }
.rag-scores { display: flex; gap: 10px; font-size: 0.8rem; font-variant-numeric: tabular-nums; margin: 2px 0; }
.rag-source { font-size: 0.75rem; opacity: 0.65; word-break: break-all; }
.rag-snippet { font-size: 0.85rem; margin-top: 4px; }
.rag-full { white-space: pre-wrap; font-size: 0.8rem; max-height: 240px; overflow: auto; }
.rag-pending, .rag-empty { opacity: 0.7; padding: 12px; border: 1px dashed var(--border-color-primary);
  border-radius: 10px; }
.rag-chart { font-size: 0.78rem; }
.rag-bar-row { display: grid; grid-template-columns: 36% 1fr 88px; gap: 6px; align-items: center; opacity: 0.7; }
.rag-bar-row.kept { opacity: 1; font-weight: 600; }
.rag-bar-label { overflow: hidden; white-space: nowrap; text-overflow: ellipsis; }
.rag-bars { display: flex; flex-direction: column; gap: 1px; }
.rag-bar { display: block; height: 6px; border-radius: 3px; }
.rag-bar.ip, .rag-swatch.ip { background: #94a3b8; } .rag-bar.py, .rag-swatch.py { background: #6366f1; }
.rag-swatch { display: inline-block; width: 10px; height: 10px; border-radius: 2px; margin: 0 3px 0 8px; }
.rag-legend { margin-bottom: 4px; opacity: 0.8; }
.rag-bar-val { font-variant-numeric: tabular-nums; text-align: right; }
.rag-timings { display: flex; flex-wrap: wrap; gap: 12px; font-size: 0.82rem; }
.rag-eval-table { border-collapse: collapse; font-variant-numeric: tabular-nums; margin-bottom: 10px; }
.rag-eval-table th, .rag-eval-table td { padding: 3px 12px; text-align: right; }
.rag-eval-group { margin-bottom: 6px; } .rag-eval-metric { font-weight: 600; }
.rag-eval-bar-row { display: grid; grid-template-columns: 90px 1fr 56px; gap: 6px; align-items: center; }
.rag-bar.mode-dense { background: #94a3b8; } .rag-bar.mode-bm25 { background: #f59e0b; }
.rag-bar.mode-hybrid { background: #10b981; } .rag-bar.mode-rerank { background: #6366f1; }
.rag-eval-note { font-size: 0.8rem; opacity: 0.7; }
.rag-changes { font-size: 0.85rem; padding-left: 1.1em; }
.rag-scope { font-size: 0.82rem; opacity: 0.75; margin-bottom: 6px; }
.rag-docs { max-height: 420px; overflow: auto; }
.rag-docs-note { font-size: 0.82rem; opacity: 0.75; margin-bottom: 4px; }
.rag-docs-table { border-collapse: collapse; font-size: 0.85rem; font-variant-numeric: tabular-nums; width: 100%; }
.rag-docs-table th, .rag-docs-table td { padding: 3px 8px; text-align: left;
  border-bottom: 1px solid var(--border-color-primary); }
.rag-doc-name { word-break: break-all; }
@media (max-width: 900px) { .rag-compare { grid-template-columns: 1fr; } }
"""


def passage_html(view: PassageView | None, image: str = "", image_note: str = "") -> str:
    """A passage in its document (``rag.texts.locate``): the document's name and page, its text as converted (the
    Markdown source, escaped, not rendered) with the passage in a ``<mark id="passage-mark">`` between the text
    before and after it, and beside it the page's image when ``image`` (a ``data:image/png;base64,`` URI made by
    ``rag.ui_passage``) is given, or why not (``image_note``)."""
    if view is None:
        return ('<div class="rag-empty" id="passage-view">Click a card, or a citation [n] in the answer, to open the '
                "passage in its document.</div>")
    unit = "slide" if "#slide=" in view.source else "page"
    page = f" · {unit} {view.page}" if view.page else ""
    head = (f'<div class="rag-passage-head"><span class="rag-passage-doc">{escape(view.document)}</span>{page}'
            f'<span class="rag-source" title="{escape(view.source)}"> · {escape(short_source(view.source))}</span>'
            "</div>")
    note = ""
    if not view.kept:
        note = ("No text was kept for this document (it was indexed before texts were kept); add it again or "
                "rebuild the index to see it in its document. The passage alone:")
    elif not view.found:
        note = "The passage was not found in the document's kept text (was it changed since?). The passage alone:"
    cut_before = (f'<span class="rag-passage-cut">[… {view.cut_before:,} characters before …]</span>\n'
                  if view.cut_before else "")
    cut_after = (f'\n<span class="rag-passage-cut">[… {view.cut_after:,} characters after …]</span>'
                 if view.cut_after else "")
    text = (f'<pre class="rag-doc-text" id="passage-text">{cut_before}{escape(view.before)}'
            f'<mark id="passage-mark" class="rag-passage-mark">{escape(view.passage)}</mark>'
            f"{escape(view.after)}{cut_after}</pre>")
    figure = ""
    if image.startswith("data:image/png;base64,") and all(c.isalnum() or c in "+/=" for c in image[22:]):
        figure = (f'<figure class="rag-page-image" id="passage-page"><img src="{image}" '
                  f'alt="page {view.page} of {escape(view.document)}"><figcaption>Page {view.page}</figcaption>'
                  "</figure>")
    elif image_note:
        figure = f'<div class="rag-passage-note" id="passage-page-note">{escape(image_note)}</div>'
    notice = f'<div class="rag-passage-note">{note}</div>' if note else ""
    return (f'<div class="rag-passage" id="passage-view">{head}{notice}<div class="rag-passage-body">'
            f'<div class="rag-passage-scroll">{text}</div>{figure}</div></div>')


CSS += """
#comparison .rag-card, #comparison-ab .rag-card { cursor: pointer; }
#comparison .rag-card:hover, #comparison-ab .rag-card:hover { border-color: var(--color-accent); }
.rag-passage { border: 1px solid var(--border-color-primary); border-radius: 10px; padding: 8px 10px;
  scroll-margin-top: 12px; }
.rag-passage-head { font-size: 0.85rem; margin-bottom: 6px; } .rag-passage-doc { font-weight: 600; }
.rag-passage-body { display: flex; gap: 10px; align-items: flex-start; }
.rag-passage-scroll { flex: 3; max-height: 520px; overflow: auto; min-width: 0; }
.rag-doc-text { white-space: pre-wrap; word-break: break-word; font-size: 0.8rem; margin: 0; }
.rag-passage-mark { background: #fde68a; color: #111827; scroll-margin: 40px; padding: 1px 0; }
.rag-passage-cut, .rag-passage-note { opacity: 0.7; font-size: 0.8rem; }
.rag-page-image { flex: 3; margin: 0; min-width: 0; } .rag-page-image img { width: 100%;
  border: 1px solid var(--border-color-primary); }
.rag-page-image figcaption { font-size: 0.75rem; opacity: 0.7; text-align: center; }
@media (max-width: 900px) { .rag-passage-body { flex-direction: column; } }
"""
