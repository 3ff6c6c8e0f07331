"""Load documents and cut them into chunks at markdown headings.

Improves on the tutorial's ``text.split("# ")``: each heading stays with its body, heading-only or empty
sections are dropped, front matter and HTML comments are removed, headings inside code fences are not split on,
and a section longer than the token cap is cut into overlapping windows that each repeat the heading. A window
starts and ends at a paragraph, line or sentence break where one lies within its budget (else between words),
never inside a Markdown link or inline code, and a table or code block that fits in a window is not cut. Chinese
sentences end at ``。！？；`` and, having no spaces, are cut between words only where jieba sees a boundary
(``rag.words``).

An HTML heading in a Markdown file (``<h4 id="How-much-does-Milvus-cost">Milvus 的成本是多少？</h4>``, as the
Milvus site's translated pages have them) is a heading too. Its ``id`` is kept as the anchor of its chunks'
source (``product_faq.md#How-much-does-Milvus-cost``), and the HTML of such a page is read as text: paragraphs,
list items and table rows on their own lines, ``<pre>`` as a code fence, ``<code>`` and links as Markdown.
Chunk ids are a hash of the document's name and the chunk text, so ingesting the same files again adds nothing,
and two documents that share a passage each keep their own copy of it.

A document is one file (all its pages or slides) or one URL, named by ``document_name``: a URL as it is, a file by
its path as found, or relative to a root folder (the app names uploads relative to its uploads folder).

``.md``, ``.markdown`` and ``.txt`` are read as they are; PDF, Word, PowerPoint, Excel, CSV, HTML and EPUB are
converted to Markdown first (``rag.convert``), then chunked the same way.

URLs among the paths are fetched by ``rag.web`` and chunked the same way.

Leaves out: the conversion itself (``rag.convert``) and fetching (``rag.web``).
"""

from __future__ import annotations

import glob
import hashlib
import html
import re
import zipfile
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path, PurePosixPath

from rag import convert, web
from rag import words as words_module
from rag.types import Chunk, Document, SkippedFile

TEXT_SUFFIXES = (".md", ".markdown", ".txt")
SUFFIXES = TEXT_SUFFIXES + convert.SUFFIXES
NOT_READ = f"not a format that is read ({', '.join(SUFFIXES)})"  # why a file of another suffix is skipped
# A tokenizer as the chunker sees it: text -> the (start, end) character span of each token.
Spans = Callable[[str], list[tuple[int, int]]]

_HEADING = re.compile(r"^ {0,3}(#{1,6})[ \t]+(.*?)[ \t#]*$")
_FENCE = re.compile(r"^ {0,3}(```|~~~)")
_FRONT_MATTER = re.compile(r"\A---\r?\n.*?\r?\n---\r?\n", re.S)
_COMMENT = re.compile(r"<!--.*?-->", re.S)
_WORD = re.compile(r"\S+")
_HTML_HEADING = re.compile(r"<h([1-6])\b([^>]*)>(.*?)</h\1\s*>", re.S | re.I)
_HTML_ID = re.compile(r"""\bid\s*=\s*["']([^"']+)["']""")
_ANCHOR_LINE = "\x00anchor:"  # a line that carries the id of the heading above it, between sections() steps


def word_spans(text: str) -> list[tuple[int, int]]:
    """A model-free stand-in for a tokenizer: each run of non-space characters is one token."""
    return [m.span() for m in _WORD.finditer(text)]


def chunk_id(text: str, document: str = "") -> str:
    key = f"{document}\x00{text}" if document else text
    return hashlib.sha256(key.encode("utf-8")).hexdigest()[:32]


