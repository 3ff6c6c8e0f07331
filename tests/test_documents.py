from __future__ import annotations

from pathlib import Path

from rag.documents import Document, chunk_document, load_documents, word_spans

MD = """---
title: Front matter is dropped
---

# Guide

<!-- TOC -->

## Install

Run the installer.

```bash
# not a heading: inside a code fence
make install
```

## Empty section

### Use

Call it.
"""


def test_headings_stay_with_their_bodies_and_empty_sections_go() -> None:
    chunks = chunk_document(Document("g.md", MD), max_tokens=200, overlap=10)
    assert [c.heading for c in chunks] == ["Install", "Use"]
    install = chunks[0].text
    assert install.startswith("Install\n\nRun the installer.")
    assert "# not a heading: inside a code fence" in install and "make install" in install
    assert chunks[1].text == "Use\n\nCall it."
    assert all(c.source == "g.md" for c in chunks)
    assert "Front matter" not in " ".join(c.text for c in chunks) and "TOC" not in chunks[0].text


def test_long_section_is_windowed_with_overlap_and_heading() -> None:
    words = [f"w{i}" for i in range(250)]
    chunks = chunk_document(Document("long.md", "# Long\n\n" + " ".join(words)), max_tokens=51, overlap=10)
    assert len(chunks) > 1
    seen: list[str] = []
    for c in chunks:
        assert c.heading == "Long" and c.text.startswith("Long\n\n")
        assert len(word_spans(c.text)) <= 51
        body = c.text.split("\n\n", 1)[1].split()
        if seen:
            assert body[:10] == seen[-10:]  # the overlap
        seen += body[10:] if seen else body
    assert seen == words  # nothing lost


def test_ids_are_stable_and_content_derived() -> None:
    a = chunk_document(Document("a.md", MD), 200, 10)
    b = chunk_document(Document("elsewhere/b.md", MD), 200, 10)
    assert [c.id for c in a] == [c.id for c in b]
    assert len({c.id for c in a}) == len(a)


def test_txt_files_are_not_split_at_hashes(tmp_path: Path) -> None:
    chunks = chunk_document(Document("notes.txt", "line one\n# not a heading in a .txt\nline three"), 100, 5)
    assert len(chunks) == 1 and chunks[0].heading == ""


def test_loader_takes_files_folders_and_globs_and_reports_skips(tmp_path: Path) -> None:
    (tmp_path / "sub").mkdir()
    (tmp_path / "a.md").write_text("# A\n\nalpha")
    (tmp_path / "sub" / "b.markdown").write_text("# B\n\nbeta")
    (tmp_path / "sub" / "c.txt").write_text("gamma")
    (tmp_path / "empty.md").write_text("  \n")
    (tmp_path / "binary.md").write_bytes(b"\x89PNG\x00\x00\x01")
    (tmp_path / "latin1.md").write_bytes("caf\xe9".encode("latin-1"))
    (tmp_path / "big.md").write_text("x" * 2000)
    (tmp_path / "image.png").write_bytes(b"\x89PNG")
    docs, skipped = load_documents([tmp_path], max_bytes=1000)
    assert sorted(Path(d.source).name for d in docs) == ["a.md", "b.markdown", "c.txt"]
    reasons = {Path(s.path).name: s.reason for s in skipped}
    assert set(reasons) == {"empty.md", "binary.md", "latin1.md", "big.md"}
    assert "NUL" in reasons["binary.md"] and "UTF-8" in reasons["latin1.md"] and "MB" in reasons["big.md"]

    docs, skipped = load_documents([str(tmp_path / "sub" / "*.txt"), tmp_path / "a.md", "nope/*.md"], 1000)
    assert sorted(Path(d.source).name for d in docs) == ["a.md", "c.txt"]
    assert [s.path for s in skipped] == ["nope/*.md"]


def test_faq_corpus_chunks_cleanly(faq_dir: Path) -> None:
    docs, skipped = load_documents([str(faq_dir / "*.md")], max_bytes=10**7)
    assert len(docs) == 4 and not skipped
    chunks = [c for d in docs for c in chunk_document(d, 512, 64)]
    # The tutorial's split("# ") gives 72 pieces, some of them only a title or front matter.
    assert 55 <= len(chunks) <= 72
    for c in chunks:
        head, _, body = c.text.partition("\n\n")
        assert head == c.heading and body.strip(), c.text[:80]
    storage = [c for c in chunks if c.heading == "Where does Milvus store data?"]
    assert len(storage) == 1 and "MinIO" in storage[0].text
