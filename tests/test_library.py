"""Uploads, zips (safe extraction), clear and rebuild, and first-start indexing of the default corpus."""

from __future__ import annotations

import zipfile
from pathlib import Path

import pytest

from rag.documents import extract_zip
from rag.errors import RAGError
from rag.library import Library
from rag.pipeline import Pipeline


@pytest.fixture
def library(make_settings, tmp_path: Path, faq_dir: Path) -> Library:
    return Library(Pipeline(make_settings(data_dir=str(tmp_path / "data"), docs=str(faq_dir))))


def make_zip(path: Path, entries: dict[str, bytes]) -> Path:
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as z:
        for name, data in entries.items():
            z.writestr(name, data)
    return path


def test_first_start_indexes_the_default_corpus_with_status(library: Library) -> None:
    seen: list[str] = []
    library._progress = lambda what, origin="": (lambda d, t: seen.append(f"{what}: {d}/{t}"))  # record the updates
    library.start().join(120)
    assert library.status == "" and not library.busy
    count = library.pipeline.store.count()
    assert count > 50 and seen[0] == f"status.indexing_default: 0/{count}"  # what: the status's locale key
    assert seen[-1] == f"status.indexing_default: {count}/{count}"
    updates = len(seen)
    library.start().join(60)  # a second start finds the collection filled and indexes nothing
    assert len(seen) == updates and library.pipeline.store.count() == count and library.status == ""


def test_first_start_with_a_missing_corpus_says_what_to_do(make_settings, tmp_path: Path) -> None:
    lib = Library(Pipeline(make_settings(docs=str(tmp_path / "nowhere"))))
    lib.start().join(60)
    assert lib.status.startswith("⚠ ") and "RAG_DOCS" in lib.status


def test_upload_files_and_a_zip_then_clear_and_rebuild(library: Library, tmp_path: Path) -> None:
    note = tmp_path / "note.md"
    note.write_text("# Note\n\nA plain uploaded note about vector indexes.")
    archive = make_zip(tmp_path / "bundle.zip", {
        "docs/a.md": b"# A\n\nAlpha text inside the zip.",
        "../escape.md": b"# Evil\n\nwritten outside",
        "/abs.md": b"# Abs\n\nabsolute",
        "bin.md": b"\x00\x01\x02",
        "picture.png": b"\x89PNG",
    })
    report = library.add([note, archive])
    assert report.chunks_added == 2 and report.files == 2
    reasons = {s.path: s.reason for s in report.skipped_files}
    assert any("escape.md" in p and "unsafe" in r for p, r in reasons.items())
    assert any("abs.md" in p and "unsafe" in r for p, r in reasons.items())
    assert any("bin.md" in p and "NUL" in r for p, r in reasons.items())
    assert not (tmp_path / "escape.md").exists() and not list(tmp_path.parent.glob("escape.md"))
    stats = library.stats()
    assert stats["chunks"] == 2 and stats["uploads"] == 2  # note.md and bundle/docs/a.md kept; bin.md was not indexed
    library.clear()
    assert library.pipeline.store.count() == 0
    rebuilt = library.rebuild()
    assert library.pipeline.store.count() == rebuilt.chunks_added > 50  # the FAQ and the kept uploads
    assert {"Note", "A"} <= {h.heading for h in library.pipeline.dense("uploaded note", 100).candidates}


def test_upload_limits(library: Library, tmp_path: Path) -> None:
    files = []
    for i in range(library.settings.max_upload_files + 1):
        f = tmp_path / f"f{i}.md"
        f.write_text(f"# F{i}\n\ntext {i}")
        files.append(f)
    with pytest.raises(RAGError, match="RAG_MAX_UPLOAD_FILES"):
        library.add(files)
    with pytest.raises(RAGError, match="Nothing to add"):
        library.add([make_zip(tmp_path / "empty.zip", {"x.png": b"png"})])


def test_zip_bomb_is_cut_off(tmp_path: Path) -> None:
    big = b"a " * 3_000_000  # 6 MB of text that compresses to a few KB
    archive = make_zip(tmp_path / "bomb.zip", {f"part{i}.md": big for i in range(20)})
    assert archive.stat().st_size < 1_000_000
    written, skipped = extract_zip(archive, tmp_path / "out", max_bytes=10_000_000, max_total_bytes=20_000_000)
    assert sum(f.stat().st_size for f in written) <= 26_000_000 and len(written) < 20
    assert any("beyond the upload limits" in s.reason for s in skipped)
    written, skipped = extract_zip(archive, tmp_path / "out2", max_bytes=1_000_000)
    assert not written and all("MB limit" in s.reason for s in skipped)


def test_not_a_zip(tmp_path: Path) -> None:
    fake = tmp_path / "fake.zip"
    fake.write_bytes(b"not a zip")
    written, skipped = extract_zip(fake, tmp_path / "out", 1000)
    assert not written and "not a readable zip" in skipped[0].reason


def test_upload_of_converted_formats_single_and_in_a_zip(library: Library, tmp_path: Path) -> None:
    import formats

    pdf = formats.pdf(tmp_path / "report.pdf", ["Sealed segments live in object storage.", "Page two text."])
    docx = formats.docx(tmp_path / "notes.docx", "Upload notes", ["A Word paragraph about compaction."])
    scanned = formats.scanned_pdf(tmp_path / "scan.pdf")
    archive = make_zip(tmp_path / "office.zip", {"in/notes.docx": docx.read_bytes(),
                                                 "in/scan.pdf": scanned.read_bytes(), "in/fake.pptx": b"just text"})
    report = library.add([pdf, archive])
    reasons = {Path(s.path).name: s.reason for s in report.skipped_files}
    assert set(reasons) == {"scan.pdf", "fake.pptx"} and "OCR" in reasons["scan.pdf"]
    assert reasons["fake.pptx"] == "named .pptx, but its content is text"
    assert report.files == 2  # the PDF (two pages) and the Word file
    sources = {h.source.rsplit("/", 1)[-1] for h in library.pipeline.dense("segments compaction", 100).candidates}
    assert {"report.pdf#page=1", "report.pdf#page=2", "notes.docx"} <= sources