def document_name(origin: str, roots: Sequence[str | Path] = ()) -> str:
    """The name a file or URL is stored under: a URL as it is; a file as its path relative to the deepest of
    ``roots`` it lies under (with ``/`` between folders), else as the path it was found by."""
    if web.is_url(origin) or not roots:
        return origin
    path = Path(origin).resolve()
    for root in sorted((Path(r).resolve() for r in roots), key=lambda r: -len(r.parts)):
        if path.is_relative_to(root) and path != root:
            return path.relative_to(root).as_posix()
    return origin


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
                skipped.append(SkippedFile.keyed(str(raw), "skip.no_such_file"))
        for p in matches:
            if p.suffix.lower() in SUFFIXES:
                found[p] = None
            else:
                skipped.append(SkippedFile.keyed(str(p), "skip.format", formats=", ".join(SUFFIXES)))
    return list(found), skipped


def decode(data: bytes) -> tuple[str | None, str]:
    """Text from file bytes, or ``(None, the reason's locale key)`` when they are not usable text."""
    if b"\x00" in data:
        return None, "skip.binary"
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError:
        return None, "skip.not_utf8"
    if not text.strip():
        return None, "skip.empty"
    return text, ""


def load_documents(
    paths: Iterable[str | Path], max_bytes: int, timeout_s: float = 60.0, memory_mb: int = 2048,
    fetch_timeout_s: float = 20.0, allow_private: bool = False,
) -> tuple[list[Document], list[SkippedFile]]:
    """Read every usable file under ``paths`` (and fetch the URLs among them); the others are returned with the
    reason they were skipped.

    Text files are read directly; the other formats are converted (``rag.convert``), each within ``timeout_s``
    seconds and ``memory_mb`` of address space. Every file or page, of any format, must be at most ``max_bytes``.
    URLs are fetched by ``rag.web`` (``allow_private``: loopback and private addresses too).
    """
    paths = [str(p) for p in paths]
    urls = [p for p in paths if web.is_url(p)]
    files, skipped = find_files(p for p in paths if not web.is_url(p))
    docs: list[Document] = []
    to_convert: list[Path] = []
    for path in files:
        size = path.stat().st_size
        if size > max_bytes:
            skipped.append(SkippedFile.keyed(str(path), "skip.too_large", mb=max_bytes / 1e6))
        elif path.suffix.lower() in convert.SUFFIXES:
            to_convert.append(path)
        else:
            text, reason = decode(path.read_bytes())
            if text is None:
                skipped.append(SkippedFile.keyed(str(path), reason))
            else:
                docs.append(Document(str(path), text))
    for path, converted, reason in convert.convert_files(to_convert, timeout_s, memory_mb, max_bytes):
        docs += converted
        if reason:
            skipped.append(SkippedFile(str(path), reason))
    for url, fetched, reason in web.fetch_documents(urls, fetch_timeout_s, max_bytes, allow_private, timeout_s,
                                                    memory_mb):
        docs += fetched
        if reason:
            skipped.append(SkippedFile(url, reason))
    return docs, skipped


def sections(text: str, markdown: bool = True) -> list[tuple[str, str]]:
    """Split into ``(heading, body)`` pairs at markdown headings (and HTML ones) outside code fences."""
    return [(h, body) for h, body, _ in anchored_sections(text, markdown)]


def anchored_sections(text: str, markdown: bool = True) -> list[tuple[str, str, str]]:
    """``sections`` with each heading's anchor: ``(heading, body, anchor)``, the anchor being the ``id`` of an
    HTML heading (empty for a Markdown one)."""
    text = _COMMENT.sub("", _FRONT_MATTER.sub("", text.replace("\r\n", "\n")))
    if not markdown:
        return [("", text, "")]
    if _HTML_HEADING.search(text):
        text = _html_to_markdown(text)
    found: list[tuple[str, str, list[str]]] = [("", "", [])]
    in_fence = False
    for line in text.split("\n"):
        if _FENCE.match(line):
            in_fence = not in_fence
        heading = None if in_fence else _HEADING.match(line)
        if heading:
            found.append((heading.group(2).strip(), "", []))
        elif not in_fence and line.startswith(_ANCHOR_LINE) and not found[-1][2]:
            found[-1] = (found[-1][0], line[len(_ANCHOR_LINE):], [])
        else:
            found[-1][2].append(line)
    return [(h, "\n".join(body).strip(), anchor) for h, anchor, body in found]


