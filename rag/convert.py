"""Convert PDF, Word, PowerPoint, Excel, CSV, HTML and EPUB files to Markdown with markitdown, safely.

``convert_files(paths, timeout_s, memory_mb)`` yields, for each path, the Markdown ``Document``s it holds (a PDF's
pages and a deck's slides each become one, with ``#page=N`` / ``#slide=N`` on the source) or the reason it was
skipped. The chunker (``rag.documents``) then treats that Markdown like any ``.md`` file.

A hostile or broken file must cost one file, never the whole ingest: before conversion the first bytes must match
the extension (a ``.pdf`` that is a PNG, a ``.docx`` that is text are named as such), and conversion runs in a
worker process (``serve`` below, started with ``python -c``) with an address-space cap (RLIMIT_AS) and a time limit
per file; a file that runs past either is skipped and a new worker converts the rest. A PDF with no text layer (a
scan) is named and OCR suggested; an encrypted PDF or a corrupt zip is named.

Leaves out: OCR, images and audio, old binary formats (.doc, .ppt, .xls), and fetching URLs (``rag.web``).
"""

from __future__ import annotations

import json
import queue
import re
import subprocess
import sys
import threading
import time
import zipfile
from collections.abc import Iterator, Sequence
from pathlib import Path

from rag.types import Document

# extension -> the markitdown converter class for it
CONVERTERS = {".pdf": "PdfConverter", ".docx": "DocxConverter", ".pptx": "PptxConverter", ".xlsx": "XlsxConverter",
              ".csv": "CsvConverter", ".html": "HtmlConverter", ".htm": "HtmlConverter", ".epub": "EpubConverter"}
SUFFIXES = tuple(CONVERTERS)
_OFFICE = {".docx": "word/document.xml", ".pptx": "ppt/presentation.xml", ".xlsx": "xl/workbook.xml",
           ".epub": "META-INF/container.xml"}  # a member each real file of the kind has
_SLIDE = re.compile(r"^<!-- Slide number: (\d+) -->$", re.M)
_START_S = 120.0  # the worker's imports (markitdown, magika, pandas) took 1.8 s on 2 busy cores; allow plenty
_UNPACK_RATIO = 50  # an office/EPUB zip that says it unpacks to more than this many times the file limit is refused
_REPLY = "rag-convert-reply "  # the prefix of the worker's reply lines on its stdout
Result = tuple[Path, list[Document], str]  # (path, its documents, "") or (path, [], why it was skipped)


def sniff(data: bytes) -> str:
    """What the first bytes of a file look like, in words."""
    signatures = ((b"%PDF-", "a PDF"), (b"PK\x03\x04", "a zip archive"), (b"\x89PNG", "a PNG image"),
                  (b"\xff\xd8\xff", "a JPEG image"), (b"GIF8", "a GIF image"), (b"\xd0\xcf\x11\xe0", "an old "
                  "Office file (.doc/.xls/.ppt); save it as .docx/.xlsx/.pptx"))
    for magic, what in signatures:
        if data.startswith(magic) or (magic == b"%PDF-" and magic in data[:1024]):
            return what
    return "binary data" if b"\x00" in data[:4096] else "text"


def check(path: Path, max_bytes: int) -> str:
    """Why ``path`` must not be converted (its content does not match its extension, or it unpacks too large), or
    "" when it may be."""
    suffix = path.suffix.lower()
    with open(path, "rb") as f:
        head = f.read(4096)
    what = sniff(head)
    if suffix == ".pdf":
        return "" if what == "a PDF" else f"named .pdf, but its content is {what}"
    if suffix in (".html", ".htm", ".csv"):
        return "" if what == "text" else f"named {suffix}, but its content is {what}"
    if what != "a zip archive":
        return f"named {suffix}, but its content is {what}"
    try:
        with zipfile.ZipFile(path) as z:
            names = set(z.namelist())
            unpacked = sum(i.file_size for i in z.infolist())
    except (zipfile.BadZipFile, OSError) as exc:
        return f"a corrupt or truncated {suffix} file (its zip cannot be read: {exc}); save or download it again"
    if _OFFICE[suffix] not in names:
        return f"named {suffix}, but it is a zip without {_OFFICE[suffix]} (another kind of file)"
    if unpacked > _UNPACK_RATIO * max_bytes:
        return f"unpacks to {unpacked / 1e6:.0f} MB, more than {_UNPACK_RATIO}× the file limit (a zip bomb?)"
    return ""


