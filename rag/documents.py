"""Load text documents and cut them into chunks at markdown headings.

Improves on the tutorial's ``text.split("# ")``: each heading stays with its body, heading-only or empty
sections are dropped, front matter and HTML comments are removed, headings inside code fences are not split on,
and a section longer than the token cap is cut into overlapping windows that each repeat the heading.
Chunk ids are a hash of the chunk text, so ingesting the same files again adds nothing.

Leaves out: PDF, HTML and other formats; only ``.md``, ``.markdown`` and ``.txt`` are read.
"""

from __future__ import annotations

import glob
import hashlib
import re
import zipfile
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from rag.types import Chunk, SkippedFile

SUFFIXES = (".md", ".markdown", ".txt")
# A tokenizer as the chunker sees it: text -> the (start, end) character span of each token.
Spans = Callable[[str], list[tuple[int, int]]]

_HEADING = re.compile(r"^ {0,3}(#{1,6})[ \t]+(.*?)[ \t#]*$")
_FENCE = re.compile(r"^ {0,3}(```|~~~)")
_FRONT_MATTER = re.compile(r"\A---\r?\n.*?\r?\n---\r?\n", re.S)
_COMMENT = re.compile(r"<!--.*?-->", re.S)
_WORD = re.compile(r"\S+")


@dataclass(frozen=True)
class Document:
    source: str
    text: str


def word_spans(text: str) -> list[tuple[int, int]]:
    """A model-free stand-in for a tokenizer: each run of non-space characters is one token."""
    return [m.span() for m in _WORD.finditer(text)]


def chunk_id(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:32]


def find_files(paths: Iterable[str | Path]) -> tuple[list[Path], list[SkippedFile]]:
    """Expand files, folders (recursively) and glob patterns into the readable files they name."""
    found: dict[Path, None] = {}
    skipped: list[SkippedFile] = []
    for raw in paths:
        path = Path(raw)
        if path.is_dir():
            matches = sorted(p for p in path.rglob("*") if p.is_file() and p.suffix.lower() in SUFFIXES)
        elif path.is_file():
            matches = [path]
        else:
            matches = sorted(Path(p) for p in glob.glob(str(raw), recursive=True) if Path(p).is_file())
            if not matches:
                skipped.append(SkippedFile(str(raw), "no such file, folder or glob match"))
        for p in matches:
            if p.suffix.lower() in SUFFIXES:
                found[p] = None
            else:
                skipped.append(SkippedFile(str(p), f"not {', '.join(SUFFIXES)}"))
    return list(found), skipped


def decode(data: bytes) -> tuple[str | None, str]:
    """Text from file bytes, or ``(None, reason)`` when they are not usable text."""
    if b"\x00" in data:
        return None, "binary file (contains NUL bytes)"
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError:
        return None, "not UTF-8 text; convert it, e.g. with `iconv -t UTF-8`"
    if not text.strip():
        return None, "empty file"
    return text, ""


def load_documents(paths: Iterable[str | Path], max_bytes: int) -> tuple[list[Document], list[SkippedFile]]:
    """Read every usable file under ``paths``; the others are returned with the reason they were skipped."""
    files, skipped = find_files(paths)
    docs: list[Document] = []
    for path in files:
        size = path.stat().st_size
        if size > max_bytes:
            skipped.append(SkippedFile(str(path), f"larger than the {max_bytes / 1e6:g} MB limit (RAG_MAX_FILE_MB)"))
            continue
        text, reason = decode(path.read_bytes())
        if text is None:
            skipped.append(SkippedFile(str(path), reason))
        else:
            docs.append(Document(str(path), text))
    return docs, skipped


