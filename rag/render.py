"""HTML for the web app's comparison panel, chart, timings, sources and evaluation view. Pure functions: records
in, HTML out, in the language ``lang`` (a table of ``rag.locales``; "en" when not given), whose texts come from the
tables only.

Every piece of document text, source and heading is escaped here: documents are untrusted, and nothing inside them
may become markup or script in the page.
"""

from __future__ import annotations

from collections.abc import Sequence
from html import escape
from typing import TYPE_CHECKING

from rag.locales import t
from rag.marks import hit_key
from rag.types import Comparison, DocumentInfo, Hit, PassageView, Retrieval

if TYPE_CHECKING:
    from rag.evaluation import Change, EvalReport

SNIPPET_CHARS = 220
# first stage -> the locale keys of (column title, what its score is, the score's short label on a card)
STAGES = {stage: (f"stage.{stage}.title", f"stage.{stage}.what", f"stage.{stage}.score")
          for stage in ("dense", "bm25", "hybrid")}


def stage_text(stage: str, part: int, lang: str = "en") -> str:
    """Part 0 (title), 1 (what its score is) or 2 (the score's label) of a first stage, in ``lang``."""
    return t(lang, STAGES.get(stage, STAGES["dense"])[part])


def rank_marker(hit: Hit, top_k: int, lang: str = "en") -> tuple[str, str]:
    """(text, css class) for a reranked hit: ↑2 / ↓1 against its dense rank, "new" if it was outside the dense top-k."""
    if hit.rerank_rank is None:
        return "", ""
    if hit.dense_rank > top_k:
        return t(lang, "card.new"), "new"
    moved = hit.dense_rank - hit.rerank_rank
    if moved > 0:
        return f"↑{moved}", "up"
    if moved < 0:
        return f"↓{-moved}", "down"
    return "=", "same"


def dense_marker(hit: Hit, top_k: int, lang: str = "en") -> tuple[str, str]:
    """(text, css class) for a dense hit: where reranking put it."""
    if hit.rerank_rank is None:
        return "", ""
    if hit.rerank_rank > top_k:
        return t(lang, "card.out", rank=hit.rerank_rank), "down"
    moved = hit.dense_rank - hit.rerank_rank
    return (f"→ #{hit.rerank_rank}", "up" if moved > 0 else "down" if moved < 0 else "same")


def _card(hit: Hit, n: int, marker: tuple[str, str], cite: bool, stage: str = "dense", unranked: str = "…",
          badge: str = "", lang: str = "en") -> str:
    body = hit.text[len(hit.heading):] if hit.heading and hit.text.startswith(hit.heading) else hit.text
    text = " ".join(body.split())  # the heading is shown above it already
    snippet = text if len(text) <= SNIPPET_CHARS else text[:SNIPPET_CHARS].rsplit(" ", 1)[0] + " …"
    p_yes = unranked if hit.rerank_score is None else f"{hit.rerank_score:.3f}"
    label = f"[{n}]" if cite else f"#{n}"
    mark = f'<span class="rag-marker {marker[1]}">{escape(marker[0])}</span>' if marker[0] else ""
    return (
        f'<div class="rag-card" data-id="{escape(hit.id)}">'
        f'<div class="rag-card-head"><span class="rag-rank">{label}</span>'
        f'<span class="rag-heading">{escape(hit.heading or t(lang, "card.no_heading"))}</span>{mark}{badge}</div>'
        f'<div class="rag-scores"><span title="{escape(stage_text(stage, 1, lang))}">'
        f'{escape(stage_text(stage, 2, lang))} {hit.dense_score:.3f}</span>'
        f'<span title="{escape(t(lang, "card.p_yes_title"))}">{escape(t(lang, "card.p_yes"))} {p_yes}</span></div>'
        f'<div class="rag-source" title="{escape(hit.source)}">{escape(short_source(hit.source))}</div>'
        f'<div class="rag-snippet">{escape(snippet)}</div>'
        f'<details><summary>{escape(t(lang, "card.full_text"))}</summary><pre class="rag-full">{escape(hit.text)}'
        "</pre></details></div>"
    )


