"""Small documents of every converted format, built by the tests themselves (nothing binary is committed).

Each builder writes one file and returns its path. The good ones each hold a sentence the tests search for; the
bad ones are each bad in one way that the converter must name.
"""

from __future__ import annotations

import csv
import zipfile
from pathlib import Path


def pdf(path: Path, pages: list[str], password: str | None = None) -> Path:
    """A text PDF, one paragraph per page; encrypted (user password) when ``password`` is given."""
    from fpdf import FPDF

    doc = FPDF()
    doc.set_font("helvetica", size=12)
    for text in pages:
        doc.add_page()
        doc.multi_cell(0, 8, text)
    if password:
        doc.set_encryption(owner_password="owner-" + password, user_password=password)
    doc.output(str(path))
    return path


def scanned_pdf(path: Path) -> Path:
    """A PDF whose only page holds shapes and no text, as a scan's page holds only an image."""
    from fpdf import FPDF

    doc = FPDF()
    doc.add_page()
    for i in range(10):
        doc.rect(20 + 5 * i, 20 + 8 * i, 100, 6, style="F")
    doc.output(str(path))
    return path


def docx(path: Path, heading: str, paragraphs: list[str]) -> Path:
    import docx as python_docx

    doc = python_docx.Document()
    doc.add_heading(heading, level=1)
    for p in paragraphs:
        doc.add_paragraph(p)
    doc.save(str(path))
    return path


def pptx(path: Path, slides: list[tuple[str, str]]) -> Path:
    from pptx import Presentation

    deck = Presentation()
    for title, body in slides:
        slide = deck.slides.add_slide(deck.slide_layouts[1])
        slide.shapes.title.text = title
        slide.placeholders[1].text = body
    deck.save(str(path))
    return path


def xlsx(path: Path, rows: list[list[str]]) -> Path:
    from openpyxl import Workbook

    book = Workbook()
    sheet = book.active
    sheet.title = "Prices"
    for row in rows:
        sheet.append(row)
    book.save(str(path))
    return path


def csv_file(path: Path, rows: list[list[str]]) -> Path:
    with open(path, "w", newline="", encoding="utf-8") as f:
        csv.writer(f).writerows(rows)
    return path


def html(path: Path, title: str, body: str) -> Path:
    path.write_text(f"<!doctype html><html><head><title>{title}</title></head><body><h1>{title}</h1>"
                    f"<p>{body}</p><script>var ignored = 'script text';</script></body></html>", encoding="utf-8")
    return path


def epub(path: Path, title: str, chapters: list[tuple[str, str]]) -> Path:
    """A minimal EPUB 3: the mimetype entry first and stored, a container, a package document, XHTML chapters."""
    items = "".join(f'<item id="c{i}" href="c{i}.xhtml" media-type="application/xhtml+xml"/>'
                    for i in range(len(chapters)))
    spine = "".join(f'<itemref idref="c{i}"/>' for i in range(len(chapters)))
    with zipfile.ZipFile(path, "w") as z:
        z.writestr("mimetype", "application/epub+zip", compress_type=zipfile.ZIP_STORED)
        z.writestr("META-INF/container.xml",
                   '<?xml version="1.0"?><container version="1.0" '
                   'xmlns="urn:oasis:names:tc:opendocument:xmlns:container"><rootfiles>'
                   '<rootfile full-path="OEBPS/content.opf" media-type="application/oebps-package+xml"/>'
                   '</rootfiles></container>')
        z.writestr("OEBPS/content.opf",
                   '<?xml version="1.0"?><package xmlns="http://www.idpf.org/2007/opf" version="3.0" '
                   'unique-identifier="id"><metadata xmlns:dc="http://purl.org/dc/elements/1.1/">'
                   f'<dc:identifier id="id">test-book</dc:identifier><dc:title>{title}</dc:title>'
                   f'<dc:language>en</dc:language></metadata><manifest>{items}</manifest>'
                   f'<spine>{spine}</spine></package>')
        for i, (heading, text) in enumerate(chapters):
            z.writestr(f"OEBPS/c{i}.xhtml",
                       '<?xml version="1.0"?><html xmlns="http://www.w3.org/1999/xhtml"><head><title>'
                       f'{heading}</title></head><body><h2>{heading}</h2><p>{text}</p></body></html>')
    return path


def swollen_docx(path: Path, paragraphs: int) -> Path:
    """A .docx of ``paragraphs`` identical paragraphs: about 100 kB on disk, 100 bytes of XML each unpacked (the
    shape of a hostile file that is small to send and large to parse)."""
    seed = docx(path.with_name("seed-" + path.name), "Swollen", ["seed"])
    with zipfile.ZipFile(seed) as z:
        members = {name: z.read(name) for name in z.namelist()}
    head, tail = members["word/document.xml"].decode().split("<w:body>", 1)
    para = "<w:p><w:r><w:t>Lorem ipsum dolor sit amet consectetur adipiscing elit sed do eiusmod.</w:t></w:r></w:p>"
    members["word/document.xml"] = (head + "<w:body>" + para * paragraphs + tail).encode()
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as z:
        for name, data in members.items():
            z.writestr(name, data)
    seed.unlink()
    return path


def corrupt_docx(path: Path, good: Path) -> Path:
    """The first half of a good .docx: a zip cut short, as an interrupted download leaves it."""
    data = good.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    return path


def lying(path: Path) -> Path:
    """Plain text under an office/PDF extension."""
    path.write_text("This is plain text that only claims to be a document.\n", encoding="utf-8")
    return path