def sections(text: str, markdown: bool = True) -> list[tuple[str, str]]:
    """Split into ``(heading, body)`` pairs at markdown headings outside code fences."""
    text = _COMMENT.sub("", _FRONT_MATTER.sub("", text.replace("\r\n", "\n")))
    if not markdown:
        return [("", text)]
    found: list[tuple[str, list[str]]] = [("", [])]
    in_fence = False
    for line in text.split("\n"):
        if _FENCE.match(line):
            in_fence = not in_fence
        heading = None if in_fence else _HEADING.match(line)
        if heading:
            found.append((heading.group(2).strip(), []))
        else:
            found[-1][1].append(line)
    return [(h, "\n".join(body).strip()) for h, body in found]


def _windows(body: str, budget: int, overlap: int, spans: Spans) -> list[str]:
    tokens = spans(body)
    if len(tokens) <= budget:
        return [body]
    out, start = [], 0
    while True:
        end = min(start + budget, len(tokens))
        out.append(body[tokens[start][0] : tokens[end - 1][1]])
        if end == len(tokens):
            return out
        start = end - overlap


def chunk_document(doc: Document, max_tokens: int, overlap: int, spans: Spans = word_spans) -> list[Chunk]:
    """Cut one document into chunks of at most about ``max_tokens`` tokens.

    Example:
        >>> [c.heading for c in chunk_document(Document("a.md", "# A\\n\\n# B\\ntext"), 100, 10)]
        ['B']
    """
    markdown = not doc.source.lower().endswith(".txt")
    chunks: list[Chunk] = []
    for heading, body in sections(doc.text, markdown):
        if not body:
            continue  # a heading with nothing under it
        head = f"{heading}\n\n" if heading else ""
        budget = max(max_tokens - len(spans(head)), overlap + 1)
        for piece in _windows(body, budget, overlap, spans):
            text = head + piece
            chunks.append(Chunk(chunk_id(text), text, doc.source, heading))
    return chunks


def extract_zip(
    archive: str | Path, dest: str | Path, max_bytes: int, max_total_bytes: int = 200_000_000, max_files: int = 2000
) -> tuple[list[Path], list[SkippedFile]]:
    """Extract the usable documents of a zip into ``dest``, safely.

    Entries with absolute or ``..`` paths are refused (no writing outside ``dest``), sizes are enforced on the bytes
    actually read rather than on the headers, and extraction stops at ``max_total_bytes`` or ``max_files`` (a zip
    bomb gets the rest of its entries skipped, with the reason).
    """
    dest = Path(dest)
    name = Path(archive).name
    written: list[Path] = []
    skipped: list[SkippedFile] = []
    total = 0
    try:
        zf = zipfile.ZipFile(archive)
    except (zipfile.BadZipFile, OSError) as exc:
        return [], [SkippedFile(name, f"not a readable zip file ({exc})")]
    with zf:
        for info in zf.infolist():
            if info.is_dir():
                continue
            label = f"{name}:{info.filename}"
            parts = PurePosixPath(info.filename.replace("\\", "/")).parts
            if not parts or info.filename.startswith(("/", "\\")) or ".." in parts or ":" in parts[0]:
                skipped.append(SkippedFile(label, "unsafe path in the zip (absolute or with ..); not extracted"))
                continue
            if PurePosixPath(*parts).suffix.lower() not in SUFFIXES:
                skipped.append(SkippedFile(label, f"not {', '.join(SUFFIXES)}"))
                continue
            if len(written) >= max_files or total >= max_total_bytes:
                skipped.append(SkippedFile(label, "the zip expands beyond the upload limits; not extracted"))
                continue
            try:
                with zf.open(info) as f:
                    data = f.read(max_bytes + 1)
            except (zipfile.BadZipFile, OSError, RuntimeError, NotImplementedError) as exc:
                skipped.append(SkippedFile(label, f"could not be read from the zip ({exc})"))
                continue
            if len(data) > max_bytes:
                skipped.append(SkippedFile(label, f"larger than the {max_bytes / 1e6:g} MB limit (RAG_MAX_FILE_MB)"))
                continue
            total += len(data)
            target = dest.joinpath(*parts)
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(data)
            written.append(target)
    return written, skipped