def pending(text: str) -> str:
    """A panel's placeholder while it waits ("Searching…"), ``text`` already in the user's language."""
    return f'<div class="rag-pending">{escape(text)}</div>'


def comparison(r: Retrieval | None, reranking: bool = False, scope: str = "", lang: str = "en") -> str:
    """Dense top-k and reranked top-k side by side; the reranked side says so while it is still being computed.
    ``scope`` says what was searched ("3 of 41 documents")."""
    if r is None:
        return f'<div class="rag-empty">{escape(t(lang, "compare_panel.empty"))}</div>'
    stage = r.first_stage if r.first_stage in STAGES else "dense"
    title, what = stage_text(stage, 0, lang), stage_text(stage, 1, lang)
    dense = "".join(_card(h, h.dense_rank, dense_marker(h, r.top_k, lang), False, stage, lang=lang) for h in r.dense)
    right = "".join(_card(h, i, rank_marker(h, r.top_k, lang), True, stage, lang=lang)
                    for i, h in enumerate(r.reranked, 1))
    if r.reranked and len(r.reranked_all) < len(r.candidates):  # still going: the best so far, and how far
        progress = t(lang, "compare_panel.reranking_of", done=len(r.reranked_all), total=len(r.candidates))
        right = f'<div class="rag-pending rag-progress">{escape(progress)}</div>{right}'
    elif not r.reranked and reranking:
        right = pending(t(lang, "compare_panel.reranking", total=len(r.candidates)))
    elif not r.reranked:
        notice = notice_text(r, lang)
        why = t(lang, "compare_panel.not_reranked_why", why=notice) if notice else t(lang, "compare_panel.not_reranked")
        right = f'<div class="rag-pending rag-unranked">{escape(why)}</div>'
    searched = (f'<div class="rag-scope" id="scope">{escape(t(lang, "compare_panel.searched", scope=scope))}</div>'
                if scope else "")
    top = t(lang, "compare_panel.top_of", top_k=min(r.top_k, len(r.candidates)), total=len(r.candidates))
    return (
        f'{searched}<div class="rag-compare">'
        f'<div class="rag-col" id="dense-col"><h4>{escape(title)} <small>{escape(what)} · {escape(top)}'
        f'</small></h4>{dense}</div>'
        f'<div class="rag-col" id="rerank-col"><h4>{escape(t(lang, "compare_panel.reranked"))} '
        f'<small>{escape(t(lang, "compare_panel.reranked_what"))}</small></h4>{right}</div>'
        "</div>"
    )


def notice_text(r: Retrieval, lang: str = "en") -> str:
    """The retrieval's notice in ``lang``: its keyed parts translated, or the English notice when it has none."""
    if r.notices:
        return " ".join(t(lang, key, **params) for key, params in r.notices)
    return r.notice


def scope_text(sources: Sequence[str], total: int, lang: str = "en") -> str:
    """What a question searched: "all 41 documents", or "3 of 41 documents: a.md, b.pdf, …"."""
    if not sources:
        return t(lang, "compare_panel.scope_one" if total == 1 else "compare_panel.scope_all", total=total)
    names = ", ".join(short_source(s) for s in sources[:3]) + (", …" if len(sources) > 3 else "")
    return t(lang, "compare_panel.scope_some", n=len(sources), total=total, names=names)