def pages(path: Path, markdown: str) -> list[Document]:
    """One document per PDF page (pdfminer ends each with a form feed) or per slide, else one for the file."""
    source = str(path)
    if path.suffix.lower() == ".pdf" and "\f" in markdown:
        parts = markdown.split("\f")
        return [Document(f"{source}#page={i}", t, source) for i, t in enumerate(parts, 1) if t.strip()]
    if path.suffix.lower() == ".pptx" and _SLIDE.search(markdown):
        found = _SLIDE.split(markdown)  # [before, n1, text1, n2, text2, ...]
        return [Document(f"{source}#slide={n}", t, source) for n, t in zip(found[1::2], found[2::2], strict=True)
                if t.strip()]
    return [Document(source, markdown)] if markdown.strip() else []


def empty_reason(path: Path) -> str:
    if path.suffix.lower() == ".pdf":
        return ("no text could be extracted: a scanned PDF (pages as images)? Run OCR first, e.g. "
                "`ocrmypdf in.pdf out.pdf`, and add the result")
    return "no text in it after conversion"


def convert_files(paths: Sequence[Path], timeout_s: float, memory_mb: int, max_bytes: int) -> Iterator[Result]:
    """Each path with its documents, or with the reason it was skipped, in order."""
    todo: list[Path] = []
    for path in paths:
        reason = check(path, max_bytes)
        if reason:
            yield path, [], reason
        else:
            todo.append(path)
    while todo:  # one worker for all; a file that kills or stalls it is skipped, and a new one takes the rest
        worker = _Worker(memory_mb)
        failed = worker.start(todo)
        if failed:
            for path in todo:
                yield path, [], f"the converter did not start: {failed}"
            return
        done = 0
        for path in todo:
            reply = worker.result(timeout_s)
            done += 1
            if reply is None:
                yield path, [], worker.failure(timeout_s)
                break
            if "error" in reply:
                yield path, [], reply["error"]
            else:
                docs = pages(path, reply["markdown"])
                yield path, docs, "" if docs else empty_reason(path)
        worker.stop()
        todo = todo[done:]


