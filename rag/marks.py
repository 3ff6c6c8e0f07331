"""Relevance marks: a person's word that a passage answers a question, or does not, kept as one CSV file.

The file is ``RAG_DATA_DIR/marks.csv`` with the columns ``question``, ``document``, ``text``, ``relevant`` (1 or
0) and ``marked`` (UTC time). A mark names its passage by the document's name and the passage's text, not by the
chunk id, so it survives a re-index of unchanged text (and a new chunk id scheme); the CSV is what people can read,
edit and download, and ``rag.evalsets`` reads it as an evaluation set beside the other CSVs (BEIR qrels would need
a corpus of ids, which the collection does not keep stable). One mark per (question, passage): marking again
replaces it; unmarking removes it. Writes are atomic (a temporary file, then a rename).

Leaves out: scoring (``rag.evaluation``) and the UI (``rag.ui_compare``).
"""

from __future__ import annotations

import csv
import hashlib
import io
import threading
import time
from dataclasses import dataclass
from pathlib import Path

from rag.types import Hit, origin_of

COLUMNS = ("question", "document", "text", "relevant", "marked")


def normal_question(question: str) -> str:
    return " ".join(question.split())


def passage_key(document: str, text: str) -> str:
    """A passage as marks name it: its document and its text (white space folded)."""
    return hashlib.sha256(f"{document}\x00{' '.join(text.split())}".encode()).hexdigest()[:24]


def hit_key(hit: Hit) -> str:
    return passage_key(hit.document or origin_of(hit.source), hit.text)


@dataclass(frozen=True)
class Mark:
    question: str
    document: str
    text: str
    relevant: bool
    marked: str = ""

    @property
    def key(self) -> str:
        return passage_key(self.document, self.text)


class Marks:
    """The marks in ``path`` (a CSV; missing: no marks yet)."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self._lock = threading.Lock()

    def all(self) -> list[Mark]:
        if not self.path.exists():
            return []
        with open(self.path, encoding="utf-8", newline="") as f:
            return [Mark(r["question"], r["document"], r["text"], r["relevant"].strip() == "1", r.get("marked", ""))
                    for r in csv.DictReader(f) if r.get("question") and r.get("text") is not None]

    def of(self, question: str) -> dict[str, bool]:
        """passage key -> relevant, for ``question``."""
        q = normal_question(question)
        return {m.key: m.relevant for m in self.all() if normal_question(m.question) == q}

    def mark(self, question: str, hit: Hit, relevant: bool | None) -> None:
        """Mark ``hit`` relevant or not relevant for ``question``; None unmarks it."""
        q, document = normal_question(question), hit.document or origin_of(hit.source)
        key = passage_key(document, hit.text)
        with self._lock:
            kept = [m for m in self.all() if not (normal_question(m.question) == q and m.key == key)]
            if relevant is not None:
                kept.append(Mark(q, document, hit.text, relevant, time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())))
            self._write(kept)

    def _write(self, marks: list[Mark]) -> None:
        out = io.StringIO()
        writer = csv.writer(out)
        writer.writerow(COLUMNS)
        writer.writerows([m.question, m.document, m.text, int(m.relevant), m.marked] for m in marks)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        partial = self.path.with_suffix(".tmp")
        partial.write_text(out.getvalue(), encoding="utf-8")
        partial.replace(self.path)
