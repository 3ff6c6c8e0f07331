"""Documents as units: listed, replaced, removed and chosen as what a question searches, in the store (Lite and a
server), the pipeline, the library and the CLI; with document names that try to be code."""

from __future__ import annotations

import json
import logging
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from conftest import cli_env

from rag.errors import RAGError, UnknownDocumentError
from rag.library import Library
from rag.pipeline import FIRST_STAGES, Pipeline
from rag.store import MilvusStore
from rag.types import Chunk

# Names that would change a filter expression if they were pasted into it, or that LIKE would widen.
HOSTILE = ['quote"d.md', "it's.md", "back\\slash.md", 'x" or doc != "', "or", "100%_done.md", "new\nline.md",
           "n" * 1000, "a", "a.md", "中文 文件.md", "%", "_", "\\", '"']


@pytest.fixture(params=["lite", "server"])
def store(request, tmp_path) -> MilvusStore:
    uri = str(tmp_path / "lite.db") if request.param == "lite" else request.getfixturevalue("milvus_server")
    s = MilvusStore(uri, f"docs_{request.param}", timeout=60)
    s.drop()
    yield s
    s.drop()
    s.close()


def test_hostile_names_are_listed_searched_and_removed_exactly(store: MilvusStore) -> None:
    store.ensure("m", 8)
    chunks = [Chunk(f"id{i}-{j}", f"shared words, part {j} of document {i}", name + ("#page=2" if j else ""),
                    f"H{i}", name) for i, name in enumerate(HOSTILE) for j in range(2)]
    vectors = np.random.default_rng(0).normal(size=(len(chunks), 8)).astype(np.float32)
    store.insert(chunks, vectors / np.linalg.norm(vectors, axis=1, keepdims=True), added_by="ann")
    store.flush()
    listed = {d.source: d for d in store.documents()}
    assert set(listed) == set(HOSTILE)
    assert all(d.chunks == 2 and d.pages == 2 and d.added_by == "ann" and d.added > 0 for d in listed.values())
    for i, name in enumerate(HOSTILE):
        mine = {f"id{i}-0", f"id{i}-1"}
        dense = store.search(vectors[0], 10, [name])
        bm25 = store.search_bm25("shared words", 10, [name])
        hybrid = store.search_hybrid(vectors[0], "shared words", 10, [name])
        for found in (dense, bm25, hybrid):
            assert {c.id for c, _ in found} == mine, name
            assert {c.document for c, _ in found} == {name}
        assert store.count([name]) == 2
    assert store.count(["not there", "a.m"]) == 0 and store.search(vectors[0], 10, ["a.m"]) == []
    assert store.delete_documents(['x" or doc != "', "missing"]) == {'x" or doc != "': 2}
    assert store.count() == 2 * len(HOSTILE) - 2 and 'x" or doc != "' not in {d.source for d in store.documents()}


@pytest.fixture
def pipeline(make_settings, tmp_path: Path) -> Pipeline:
    return Pipeline(make_settings(data_dir=str(tmp_path / "data")))


def write(folder: Path, files: dict[str, str]) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for name, text in files.items():
        (folder / name).write_text(text, encoding="utf-8")
    return folder


def texts(pipeline: Pipeline) -> list[str]:
    return [r["text"] for r in pipeline.store.rows(["text"])]