class _Worker:
    """The ``serve`` process, fed paths on stdin, answering one JSON line per path on stdout."""

    def __init__(self, memory_mb: int) -> None:
        self.memory_mb = memory_mb
        self.lines: queue.Queue[str | None] = queue.Queue()  # stdout lines; None at its end
        self.errors: list[str] = []  # the last lines of stderr
        self.timed_out = False

    def start(self, paths: Sequence[Path]) -> str:
        """Start the worker and hand it ``paths``: "" once it is ready, else why it is not."""
        boot = f"import sys; sys.path.insert(0, {str(Path(__file__).resolve().parent.parent)!r}); " \
               f"from rag.convert import serve; serve({int(self.memory_mb)})"
        self.proc = subprocess.Popen([sys.executable, "-c", boot], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                     stderr=subprocess.PIPE, text=True, encoding="utf-8")
        threads = [(self._read, self.proc.stdout), (self._read_errors, self.proc.stderr), (self._write, paths)]
        for target, arg in threads:
            threading.Thread(target=target, args=(arg,), daemon=True).start()
        reply = self.result(_START_S)
        if reply is None or not reply.get("ready"):
            why = f"no answer within {_START_S:g} s" if self.timed_out else self.failure(_START_S)
            return f"{why}; if it ran out of memory, raise RAG_CONVERT_MEMORY_MB (now {self.memory_mb})"
        return ""

    def _read(self, stream) -> None:  # noqa: ANN001
        for line in stream:
            self.lines.put(line)
        self.lines.put(None)

    def _read_errors(self, stream) -> None:  # noqa: ANN001
        for line in stream:
            self.errors = [*self.errors[-19:], line.rstrip()]

    def _write(self, paths: Sequence[Path]) -> None:
        try:
            for path in paths:
                self.proc.stdin.write(json.dumps(str(path)) + "\n")
                self.proc.stdin.flush()
            self.proc.stdin.close()
        except OSError:  # the worker was stopped before it read them all
            pass

    def result(self, timeout_s: float) -> dict | None:
        """The next reply, or None when none came in ``timeout_s`` (the worker is then killed) or the worker died."""
        deadline = time.monotonic() + timeout_s
        while True:
            try:
                line = self.lines.get(timeout=max(0.0, deadline - time.monotonic()))
            except queue.Empty:
                self.timed_out = True
                self.stop()
                return None
            if line is None:
                return None
            if line.startswith(_REPLY):
                return json.loads(line[len(_REPLY):])
            # anything else a library wrote to the real stdout (a C extension, say) is not a reply

    def failure(self, timeout_s: float) -> str:
        """Why the last file got no reply."""
        if self.timed_out:
            return f"conversion ran past the {timeout_s:g} s limit (RAG_CONVERT_TIMEOUT_S); a hostile or huge file?"
        code = self.proc.wait()
        memory = any("MemoryError" in line for line in self.errors) or code < 0
        last = next((line for line in reversed(self.errors) if line.strip()), f"exit code {code}")
        if memory:
            return (f"the converter ran out of memory or crashed ({last[:200]}); the file may need more than the "
                    f"{self.memory_mb} MB cap (RAG_CONVERT_MEMORY_MB)")
        return f"the converter stopped ({last[:200]})"

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait()


def serve(memory_mb: int) -> None:
    """The worker: cap its own address space, import the converters, then answer one JSON line per path read."""
    try:
        import resource

        cap = memory_mb * 2**20
        resource.setrlimit(resource.RLIMIT_AS, (cap, cap))
    except (ImportError, ValueError, OSError):  # not on this system (Windows), or a hard limit lower already
        pass
    replies, sys.stdout = sys.stdout, sys.stderr  # what the converters print must not pass for a reply
    import markitdown.converters  # noqa: F401 - the slow imports, before "ready"

    print(_REPLY + json.dumps({"ready": True}), file=replies, flush=True)
    for line in sys.stdin:
        try:
            reply = _convert_one(Path(json.loads(line)))
        except MemoryError:
            reply = {"error": f"conversion needed more memory than the {memory_mb} MB cap (RAG_CONVERT_MEMORY_MB)"}
        print(_REPLY + json.dumps(reply), file=replies, flush=True)


def _convert_one(path: Path) -> dict[str, str]:
    """In the worker: {"markdown": ...} or {"error": why}."""
    import markitdown.converters as converters
    from markitdown import StreamInfo

    suffix = path.suffix.lower()
    converter = getattr(converters, CONVERTERS[suffix])()
    try:
        with open(path, "rb") as f:
            result = converter.convert(f, StreamInfo(extension=suffix, filename=path.name))
    except MemoryError:
        raise
    except Exception as exc:  # each converter raises its own library's errors; name them, skip the file
        name = type(exc).__name__
        if "Password" in name or "Encrypt" in name:
            return {"error": "an encrypted PDF (it needs a password); save a copy without the password, e.g. "
                             "`qpdf --decrypt --password=... in.pdf out.pdf`, and add that"}
        detail = str(exc).strip().splitlines()
        return {"error": f"could not be converted ({name}: {detail[0][:200] if detail else 'no detail'}); "
                         "is the file damaged?"}
    return {"markdown": result.markdown}