_BUTTON = re.compile(r"<button\b.*?</button\s*>", re.S | re.I)  # the Milvus site's "copy link" button, an SVG
_PRE = re.compile(r"<pre\b[^>]*>\s*(?:<code\b[^>]*>)?(.*?)(?:</code>)?\s*</pre\s*>", re.S | re.I)
_CODE = re.compile(r"<code\b[^>]*>(.*?)</code\s*>", re.S | re.I)
_LINK = re.compile(r"""<a\b[^>]*?href\s*=\s*["']([^"']*)["'][^>]*>(.*?)</a\s*>""", re.S | re.I)
_BLOCK_END = re.compile(r"</(?:p|div|ul|ol|li|table|thead|tbody|tr|blockquote)\s*>|<br\s*/?>", re.I)
_TAG = re.compile(r"</?[A-Za-z][^>]*>")


def _strip_tags(fragment: str) -> str:
    return html.unescape(_TAG.sub("", fragment))


def _html_to_markdown(text: str) -> str:
    """The HTML of a page written as HTML inside Markdown, as Markdown text: each ``<hN id=…>`` a heading line
    followed by an anchor line, block ends as line breaks, ``<pre>`` as a fence, the other tags dropped. Code
    fences of the Markdown itself are left as they are."""
    parts = re.split(r"(^ {0,3}(?:```|~~~).*?^ {0,3}(?:```|~~~)[^\n]*$)", text, flags=re.S | re.M)
    for i in range(0, len(parts), 2):  # the even parts are outside fences
        parts[i] = _html_part(parts[i])
    return "".join(parts)


def _html_part(text: str) -> str:
    text = _BUTTON.sub("", text)

    def heading(m: re.Match[str]) -> str:
        anchor = _HTML_ID.search(m.group(2))
        title = " ".join(_strip_tags(m.group(3)).split())
        return f"\n\n{'#' * int(m.group(1))} {title}\n" + (f"{_ANCHOR_LINE}{anchor.group(1)}\n" if anchor else "\n")

    text = _HTML_HEADING.sub(heading, text)
    text = _PRE.sub(lambda m: f"\n\n```\n{_strip_tags(m.group(1)).strip(chr(10))}\n```\n\n", text)
    text = _CODE.sub(lambda m: f"`{_strip_tags(m.group(1))}`", text)
    text = _LINK.sub(lambda m: f"[{_strip_tags(m.group(2)).strip()}]({m.group(1)})", text)
    text = re.sub(r"<li\b[^>]*>", "- ", text, flags=re.I)
    text = re.sub(r"</t[dh]\s*>", " |", re.sub(r"<tr\b[^>]*>", "| ", text, flags=re.I), flags=re.I)
    text = _BLOCK_END.sub("\n", text)
    lines = text.split("\n")
    out, in_fence = [], False
    for line in lines:  # drop the remaining tags outside the fences that <pre> became
        if _FENCE.match(line):
            in_fence = not in_fence
        out.append(line if in_fence or line.startswith(_ANCHOR_LINE) else _strip_tags(line).rstrip())
    return re.sub(r"\n{3,}", "\n\n", "\n".join(out))


_INLINE = re.compile(r"!?\[[^\]\n]*\]\([^)\n]*\)|`[^`\n]+`|<https?://[^>\s]+>|https?://\S+")  # never cut inside
_TABLE_ROW = re.compile(r"^ {0,3}\|")


def _blocks(body: str) -> list[tuple[int, int]]:
    """(start, end) character spans of the fenced code blocks and tables in ``body``."""
    found, start, fence, offset = [], None, False, 0
    kind = ""
    for line in body.split("\n"):
        end = offset + len(line)
        if _FENCE.match(line):
            if fence:
                found.append((start, end))
                fence, start = False, None
            else:
                if start is not None:  # a table right before the fence
                    found.append((start, offset - 1))
                fence, start, kind = True, offset, "fence"
        elif not fence:
            if _TABLE_ROW.match(line):
                if start is None:
                    start, kind = offset, "table"
            elif start is not None and kind == "table":
                found.append((start, offset - 1))
                start = None
        offset = end + 1
    if start is not None:
        found.append((start, len(body)))
    return found


