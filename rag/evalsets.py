"""Evaluation sets: a BEIR folder (its own corpus) or a CSV of questions over the documents already indexed.

BEIR layout: ``corpus.jsonl`` (``_id``, ``title``, ``text``), ``queries.jsonl`` (``_id``, ``text``) and
``qrels/SPLIT.tsv`` (query-id, corpus-id, score; a header line). Each document becomes one chunk whose text is the
title and the text joined by a space, as MTEB embeds them, and whose ``source`` is the BEIR document id. Only the
queries with a relevant document in the split are kept.

CSV: columns ``question`` and ``expected_source`` (and optionally ``lang``). A hit counts as the expected one when
its heading is that text (ignoring case and spacing), its source path ends with it (``faq/product_faq.md``; a
PDF's page ``report.pdf#page=2`` counts as ``report.pdf`` too), or its source's anchor is that text's (letters and
digits alike, ignoring case: ``product_faq.md#How-much-does-Milvus-cost`` is the entry "How much does Milvus
cost?", so one English heading names the entry in the English pages and in their translations).

Relevance marks (``rag.marks``): a CSV with the columns ``question``, ``document``, ``text`` and ``relevant``; each
question with a passage marked relevant is kept, and a hit is relevant when its document and text are a marked
passage's (``read_marks``; ``read_csv`` hands such a file to it).

Leaves out: BEIR's other files (``corpus`` in other formats, per-query metadata) and graded CSV labels.
"""

from __future__ import annotations

import csv
import hashlib
import json
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from rag.documents import chunk_id
from rag.errors import EvaluationSetError
from rag.marks import Mark, Marks, hit_key, normal_question
from rag.types import Chunk, Hit

MARK_COLUMNS = {"question", "document", "text", "relevant"}  # a CSV of relevance marks (``rag.marks``)
RECIPE = "title + ' ' + text, v1"  # part of the corpus hash: a new recipe must not reuse old embeddings


@dataclass(frozen=True)
class EvalSet:
    """Questions with their relevant documents, and the corpus to index (empty: use the collection as it is)."""

    name: str
    queries: dict[str, str]  # query id -> question
    qrels: dict[str, dict[str, int]]  # query id -> {document key: relevance grade > 0}
    corpus: tuple[Chunk, ...] = ()
    corpus_hash: str = ""  # sha256 of corpus.jsonl and RECIPE; names the collection the corpus goes into
    expected: dict[str, str] = field(default_factory=dict)  # CSV: query id -> the expected heading or path
    passages: bool = False  # marks: a hit's key is its passage (document and text), ``rag.marks.hit_key``

    def key(self, query_id: str, hit: Hit) -> str:
        """The document key of ``hit`` as the qrels name it: the BEIR id, the marked passage, or the CSV's expected
        text on a match."""
        if self.corpus:
            return hit.source
        if self.passages:
            return hit_key(hit)
        expected = self.expected.get(query_id, "")
        return expected if matches(hit, expected) else hit.id

    def ranking(self, query_id: str, hits: tuple[Hit, ...]) -> list[str]:
        """Document keys, best first, each once (chunks of one expected entry count as one document)."""
        keys = (self.key(query_id, h) for h in hits)
        return list(dict.fromkeys(keys))


def _norm(text: str) -> str:
    return " ".join(text.split()).casefold()


_PAGE = re.compile(r"(page|slide)=\d+$")


def _letters(text: str) -> str:
    """Letters and digits only, case folded: a heading and its HTML anchor (``How-much-does-Milvus-cost``) agree."""
    return "".join(c for c in text.casefold() if c.isalnum())


def matches(hit: Hit, expected: str) -> bool:
    """True when the hit's heading is ``expected``, its source's anchor is that of ``expected`` (``#How-much-…``),
    or its source path ends with it (at a path boundary). A page or slide of a file (``report.pdf#page=2``) matches
    the file's name, and the page's own name."""
    if not expected.strip():
        return False
    if _norm(hit.heading) == _norm(expected):
        return True
    anchor = hit.source.rsplit("#", 1)[1] if "#" in hit.source else ""
    if anchor and not _PAGE.match(anchor) and _letters(anchor) == _letters(expected):
        return True
    source, want = hit.source.replace("\\", "/"), expected.strip().replace("\\", "/").lstrip("/")
    sources = {source, source.split("#", 1)[0]} if "#" not in want else {source}
    return any(s == want or s.endswith("/" + want) for s in sources)