def documents_table(docs: Sequence[DocumentInfo], total: int, limit: int, lang: str = "en") -> str:
    """The documents of the collection as a table (the first ``limit`` of ``docs``, which are those of ``total``
    that match the filter). Names are escaped: a document's name is as untrusted as its text."""
    if not total:
        return f'<div class="rag-empty">{escape(t(lang, "documents_table.empty"))}</div>'
    rows = "".join(
        f'<tr><td class="rag-doc-name" title="{escape(d.source)}">{escape(d.source)}</td>'
        f"<td>{escape(d.format)}</td><td>{d.pages}</td><td>{d.chunks}</td><td>{d.chars:,}</td>"
        f'<td>{d.to_dict()["added"].replace("T", " ").rstrip("Z")}</td><td>{escape(d.added_by)}</td></tr>'
        for d in docs[:limit]
    )
    shown = min(len(docs), limit)
    note = (t(lang, "documents_table.count", total=total) if len(docs) == total and shown == total
            else t(lang, "documents_table.match", n=len(docs), total=total)
            + (t(lang, "documents_table.first_shown", shown=shown) if shown < len(docs) else ""))
    head = "".join(f"<th>{escape(t(lang, f'documents_table.{col}'))}</th>"
                   for col in ("document", "format", "pages", "chunks", "characters", "added", "added_by"))
    return (f'<div class="rag-docs"><div class="rag-docs-note">{escape(note)}</div><table class="rag-docs-table">'
            f"<tr>{head}</tr>{rows}</table></div>")


def chart(r: Retrieval | None, lang: str = "en") -> str:
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
            f'<span class="rag-bar-label">#{h.dense_rank} {escape(h.heading[:38] or t(lang, "card.no_heading"))}</span>'
            f'<span class="rag-bars"><span class="rag-bar ip" style="width:{ip:.1f}%"></span>'
            f'<span class="rag-bar py" style="width:{py:.1f}%"></span></span>'
            f'<span class="rag-bar-val">{h.dense_score:.2f} · '
            f'{"…" if h.rerank_score is None else f"{h.rerank_score:.2f}"}</span></div>'
        )
    legend = (f'<div class="rag-legend"><span class="rag-swatch ip"></span>{escape(t(lang, "chart.ip"))} '
              f'<span class="rag-swatch py"></span>{escape(t(lang, "chart.p_yes"))}</div>')
    return f'<div class="rag-chart">{legend}{"".join(rows)}</div>'


TIMING_KEYS = {name: f"timing.{name}" for name in ("embed", "search", "first_card", "rerank", "first_token", "total")}


def timings(parts: Sequence[tuple[str, float | None]], lang: str = "en") -> str:
    """The time of each stage (``parts``: (stage, seconds or None) pairs, by the stage names of ``TIMING_KEYS``)."""
    cells = "".join(
        f'<span class="rag-timing"><b>{escape(t(lang, TIMING_KEYS[name]) if name in TIMING_KEYS else name)}</b> '
        f'{"–" if v is None else t(lang, "timing.seconds", s=v)}</span>'
        for name, v in parts
    )
    return f'<div class="rag-timings">{cells}</div>'


def sources_header(lang: str = "en") -> str:
    """The line between an answer and its sources list (``app.to_turns`` cuts answers there, in any language)."""
    return f"\n\n**{t(lang, 'answer.sources')}**  \n"


SOURCES_HEADER = sources_header()


def short_source(source: str) -> str:
    """The last two parts of a path: enough to recognise a file without a wall of folders."""
    parts = source.replace("\\", "/").rstrip("/").split("/")
    return "/".join(parts[-2:])


def sources_markdown(hits: Sequence[Hit], lang: str = "en") -> str:
    """The list under an answer that its [n] citations point at (escaped for the chat's markdown)."""
    lines = [f"[{i}] {md_escape(h.heading or t(lang, 'card.no_heading'))} · *{md_escape(short_source(h.source))}*"
             for i, h in enumerate(hits, 1)]
    return sources_header(lang) + "  \n".join(lines)


def passages_only(hits: Sequence[Hit], lang: str = "en") -> str:
    """The answer shown when there is no LLM, in ``lang``: the notice, then the passages, numbered, with their
    sources (the UI's form of ``rag.generation.retrieval_only``; escaped for the chat's markdown)."""
    parts = [t(lang, "answer.passages_only")]
    parts += [f"[{i}] {h.heading or t(lang, 'card.no_heading')} ({h.source})\n{h.text}" for i, h in enumerate(hits, 1)]
    return md_escape("\n\n".join(parts))


