"""A PDF page as a PNG image, for the document view: pypdfium2 (which pdfplumber, of markitdown's PDF extra,
already brings), run in a child process with an address-space cap and a time limit, like the converter
(``rag.convert``): a hostile PDF costs its image, never the app.

``render_page(pdf, page, timeout_s, memory_mb)`` returns the PNG bytes, or raises ``PageImageError`` saying why.
Rendered when a passage is opened (not at ingest: most pages are never looked at, and a page costs tens of
milliseconds; README "The document view" has the figures).

Leaves out: the text (``rag.texts``) and the HTML (``rag.render.passage_html``).
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from rag.errors import RAGError

SCALE = 1.5  # 108 dpi: a page is about 900 x 1260 pixels, legible beside the text
MAX_PIXELS = 4_000_000  # a huge page (a poster) is drawn smaller, not at any cost

_CHILD = r"""
import json, resource, sys
limit = int(sys.argv[4]) * 1024 * 1024
resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
import pypdfium2 as pdfium
from PIL import Image, ImageChops, ImageDraw
lines = json.loads(sys.stdin.read() or "[]")
doc = pdfium.PdfDocument(sys.argv[1])
n = int(sys.argv[2])
if not 1 <= n <= len(doc):
    sys.exit(f"the PDF has {len(doc)} pages, not a page {n}")
page = doc[n - 1]
w, h = page.get_size()
scale = min(float(sys.argv[3]), (int(sys.argv[5]) / max(w * h, 1.0)) ** 0.5)
image = page.render(scale=scale).to_pil().convert("RGB")
text, boxes, after = page.get_textpage(), [], -1
for line in lines:  # each line of the passage, in order on the page where it can be
    search = text.search(line, match_case=False)
    found = [o for o in iter(search.get_next, None)]
    at = next((o for o in found if o[0] > after), found[0] if found else None)
    if at:
        after = at[0]
        boxes += [text.get_rect(i) for i in range(text.count_rects(*at))]
if boxes:
    layer = Image.new("RGB", image.size, (255, 255, 255))
    draw = ImageDraw.Draw(layer)
    for left, bottom, right, top in boxes:
        draw.rectangle([left * scale - 2, (h - top) * scale - 2, right * scale + 2, (h - bottom) * scale + 2],
                       fill=(253, 224, 71))
    image = ImageChops.multiply(image, layer)  # a highlighter: the text stays dark
image.save(sys.stdout.buffer, format="PNG")
"""


class PageImageError(RAGError):
    pass


def render_page(pdf: str | Path, page: int, timeout_s: float = 20.0, memory_mb: int = 1024,
                scale: float = SCALE, passage: str = "") -> bytes:
    """Page ``page`` (from 1) of the PDF file ``pdf`` as PNG bytes, with the lines of ``passage`` that pdfium finds
    on it highlighted (pdfminer, which extracted the text, and pdfium may break lines differently: a line not
    found is left unmarked)."""
    lines = [line.strip() for line in passage.splitlines() if len(line.strip()) >= 3][:200]
    args = [sys.executable, "-c", _CHILD, str(pdf), str(int(page)), str(scale), str(int(memory_mb)), str(MAX_PIXELS)]
    try:
        done = subprocess.run(args, input=json.dumps(lines).encode(), capture_output=True, timeout=timeout_s,
                              check=False)
    except subprocess.TimeoutExpired:
        raise PageImageError(f"drawing page {page} took longer than {timeout_s:g} s (RAG_CONVERT_TIMEOUT_S)") from None
    if done.returncode != 0 or not done.stdout.startswith(b"\x89PNG"):
        why = done.stderr.decode("utf-8", "replace").strip().splitlines()[-1:] or ["out of memory?"]
        raise PageImageError(f"page {page} could not be drawn ({why[0][:200]})")
    return done.stdout