def read_beir(folder: str | Path, split: str = "test", limit: int | None = None) -> EvalSet:
    """The BEIR dataset in ``folder``: its ``split`` qrels and queries (the first ``limit``) and the whole corpus."""
    folder = Path(folder).expanduser()
    qrels_file = folder / "qrels" / f"{split}.tsv"
    for path in (folder / "corpus.jsonl", folder / "queries.jsonl"):
        if not path.is_file():
            raise EvaluationSetError(f"{path} is missing: --beir needs a BEIR folder with corpus.jsonl, "
                                     "queries.jsonl and qrels/SPLIT.tsv.")
    if not qrels_file.is_file():
        found = sorted(p.stem for p in (folder / "qrels").glob("*.tsv"))
        raise EvaluationSetError(f"{qrels_file} is missing; choose a split with --split "
                                 f"({', '.join(found) or 'no qrels/*.tsv found'}).")
    qrels: dict[str, dict[str, int]] = {}
    with open(qrels_file, encoding="utf-8") as f:
        for n, row in enumerate(csv.reader(f, delimiter="\t"), 1):
            if len(row) < 3 or (n == 1 and not row[2].strip().lstrip("-").isdigit()):
                continue  # the header, or a blank line
            try:
                grade = int(row[2])
            except ValueError:
                msg = f"{qrels_file} line {n}: the score {row[2]!r} is not a whole number."
                raise EvaluationSetError(msg) from None
            if grade > 0:
                qrels.setdefault(row[0], {})[row[1]] = grade
    texts = {row["_id"]: row.get("text", "") for row in _jsonl(folder / "queries.jsonl")}
    queries = {q: texts[q] for q in qrels if texts.get(q, "").strip()}
    if limit:
        queries = dict(list(queries.items())[:limit])
    if not queries:
        raise EvaluationSetError(f"No query of {qrels_file} has a relevant document and a text in queries.jsonl.")
    digest = hashlib.sha256(RECIPE.encode())
    with open(folder / "corpus.jsonl", "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    corpus = tuple(_document(row) for row in _jsonl(folder / "corpus.jsonl"))
    return EvalSet(folder.resolve().name, queries, {q: qrels[q] for q in queries}, corpus, digest.hexdigest())


def _document(row: dict) -> Chunk:
    doc_id = str(row["_id"])
    title, text = row.get("title") or "", row.get("text") or ""
    # Milvus ids here are at most 64 characters; a longer BEIR id is hashed, and kept whole in ``source``
    return Chunk(doc_id if len(doc_id) <= 64 else chunk_id(doc_id), f"{title} {text}".strip(), doc_id, title)


def _jsonl(path: Path) -> list[dict]:
    rows = []
    with open(path, encoding="utf-8") as f:
        for n, line in enumerate(f, 1):
            if line.strip():
                try:
                    rows.append(json.loads(line))
                except json.JSONDecodeError as exc:
                    raise EvaluationSetError(f"{path} line {n} is not JSON ({exc.msg}).") from None
                if "_id" not in rows[-1]:
                    raise EvaluationSetError(f"{path} line {n} has no \"_id\".")
    return rows


def read_csv(path: str | Path, lang: str | None = None, limit: int | None = None) -> EvalSet:
    """Questions from a CSV with ``question`` and ``expected_source`` columns (rows of ``lang`` only, if given)."""
    path = Path(path).expanduser()
    if not path.is_file():
        raise EvaluationSetError(f"{path} is not a file; give a CSV with question,expected_source columns.")
    try:
        with open(path, encoding="utf-8-sig", newline="") as f:
            rows = list(csv.DictReader(f))
    except (UnicodeDecodeError, csv.Error) as exc:
        raise EvaluationSetError(f"{path} is not a UTF-8 CSV file ({exc}).") from None
    columns = set(rows[0]) if rows else set()
    if MARK_COLUMNS <= columns:
        return read_marks(path, limit)
    if not {"question", "expected_source"} <= columns:
        raise EvaluationSetError(f"{path} needs a header line with the columns question,expected_source "
                                 "(and optionally lang).")
    queries, expected = {}, {}
    for n, row in enumerate(rows, 2):  # line numbers as an editor shows them, after the header
        if lang and (row.get("lang") or "").strip() != lang:
            continue
        question, want = (row.get("question") or "").strip(), (row.get("expected_source") or "").strip()
        if question and want:
            queries[str(n)], expected[str(n)] = question, want
    if limit:
        queries = dict(list(queries.items())[:limit])
    if not queries:
        raise EvaluationSetError(f"{path} has no row with both a question and an expected_source"
                                 + (f" in language {lang!r}." if lang else "."))
    qrels = {q: {expected[q]: 1} for q in queries}
    return EvalSet(path.stem, queries, qrels, expected={q: expected[q] for q in queries})


def read_marks(path: str | Path, limit: int | None = None) -> EvalSet:
    """The relevance marks in ``path`` (``rag.marks``) as an evaluation set (``marks_set``)."""
    evalset = marks_set(Marks(path).all(), Path(path).stem, limit=limit)
    if not evalset.queries:
        raise EvaluationSetError(f"{path} has no passage marked relevant yet: mark passages in the Compare tab "
                                 "first.")
    return evalset


def marks_set(marks: Sequence[Mark], name: str = "marks", question: str | None = None,
              limit: int | None = None) -> EvalSet:
    """Marks as an evaluation set: one query per question with a passage marked relevant (only ``question``, when
    given), in the order they were first marked; it may be empty."""
    only = normal_question(question) if question is not None else None
    queries: dict[str, str] = {}
    qrels: dict[str, dict[str, int]] = {}
    ids: dict[str, str] = {}
    for m in marks:
        q = normal_question(m.question)
        if m.relevant and only in (None, q):
            qid = ids.setdefault(q, str(len(ids) + 1))
            queries[qid] = q
            qrels.setdefault(qid, {})[m.key] = 1
    if limit:
        queries = dict(list(queries.items())[:limit])
    return EvalSet(name, queries, {q: qrels[q] for q in queries}, passages=True)


def load_set(path: str | Path, split: str = "test", limit: int | None = None, lang: str | None = None) -> EvalSet:
    """A BEIR folder or a CSV file, whichever ``path`` is."""
    path = Path(str(path).strip()).expanduser()
    if path.is_dir():
        return read_beir(path, split, limit)
    if path.suffix.lower() == ".csv":
        return read_csv(path, lang, limit)
    raise EvaluationSetError(f"{str(path)!r} is neither a BEIR folder nor a .csv file.")