def md_escape(text: str) -> str:
    """Document text made inert for a markdown renderer: HTML escaped, so tags show as text."""
    return escape(text, quote=False)


MODE_NAMES = {"dense": "Dense", "bm25": "BM25", "hybrid": "Hybrid", "rerank": "Reranked"}  # the CLI's names


def mode_name(mode: str, lang: str = "en") -> str:
    return t(lang, f"mode.{mode}") if mode in MODE_NAMES else mode


def eval_metrics(report: EvalReport | None, lang: str = "en") -> str:
    """The metrics of each mode side by side: a table (best of each row in bold), bars, and what was run."""
    if report is None:
        return f'<div class="rag-empty">{escape(t(lang, "eval_view.empty"))}</div>'
    modes = list(report.metrics)
    metrics = list(next(iter(report.metrics.values()), {}))
    head = "".join(f"<th>{escape(mode_name(m, lang))}</th>" for m in modes)
    rows, bars = [], []
    for metric in metrics:
        values = [report.metrics[m][metric] for m in modes]
        best = max(values, default=0.0)
        cells = "".join(f"<td>{'<b>' if v == best else ''}{v:.3f}{'</b>' if v == best else ''}</td>" for v in values)
        rows.append(f"<tr><th>{escape(metric)}</th>{cells}</tr>")
        group = "".join(
            f'<div class="rag-eval-bar-row"><span class="rag-bar-label">{escape(mode_name(m, lang))}</span>'
            f'<span class="rag-bars"><span class="rag-bar mode-{escape(m)}" style="width:{min(max(v, 0), 1):.1%}">'
            f'</span></span><span class="rag-bar-val">{v:.3f}</span></div>'
            for m, v in zip(modes, values, strict=True)
        )
        bars.append(f'<div class="rag-eval-group"><div class="rag-eval-metric">{escape(metric)}</div>{group}</div>')
    note = escape(t(lang, "eval_view.note", name=report.name, questions=len(report.qrels), embedded=report.embedded,
                    seconds=report.seconds))
    if report.rerank_over:
        note += escape(t(lang, "eval_view.note_reranked", depth=report.rerank_depth,
                         mode=mode_name(report.rerank_over, lang)))
    return (f'<div class="rag-eval"><table class="rag-eval-table"><tr><th></th>{head}</tr>{"".join(rows)}</table>'
            f'<div class="rag-chart rag-eval-chart">{"".join(bars)}</div><div class="rag-eval-note">{note}</div></div>')


def _rank(rank: int | None) -> str:
    return "–" if rank is None else f"#{rank}"


def eval_changes(report: EvalReport | None, limit: int = 15, lang: str = "en") -> str:
    """The questions where reranking moved the first relevant document up, and those where it moved it down."""
    if report is None or not report.rerank_over:
        return ""

    def listing(title: str, changes: Sequence[Change], css: str) -> str:
        items = "".join(
            f'<li><span class="rag-marker {css}">{_rank(c.before)} → {_rank(c.after)}</span> {escape(c.question)}</li>'
            for c in changes[:limit]
        )
        more = f"<li>{escape(t(lang, 'eval_view.more', n=len(changes) - limit))}</li>" if len(changes) > limit else ""
        what = t(lang, "eval_view.changes_what", n=len(changes))
        return (f'<div class="rag-col"><h4>{escape(title)} <small>{escape(what)}</small></h4>'
                f'<ul class="rag-changes">{items}{more}</ul></div>')

    def gain(c: Change) -> int:
        return (c.before or report.rerank_depth + 1) - (c.after or report.rerank_depth + 1)

    helped = sorted(report.helped, key=gain, reverse=True)
    hurt = sorted(report.hurt, key=gain)
    return (f'<div class="rag-compare">{listing(t(lang, "eval_view.helped"), helped, "up")}'
            f'{listing(t(lang, "eval_view.hurt"), hurt, "down")}</div>')