def test_ingest_replaces_an_edited_file_and_sync_removes_a_deleted_one(pipeline: Pipeline, tmp_path: Path) -> None:
    docs = write(tmp_path / "docs", {"a.md": "# Fruit\n\nThe old text is about apples.\n\n# Keep\n\nThis stays.",
                                     "b.md": "# Other\n\nA second file about boats."})
    first = pipeline.ingest([docs])
    assert {(d.source, d.status) for d in first.documents} == {(f"{docs}/a.md", "added"), (f"{docs}/b.md", "added")}
    write(docs, {"a.md": "# Fruit\n\nThe new text is about pears.\n\n# Keep\n\nThis stays."})
    second = pipeline.ingest([docs])
    assert {(d.source, d.status) for d in second.documents} == {(f"{docs}/a.md", "replaced"),
                                                                (f"{docs}/b.md", "unchanged")}
    assert second.chunks_added == 1  # only the edited section is embedded; "Keep" and b.md were stored
    stored = texts(pipeline)
    assert not any("apples" in t for t in stored) and sum("pears" in t for t in stored) == 1 and len(stored) == 3
    assert "apples" not in " ".join(h.text for h in pipeline.first_stage("apples", "bm25", 10).candidates)

    (docs / "b.md").unlink()
    kept = pipeline.ingest([docs])  # without --sync a file gone from the folder stays in the index
    assert kept.removed == () and f"{docs}/b.md" in {d.source for d in pipeline.store.documents()}
    synced = pipeline.ingest([docs], sync=True)
    assert synced.removed == (f"{docs}/b.md",)
    assert [d.source for d in pipeline.store.documents()] == [f"{docs}/a.md"]
    assert synced.to_dict()["removed"] == [f"{docs}/b.md"] and synced.to_dict()["documents"][0]["status"]


def test_two_documents_with_the_same_passage_each_keep_it(pipeline: Pipeline, tmp_path: Path) -> None:
    docs = write(tmp_path / "d", {"one.md": "# Shared\n\nThe same words.", "two.md": "# Shared\n\nThe same words."})
    pipeline.ingest([docs])
    assert pipeline.store.count() == 2
    pipeline.store.delete_documents([f"{docs}/one.md"])
    assert [h.document for h in pipeline.first_stage("same words", "bm25", 5).candidates] == [f"{docs}/two.md"]


def test_every_first_stage_searches_only_the_chosen_documents(pipeline: Pipeline, tmp_path: Path,
                                                              faq_dir: Path) -> None:
    docs = write(tmp_path / "mine", {"contract.md": "# Terms\n\nMilvus data is stored for ten years by contract.",
                                     'odd "name" or x.md': "# Odd\n\nMilvus stores data in an odd place."})
    pipeline.ingest([faq_dir / "product_faq.md", docs])
    chosen = [f"{docs}/contract.md", f'{docs}/odd "name" or x.md']
    question = "Where does Milvus store data, by contract or in an odd place?"
    for mode in FIRST_STAGES:
        everything = pipeline.first_stage(question, mode, 10)
        assert len({h.document for h in everything.candidates}) > 1, mode
        scoped = pipeline.first_stage(question, mode, 10, sources=chosen)
        assert scoped.candidates and {h.document for h in scoped.candidates} <= set(chosen), mode
        assert scoped.sources == tuple(chosen)
    ranked = pipeline.retrieve(question, 10, 3, sources=chosen[:1])
    assert {h.document for h in ranked.candidates} == {chosen[0]} and ranked.to_dict()["sources"] == chosen[:1]
    with pytest.raises(UnknownDocumentError, match="rag documents"):
        pipeline.retrieve(question, sources=["no such document.md"])


def test_uploads_replace_by_file_name_and_a_bad_upload_keeps_the_good_version(make_settings, tmp_path: Path) -> None:
    library = Library(Pipeline(make_settings(data_dir=str(tmp_path / "data"))))
    up = write(tmp_path / "up", {"notes.md": "# Notes\n\nVersion one mentions a typo."})
    first = library.add([up / "notes.md"], user="ann")
    assert [(d.source, d.status) for d in first.documents] == [("notes.md", "added")]
    write(up, {"notes.md": "# Notes\n\nVersion two is fixed."})
    second = library.add([up / "notes.md"], user="bob")
    assert [(d.source, d.status) for d in second.documents] == [("notes.md", "replaced")]
    assert [t for t in texts(library.pipeline)] == ["Notes\n\nVersion two is fixed."]
    assert (tmp_path / "data" / "uploads" / "notes.md").read_text() == "# Notes\n\nVersion two is fixed."
    [doc] = library.documents()
    assert (doc.source, doc.added_by, doc.format) == ("notes.md", "bob", "md")

    (up / "notes.md").write_bytes(b"\x00 not text any more")  # the same name, unreadable: skipped, nothing lost
    with pytest.raises(RAGError, match="No usable document"):
        library.add([up / "notes.md"])
    assert texts(library.pipeline) == ["Notes\n\nVersion two is fixed."]
    assert (tmp_path / "data" / "uploads" / "notes.md").read_text() == "# Notes\n\nVersion two is fixed."
    assert not any((tmp_path / "data" / "incoming").iterdir())  # the staging folder is gone