def _cut_strengths(body: str, tokens: list[tuple[int, int]]) -> list[int]:
    """How good a place to cut the window before each token is: 4 a paragraph break, 3 a line break, 2 the end of a
    sentence (``. ! ? : ;`` and ``。！？；``), 1 a space between words, a Chinese comma or a boundary between two
    Chinese words (``rag.words``), 0 inside a table or code block at a line break, -1 nowhere (inside a word, one
    that jieba keeps whole too, a link, inline code, a block between its lines, before a whitespace token, or
    between two tokens of one character). Index 0 is never a cut."""
    inside = [False] * (len(body) + 1)
    for m in _INLINE.finditer(body):
        for i in range(m.start() + 1, m.end()):
            inside[i] = True
    in_block = [False] * (len(body) + 1)
    for start, end in _blocks(body):
        for i in range(start + 1, end):
            in_block[i] = True
    words = words_module.word_starts(body)  # where jieba starts a Chinese word (empty: no Han character)
    strengths = [-1]
    previous_end = tokens[0][1] if tokens else 0
    for start, end in tokens[1:]:
        split_char, previous_end = start < previous_end, max(previous_end, end)  # two tokens of one character
        if not body[start:end].strip() or split_char:
            strengths.append(-1)  # a window starts with a word, not with a newline token
            continue
        lo = hi = start  # the run of whitespace around the cut
        while lo > 0 and body[lo - 1].isspace():
            lo -= 1
        while hi < len(body) and body[hi].isspace():
            hi += 1
        gap = body[lo:hi]
        if inside[lo] or inside[hi] or (not gap and in_block[start]):
            strengths.append(-1)  # inside a link, inline code, or a block's line
        elif not gap:  # no space: only Chinese text is cut here
            before, after = body[start - 1], body[start]
            if before in _CJK_ENDS or _closes_sentence(body, start, _CJK_ENDS):
                strengths.append(2)
            elif before in _CJK_PAUSES or (start in words and (words_module.is_han(before)
                                                                 or words_module.is_han(after))):
                strengths.append(1)  # after a Chinese comma, or where jieba starts a word next to a Han one
            else:
                strengths.append(-1)  # inside a word (one that jieba keeps whole, too)
        elif in_block[lo] or in_block[hi]:
            strengths.append(0 if "\n" in gap else -1)
        elif "\n\n" in gap:
            strengths.append(4)
        elif "\n" in gap:
            strengths.append(3)
        elif body[lo - 1 : lo] in _SENTENCE_ENDS or _closes_sentence(body, lo, _CJK_ENDS):
            strengths.append(2)
        else:
            strengths.append(1)
    return strengths


_CJK_ENDS = "。！？；"  # a Chinese sentence ends here, with no space after it
_SENTENCE_ENDS = ".!?:;" + _CJK_ENDS
_CJK_PAUSES = "，、：）」』"  # a cut may follow these without a space, as it may a space between words
_CLOSING = "」』”’）)"


def _closes_sentence(body: str, at: int, ends: str) -> bool:
    """True when ``body`` before ``at`` is one of ``ends`` followed by closing quotes or brackets (``。」``)."""
    i = at
    while i > 0 and body[i - 1] in _CLOSING:
        i -= 1
    return i < at and i > 0 and body[i - 1] in ends