def mark_badge(relevant: bool | None, lang: str = "en") -> str:
    """The badge of a marked passage: ✓ relevant, ✗ not relevant; none when it is not marked."""
    if relevant is None:
        return ""
    css, key = ("up", "marks.badge_relevant") if relevant else ("down", "marks.badge_not_relevant")
    return f'<span class="rag-marker {css}">{escape(t(lang, key))}</span>'


def setup_title(label: str, r: Retrieval, setup: dict, lang: str = "en") -> str:
    """ "A: hybrid · reranked · top 3 of 10 · 2 documents" """
    stage = setup["stage"] if setup["stage"] in STAGES else "dense"
    parts = [t(lang, f"stage.{stage}.short"),
             t(lang, "setup.reranked") if setup["rerank"] else t(lang, "setup.not_reranked"),
             t(lang, "compare_panel.top_of", top_k=min(setup["top_k"], len(r.candidates)), total=len(r.candidates))]
    if setup["sources"]:
        parts.append(t(lang, "setup.documents", n=len(setup["sources"])))
    return f"{label}: " + " · ".join(parts)


def compare_view(c: Comparison | None, marks: dict[str, bool] | None = None,
                 scores: dict[str, dict[str, float | int | None]] | None = None, lang: str = "en") -> str:
    """Two setups side by side: each one's final top-k as cards (with where the passage stands in the other
    setup, and its mark), the time of each stage and, with marks, Precision@k, nDCG@k and the first relevant
    rank; above them the overlap, below them every passage's rank in A and in B."""
    if c is None:
        return f'<div class="rag-empty">{escape(t(lang, "setup.empty"))}</div>'
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
                     if there else (t(lang, "setup.only_in", side=side.upper()), "new"))
            cards.append(_card(h, i, moved, False, r.first_stage if r.first_stage in STAGES else "dense", "–",
                               mark_badge(marks.get(hit_key(h)), lang), lang))
        took = r.timings
        shared = t(lang, "setup.shared") if side == "b" and c.shared else ""
        timing = "".join(
            f'<span class="rag-timing"><b>{escape(t(lang, f"timing.{stage}"))}</b> '
            f'{escape(t(lang, "timing.seconds", s=secs))}{escape(shared) if stage == "search" else ""}</span>'
            for stage, secs in (("embed", took.embed_s), ("search", took.search_s), ("rerank", took.rerank_s)))
        timing = f'<div class="rag-timings">{timing}</div>'
        got = (scores or {}).get(side)
        metrics = ""
        if got:
            first = got["first_relevant"]
            cells = "".join(f"<span class=\"rag-timing\"><b>{escape(k)}</b> {v:.3f}</span>" for k, v in got.items()
                            if k != "first_relevant" and isinstance(v, float))
            metrics = (f'<div class="rag-timings rag-metrics">{cells}<span class="rag-timing"><b>'
                       f'{escape(t(lang, "setup.first_relevant"))}</b> {"–" if first is None else f"#{first}"}</span>'
                       "</div>")
        empty = pending(t(lang, "setup.no_passage"))
        cols.append(f'<div class="rag-col" id="setup-{side}"><h4>{escape(setup_title(side.upper(), r, s, lang))}</h4>'
                    f'{timing}{metrics}{"".join(cards) or empty}</div>')
    common = len(set(rank["a"]) & set(rank["b"]))
    k = max(c.a.top_k, c.b.top_k)
    stages = t(lang, "setup.and").join(t(lang, SHARED_KEYS[x]) if x in SHARED_KEYS else x for x in c.shared)
    reuse = t(lang, "setup.reused", stages=stages) if c.shared else ""
    overlap = t(lang, "setup.overlap", common=common, k=k, overlap=c.overlap) + reuse
    head = f'<div class="rag-scope" id="overlap">{escape(overlap)}</div>'
    rows = "".join(
        f"<tr><td>{'–' if a is None else f'#{a}'}</td><td>{'–' if b is None else f'#{b}'}</td>"
        f'<td>{_move(a, b, lang)}</td><td>{escape(h.heading or t(lang, "card.no_heading"))}</td>'
        f"<td>{escape(short_source(h.source))}</td></tr>"
        for h, a, b in c.moves()
    )
    head_row = "".join(f"<th>{escape(text)}</th>" for text in (
        "A", "B", t(lang, "setup.move"), t(lang, "setup.passage"), t(lang, "setup.source")))
    table = f'<table class="rag-docs-table rag-moves" id="moves"><tr>{head_row}</tr>{rows}</table>'
    return f'{head}<div class="rag-compare">{"".join(cols)}</div>{table}'