def test_remove_takes_chunks_kept_upload_and_default_documents_out_for_good(make_settings, tmp_path: Path,
                                                                              faq_dir: Path) -> None:
    library = Library(Pipeline(make_settings(data_dir=str(tmp_path / "data"), docs=str(faq_dir))))
    library.start().join(120)
    up = write(tmp_path / "up", {"mine.md": "# Mine\n\nMy own words about vectors."})
    library.add([up / "mine.md"])
    names = {d.source for d in library.documents()}
    assert {"milvus_faq/product_faq.md", "milvus_faq/PROVENANCE.txt", "mine.md"} <= names
    done = library.remove(["mine.md", "milvus_faq/product_faq.md", "not there"])
    assert set(done.removed) == {"mine.md", "milvus_faq/product_faq.md"} and done.unknown == ("not there",)
    assert not (tmp_path / "data" / "uploads" / "mine.md").exists()
    left = {d.source for d in library.documents()}
    assert left == names - {"mine.md", "milvus_faq/product_faq.md"}
    assert all(h.document in left for h in library.pipeline.first_stage("Milvus", "bm25", 50).candidates)
    library.rebuild()  # a rebuild brings back neither the removed upload nor the removed default page
    assert {d.source for d in library.documents()} == left
    with pytest.raises(UnknownDocumentError, match="rag documents"):
        library.remove(["mine.md"])
    outside = write(tmp_path / "elsewhere", {"own.md": "# Own\n\nA file the library does not keep."}) / "own.md"
    library.pipeline.ingest([outside.resolve()])  # named by its absolute path, as `rag ingest /abs/path` names it
    assert set(library.remove([str(outside.resolve())]).removed) == {str(outside.resolve())}
    assert outside.exists()  # a name is data: removing the document never deletes a file outside the uploads


def test_offline_first_start_indexes_the_shipped_faq_and_says_so(make_settings, tmp_path: Path, monkeypatch,
                                                                 caplog) -> None:
    import rag.corpus

    monkeypatch.setattr(rag.corpus, "FAQ_ZIP_URL", "http://127.0.0.1:9/milvus_docs.zip")  # refused at once
    library = Library(Pipeline(make_settings(data_dir=str(tmp_path / "data"))))
    seen: list[str] = []  # the status line, in English and in Chinese, at each step of the indexing
    progress = library._progress

    def spy(what, origin=()):
        update = progress(what, origin)
        return lambda done, total: (update(done, total), seen.append((library.status, library.status_in("zh-TW"))))

    library._progress = spy
    with caplog.at_level(logging.INFO, logger="rag"):
        library.start().join(120)
    assert library.status == "" and not library.busy
    assert sorted(d.source for d in library.documents()) == [
        "milvus_faq/operational_faq.md", "milvus_faq/performance_faq.md", "milvus_faq/product_faq.md",
        "milvus_faq/troubleshooting.md"]
    english, chinese = seen[0]
    assert "shipped in the repository" in english and "shipped in the repository" in caplog.text
    assert english != chinese and "shipped" not in chinese


def run(args: list[str], env: dict[str, str], cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "rag", *args], env=env, cwd=cwd, capture_output=True, text=True,
                          timeout=300)