def _windows(body: str, budget: int, overlap: int, spans: Spans) -> list[str]:
    """Windows of at most ``budget`` tokens, each sharing about ``overlap`` tokens with the one before.

    A window ends at the strongest break (``_cut_strengths``) in its second half, the latest of equals; when its
    second half has no line or sentence break (or no break at all), at the strongest one in the whole window (so
    that a table or code block that fits moves to the next window whole). Only a window without any break (one
    link or word longer than the budget) is cut where the budget ends. The next window starts at the strongest
    break among the last ``overlap`` tokens, the earliest of equals.
    """
    tokens = spans(body)
    if len(tokens) <= budget:
        return [body]
    strength = _cut_strengths(body, tokens)
    out, start = [], 0
    while True:
        limit = min(start + budget, len(tokens))
        if limit == len(tokens):
            end = limit
        else:
            end = _best(strength, start + max(budget // 2, 1), limit, latest=True)
            if strength[end] < 2:
                anywhere = _best(strength, start + 1, limit, latest=True)
                end = anywhere if strength[anywhere] >= 2 or strength[end] < 0 else end
            if strength[end] < 0:
                end = limit  # one unbroken run longer than the window: cut where the budget ends
        out.append(body[tokens[start][0] : tokens[end - 1][1]].strip())
        if end == len(tokens):
            return out
        following = _best(strength, max(end - overlap, start + 1), end, latest=False)
        start = following if strength[following] >= 0 or overlap == 0 else max(end - overlap, start + 1)


def _best(strength: list[int], lo: int, hi: int, latest: bool) -> int:
    """The index in [lo, hi] with the highest strength: the latest of equals, or the earliest."""
    order = range(hi, lo - 1, -1) if latest else range(lo, hi + 1)
    return max(order, key=lambda i: strength[i])


def chunk_document(
    doc: Document, max_tokens: int, overlap: int, spans: Spans = word_spans, name: str = ""
) -> list[Chunk]:
    """Cut one document into chunks of at most about ``max_tokens`` tokens. With ``name`` (``document_name``) the
    chunks belong to that document, and their sources start with it instead of the file's path.

    Example:
        >>> [c.heading for c in chunk_document(Document("a.md", "# A\\n\\n# B\\ntext"), 100, 10)]
        ['B']
    """
    markdown = not doc.source.lower().endswith(".txt")
    source = name + doc.source[len(doc.origin):] if name and doc.source.startswith(doc.origin) else doc.source
    chunks: list[Chunk] = []
    for heading, body, anchor in anchored_sections(doc.text, markdown):
        if not body:
            continue  # a heading with nothing under it
        head = f"{heading}\n\n" if heading else ""
        budget = max(max_tokens - len(spans(head)), overlap + 1)
        where = f"{source}#{anchor}" if anchor else source  # the document stays the file: name, or its origin
        for piece in _windows(body, budget, overlap, spans):
            text = head + piece
            chunks.append(Chunk(chunk_id(text, name), text, where, heading, name or (doc.origin if anchor else "")))
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
        return [], [SkippedFile.keyed(name, "skip.bad_zip", detail=str(exc))]
    with zf:
        for info in zf.infolist():
            if info.is_dir():
                continue
            label = f"{name}:{info.filename}"
            parts = PurePosixPath(info.filename.replace("\\", "/")).parts
            if not parts or info.filename.startswith(("/", "\\")) or ".." in parts or ":" in parts[0]:
                skipped.append(SkippedFile.keyed(label, "skip.zip_unsafe"))
                continue
            if PurePosixPath(*parts).suffix.lower() not in SUFFIXES:
                skipped.append(SkippedFile.keyed(label, "skip.format", formats=", ".join(SUFFIXES)))
                continue
            if len(written) >= max_files or total >= max_total_bytes:
                skipped.append(SkippedFile.keyed(label, "skip.zip_limits"))
                continue
            try:
                with zf.open(info) as f:
                    data = f.read(max_bytes + 1)
            except (zipfile.BadZipFile, OSError, RuntimeError, NotImplementedError) as exc:
                skipped.append(SkippedFile.keyed(label, "skip.zip_entry", detail=str(exc)))
                continue
            if len(data) > max_bytes:
                skipped.append(SkippedFile.keyed(label, "skip.too_large", mb=max_bytes / 1e6))
                continue
            total += len(data)
            target = dest.joinpath(*parts)
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(data)
            written.append(target)
    return written, skipped