SHARED_KEYS = {"first stage": "setup.shared_first_stage", "rerank": "setup.shared_rerank"}  # Comparison.shared


def _move(a: int | None, b: int | None, lang: str = "en") -> str:
    if b is None:
        return f'<span class="rag-marker down">{escape(t(lang, "setup.only_in", side="A"))}</span>'
    if a is None:
        return f'<span class="rag-marker new">{escape(t(lang, "setup.only_in", side="B"))}</span>'
    if a == b:
        return '<span class="rag-marker same">=</span>'
    moved = t(lang, "setup.moved_in_b", arrow="↑" if b < a else "↓", n=abs(a - b))
    return f'<span class="rag-marker {"up" if b < a else "down"}">{escape(moved)}</span>'


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


def passage_html(view: PassageView | None, image: str = "", image_note: str = "", lang: str = "en") -> str:
    """A passage in its document (``rag.texts.locate``): the document's name and page, its text as converted (the
    Markdown source, escaped, not rendered) with the passage in a ``<mark id="passage-mark">`` between the text
    before and after it, and beside it the page's image when ``image`` (a ``data:image/png;base64,`` URI made by
    ``rag.ui_passage``) is given, or why not (``image_note``)."""
    if view is None:
        return f'<div class="rag-empty" id="passage-view">{escape(t(lang, "passage.empty"))}</div>'
    unit = "passage.slide" if "#slide=" in view.source else "passage.page"
    page = f" · {escape(t(lang, unit, n=view.page))}" if view.page else ""
    head = (f'<div class="rag-passage-head"><span class="rag-passage-doc">{escape(view.document)}</span>{page}'
            f'<span class="rag-source" title="{escape(view.source)}"> · {escape(short_source(view.source))}</span>'
            "</div>")
    note = ""
    if not view.kept:
        note = escape(t(lang, "passage.not_kept"))
    elif not view.found:
        note = escape(t(lang, "passage.not_found"))
    cut_before = (f'<span class="rag-passage-cut">{escape(t(lang, "passage.cut_before", n=view.cut_before))}</span>\n'
                  if view.cut_before else "")
    cut_after = (f'\n<span class="rag-passage-cut">{escape(t(lang, "passage.cut_after", n=view.cut_after))}</span>'
                 if view.cut_after else "")
    text = (f'<pre class="rag-doc-text" id="passage-text">{cut_before}{escape(view.before)}'
            f'<mark id="passage-mark" class="rag-passage-mark">{escape(view.passage)}</mark>'
            f"{escape(view.after)}{cut_after}</pre>")
    figure = ""
    if image.startswith("data:image/png;base64,") and all(c.isalnum() or c in "+/=" for c in image[22:]):
        alt = t(lang, "passage.image_alt", n=view.page, document=view.document)
        figure = (f'<figure class="rag-page-image" id="passage-page"><img src="{image}" alt="{escape(alt)}">'
                  f'<figcaption>{escape(t(lang, "passage.page_caption", n=view.page))}</figcaption></figure>')
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