@pytest.mark.slow
def test_cli_documents_remove_source_and_sync(tiny_models, tmp_path: Path) -> None:
    env = cli_env(*tiny_models, RAG_MILVUS_URI=str(tmp_path / "m.db"), RAG_DATA_DIR=str(tmp_path / "data"))
    odd = 'it\'s "odd" or x.md'
    write(tmp_path / "docs", {"one.md": "# One\n\nMilvus stores vectors in segments.",
                              odd: "# Odd\n\nMilvus stores vectors oddly.",
                              "two.md": "# Two\n\nA page about zebras."})
    ingest = run(["ingest", "docs", "--json"], env, tmp_path)
    assert ingest.returncode == 0, ingest.stderr
    assert {d["status"] for d in json.loads(ingest.stdout)["documents"]} == {"added"}
    listed = json.loads(run(["documents", "--json"], env, tmp_path).stdout)["documents"]
    assert [d["source"] for d in listed] == ["docs/" + odd, "docs/one.md", "docs/two.md"]
    assert set(listed[0]) >= {"source", "chunks", "pages", "added", "format", "chars", "added_by"}
    found = run(["search", "Milvus vectors", "--source", "docs/" + odd, "--json"], env, tmp_path)
    assert found.returncode == 0, found.stderr
    assert {h["document"] for h in json.loads(found.stdout)["candidates"]} == {"docs/" + odd}
    unknown = run(["search", "Milvus", "--source", "docs/none.md"], env, tmp_path)
    assert unknown.returncode == 2 and "None of the documents chosen" in unknown.stderr
    assert "Traceback" not in unknown.stderr

    (tmp_path / "docs" / "two.md").unlink()
    synced = run(["ingest", "docs", "--sync"], env, tmp_path)
    assert synced.returncode == 0 and "removed   docs/two.md (gone from its folder)" in synced.stdout
    assert "unchanged docs/one.md" in synced.stdout
    removed = run(["remove", "docs/one.md", "docs/none.md", "--json"], env, tmp_path)
    assert removed.returncode == 2 and json.loads(removed.stdout) == {
        "removed": [{"source": "docs/one.md", "chunks": 1}], "unknown": ["docs/none.md"]}
    assert "no document named 'docs/none.md'" in removed.stderr
    text = run(["documents"], env, tmp_path).stdout
    assert "docs/" + odd in text and "docs/one.md" not in text and "1 documents, 1 chunks." in text


@pytest.mark.slow
def test_a_small_scope_is_searched_exactly_once_the_index_would_miss_it(tmp_path: Path) -> None:
    import time

    store = MilvusStore(str(tmp_path / "big.db"), "big")
    store.ensure("m", 8)
    rng = np.random.default_rng(0)
    for start in range(0, 1000, 100):  # 1,000 documents of 20 chunks: sealed segments that Lite indexes (HNSW)
        chunks = [Chunk(f"{i}-{j}", f"chunk {j} of document {i} " * 20, f"d{i}.pdf#page={j + 1}", "", f"d{i}.pdf")
                  for i in range(start, start + 100) for j in range(20)]
        store.insert(chunks, rng.normal(size=(len(chunks), 8)).astype(np.float32))
    store.flush()
    query = rng.normal(size=8).astype(np.float32)
    raw = store.client
    found_by_index = 10
    deadline = time.monotonic() + 90
    while found_by_index == 10 and time.monotonic() < deadline:  # until the index is built and answers
        time.sleep(2)
        found_by_index = len(raw.search("big", data=[query.tolist()], limit=10, anns_field="vector",
                                        filter='doc in ["d7.pdf"]', search_params={"metric_type": "IP"})[0])
    print(f"Milvus Lite's own filtered search found {found_by_index} of 10")  # 1 here (2026-12-02)
    rows = raw.query("big", filter='doc in ["d7.pdf"]', output_fields=["id", "vector"], limit=100)
    exact = sorted(rows, key=lambda r: -float(np.dot(r["vector"], query)))[:10]
    dense = store.search(query, 10, ["d7.pdf"])
    assert [c.id for c, _ in dense] == [r["id"] for r in exact]
    assert [s for _, s in dense] == pytest.approx([float(np.dot(r["vector"], query)) for r in exact], abs=1e-5)
    assert len(store.search_bm25("chunk document", 10, ["d7.pdf"])) == 10
    hybrid = store.search_hybrid(query, "chunk document", 10, ["d7.pdf"])
    assert len(hybrid) == 10 and {c.document for c, _ in hybrid} == {"d7.pdf"}
    store.close()
