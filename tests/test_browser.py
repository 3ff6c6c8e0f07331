"""The real app in a real browser: Debian's Chromium driven by Playwright, tiny models, the loopback LLM server.

Screenshots go to ``screenshots/`` at the repository root (not committed) so a person can look at them.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from apprun import sign_in, start_app, stop
from openai_server import FakeOpenAI, Reply

from rag.settings import ROOT

SHOTS = ROOT / "screenshots"
PAYLOADS = """# Scripts

<script>window.__xss = "script"</script> A document with a script tag.

# Images

<img src="x" onerror="window.__xss = 'onerror'"> An image whose onerror handler must never run.

# Links and frames

<a href="javascript:window.__xss='link'">click me</a> and <iframe src="javascript:window.__xss='iframe'"></iframe>
and [a markdown link](javascript:window.__xss='md').
"""

# the reranked column is complete: three cards, and no "Reranking k of N" line any more
RERANKED = ("document.querySelectorAll('#rerank-col .rag-card').length === 3 && "
            "!document.querySelector('#rerank-col .rag-pending')")

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def llm() -> Iterator[FakeOpenAI]:
    answer = ["Milvus keeps ", "inserted data ", "in object storage such as MinIO [1], ", "and metadata in etcd [2]."]
    with FakeOpenAI(Reply(chunks=answer)) as server:
        yield server


def test_question_shows_both_rankings_and_a_streamed_answer(browser, llm, tiny_models, faq_dir, tmp_path) -> None:
    url, proc = start_app(tmp_path, tiny_models, faq_dir, llm.url, "sk-browser-test")
    try:
        page = browser.new_page(viewport={"width": 1440, "height": 1000})
        page.goto(url)
        page.locator("#question textarea").fill("Where does Milvus store data?")
        page.locator("#ask").click()
        page.wait_for_function(RERANKED, timeout=60000)
        assert page.locator("#dense-col .rag-card").count() == 3
        page.get_by_text("and metadata in etcd [2].").wait_for(timeout=60000)
        scores = page.locator("#comparison .rag-scores").all_inner_texts()
        assert len(scores) == 6 and all("IP 0." in s or "IP -0." in s for s in scores)
        assert all("P(yes) 0." in s or "P(yes) 1." in s for s in scores)
        assert page.locator("#chat").get_by_text("Sources").count() >= 1
        assert page.locator("#chart .rag-bar-row").count() == 10
        timing = page.locator("#timings").inner_text()
        assert "first token" in timing and "–" not in timing
        page.locator("#rerank-col details").first.click()  # expand the full text
        SHOTS.mkdir(exist_ok=True)
        page.screenshot(path=str(SHOTS / "app.png"), full_page=True)
        assert llm.requests[-1]["body"]["stream"] is True
        assert "sk-browser-test" not in page.content()

        # The named API endpoints, as the README shows them.
        from gradio_client import Client

        client = Client(url, verbose=False)
        found = client.predict("Where does Milvus store data?", 10, 3, api_name="/search")
        assert len(found["dense"]) == 3 and len(found["reranked"]) == 3 and len(found["candidates"]) == 10
        answer = client.predict("Where does Milvus store data?", api_name="/ask")
        assert answer["answer"].endswith("and metadata in etcd [2].") and len(answer["sources"]) == 3
        assert answer["sources"][0]["rerank_rank"] == 1 and "first_token_s" in answer["timings"]

        # Documents tab: upload a note, a deck and a zip with a PDF, a Word file and bad entries; the report names
        # what was added and what was skipped, and why.
        import zipfile

        import formats

        note = tmp_path / "upload-note.md"
        note.write_text("# Uploaded note\n\nVector indexes trade memory for speed.")
        deck = formats.pptx(tmp_path / "deck.pptx", [("Costs", "Milvus is free."), ("Hardware", "It runs on ARM.")])
        pdf = formats.pdf(tmp_path / "report.pdf", ["Sealed segments go to object storage.", "Compaction merges."])
        docx = formats.docx(tmp_path / "notes.docx", "Word notes", ["Flushing seals a growing segment."])
        scan = formats.scanned_pdf(tmp_path / "scan.pdf")
        with zipfile.ZipFile(tmp_path / "bundle.zip", "w") as z:
            z.writestr("guide/setup.md", "# Setup\n\nInstall the package, then run it.")
            z.writestr("../escape.md", "# Escape\n\nmust not be written")
            for f in (pdf, docx, scan):
                z.write(f, f"docs/{f.name}")
        page.get_by_role("tab", name="Documents").click()
        page.locator("#stats").get_by_text("chunks in collection").wait_for(timeout=30000)
        page.locator("input[type=file]").set_input_files([str(note), str(deck), str(tmp_path / "bundle.zip")])
        page.wait_for_timeout(1000)
        page.locator("#add").click()
        page.locator("#report").get_by_text("Added").first.wait_for(timeout=60000)
        report = page.locator("#report").inner_text()
        # note, setup, notes.docx: 1 chunk each; the deck's 2 slides and the PDF's 2 pages: 1 chunk each
        assert "Added 7 chunks from 5 files" in report, report
        assert "escape.md" in report and "unsafe path" in report and "scan.pdf" in report and "OCR" in report
        page.screenshot(path=str(SHOTS / "documents.png"), full_page=True)

        # A URL on this machine: the app refuses loopback addresses (RAG_ALLOW_PRIVATE_URLS is off)
        page.locator("#urls textarea").fill(url)
        page.locator("#fetch").click()
        page.get_by_text("public addresses only").first.wait_for(timeout=30000)

        # Evaluate tab: the shipped FAQ set, through the same pipeline, dense/hybrid/rerank side by side.
        page.get_by_role("tab", name="Evaluate").click()
        page.locator("#evaluate").click()
        page.locator("#eval-metrics table").wait_for(timeout=120000)
        metrics = page.locator("#eval-metrics").inner_text()
        assert "ndcg@10" in metrics.lower() and "Reranked" in metrics and "Hybrid" in metrics
        page.screenshot(path=str(SHOTS / "evaluate.png"), full_page=True)
    finally:
        stop(proc)


def test_html_in_documents_never_runs(browser, tiny_models, tmp_path) -> None:
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "hostile.md").write_text(PAYLOADS)
    evil_answer = ['<img src="y" onerror="window.__xss=\'answer\'">', "<script>window.__xss='answer'</script>ok [1]"]
    with FakeOpenAI(Reply(chunks=evil_answer)) as server:
        url, proc = start_app(tmp_path, tiny_models, docs, server.url, "sk-x")
        try:
            page = browser.new_page(viewport={"width": 1440, "height": 1000})
            dialogs: list[str] = []
            page.on("dialog", lambda d: (dialogs.append(d.message), d.dismiss()))
            page.goto(url)
            page.locator("#question textarea").fill("What does the hostile document say?")
            page.locator("#ask").click()
            page.wait_for_function(RERANKED, timeout=60000)
            page.locator("#chat").get_by_text("ok [1]").wait_for(timeout=60000)
            for d in page.locator("#comparison details").all():
                d.click()
            for link in page.locator("#chat a").all():
                link.click(no_wait_after=True, timeout=2000)
            page.wait_for_timeout(500)
            assert page.evaluate("window.__xss") is None and not dialogs
            # The payloads are shown as text, not dropped.
            panel = page.locator("#comparison").inner_text()
            assert '<script>window.__xss = "script"</script>' in panel and "onerror=" in panel
            assert "<iframe" in panel
            assert page.locator("#comparison script, #comparison img, #comparison iframe").count() == 0
            page.screenshot(path=str(SHOTS / "hostile.png"), full_page=True)
        finally:
            stop(proc)


# Kept chats (rag.chats, rag.ui_chats): a visitor's in the browser, a signed-in user's on the server.
ANSWERED = "and metadata in etcd [2]."


def ask(page, question: str) -> None:
    page.locator("#question textarea").fill(question)
    page.locator("#ask").click()
    page.locator("#chat").get_by_text(ANSWERED).last.wait_for(timeout=60000)
    page.locator("#chats").get_by_text(question).wait_for(timeout=30000)  # kept once the answer is complete


def chat_titles(page) -> list[str]:
    return page.locator("#chats label").all_inner_texts()


def test_a_visitors_chat_survives_a_reload_and_a_restart(browser, llm, tiny_models, faq_dir, tmp_path) -> None:
    from conftest import free_port

    port = free_port()  # the same origin after the restart: a browser keeps localStorage per origin
    url, proc = start_app(tmp_path, tiny_models, faq_dir, llm.url, "sk-x", port=port)
    context = browser.new_context(viewport={"width": 1440, "height": 1000}, accept_downloads=True)
    page = context.new_page()
    try:
        page.goto(url)
        page.locator("#chats-note").get_by_text("kept in this browser").wait_for(timeout=30000)
        assert chat_titles(page) == []
        ask(page, "Where does Milvus store data?")
        stored = page.evaluate("localStorage.getItem('rag-chats')")
        assert len(stored) > 500 and "Milvus" not in stored  # the chat, encrypted
        page.reload()
        page.locator("#chat").get_by_text(ANSWERED).wait_for(timeout=30000)
        assert chat_titles(page) == ["Where does Milvus store data?"]
        assert page.locator("#chat").get_by_text("Where does Milvus store data?").count() == 1
    finally:
        stop(proc)
    url, proc = start_app(tmp_path, tiny_models, faq_dir, llm.url, "sk-x", port=port, log="app-restart.log")
    try:
        page.goto(url)
        page.locator("#chat").get_by_text(ANSWERED).wait_for(timeout=30000)  # the newest chat, restored
        assert chat_titles(page) == ["Where does Milvus store data?"]
        page.locator("#new-chat").click()
        page.locator("#chat").get_by_text(ANSWERED).wait_for(state="detached", timeout=30000)
        ask(page, "How much does Milvus cost?")
        assert chat_titles(page) == ["How much does Milvus cost?", "Where does Milvus store data?"]
        page.locator("#chats").get_by_text("Where does Milvus store data?").click()
        page.locator("#chat").get_by_text("Where does Milvus store data?").wait_for(timeout=30000)
        assert page.locator("#chat").get_by_text("How much does Milvus cost?").count() == 0
        # the panels beside the chat belonged to the other chat's question: they are emptied
        page.locator("#comparison").get_by_text("Ask a question to see").wait_for(timeout=30000)
        page.wait_for_timeout(500)  # the export button gets this chat's file
        with page.expect_download(timeout=30000) as download:
            page.locator("#export-chat").click()
        exported = Path(download.value.path()).read_text(encoding="utf-8")
        assert exported.startswith("# Where does Milvus store data?\n") and ANSWERED in exported
        assert "**Sources**" in exported and "How much does Milvus cost?" not in exported
        SHOTS.mkdir(exist_ok=True)
        page.screenshot(path=str(SHOTS / "chats.png"), full_page=True)
        page.locator("#delete-chat").click()
        page.locator("#chats").get_by_text("Where does Milvus store data?").wait_for(state="detached", timeout=30000)
        page.reload()
        page.locator("#chat").get_by_text(ANSWERED).wait_for(timeout=30000)  # the other chat, restored
        assert chat_titles(page) == ["How much does Milvus cost?"]
        assert not (tmp_path / "data" / "chats").exists()  # a visitor's chats are not on the server
    finally:
        stop(proc)


def test_signed_in_users_keep_their_chats_on_the_server_apart(browser, llm, tiny_models, faq_dir, tmp_path) -> None:
    url, proc = start_app(tmp_path, tiny_models, faq_dir, llm.url, "sk-x",
                          env={"RAG_AUTH": "alice:pw-alice,bob:pw-bob"}, auth=("alice", "pw-alice"))
    try:
        alice = signed_in(browser, url, "alice", "pw-alice")
        ask(alice, "What does alice ask?")
        alice.reload()
        alice.locator("#chat").get_by_text(ANSWERED).wait_for(timeout=30000)
        assert chat_titles(alice) == ["What does alice ask?"]
        # Nothing of hers in the browser: Gradio stores the empty default there, whose ciphertext is about 70
        # characters; that of a chat with this answer and its sources, over 500.
        assert len(alice.evaluate("localStorage.getItem('rag-chats')") or "") < 100
        bob = signed_in(browser, url, "bob", "pw-bob")
        assert chat_titles(bob) == [] and bob.locator("#chat").get_by_text("alice").count() == 0
        ask(bob, "What does bob ask?")
        assert chat_titles(bob) == ["What does bob ask?"]
        # the chat's own trash button starts a new chat: the next question does not overwrite the last one
        bob.locator("#chat").get_by_role("button", name="Clear").click()
        bob.locator("#chat").get_by_text(ANSWERED).wait_for(state="detached", timeout=30000)
        ask(bob, "What else does bob ask?")
        assert chat_titles(bob) == ["What else does bob ask?", "What does bob ask?"]
        alice.reload()
        alice.locator("#chat").get_by_text(ANSWERED).wait_for(timeout=30000)
        assert chat_titles(alice) == ["What does alice ask?"]
        kept = sorted(p.parent.name.split("-")[0] for p in (tmp_path / "data" / "chats").glob("*/*.json"))
        assert kept == ["alice", "bob", "bob"]
    finally:
        stop(proc)


def signed_in(browser, url: str, user: str, password: str):
    page = sign_in(browser, url, user, password)
    page.locator("#chats-note").get_by_text(user).wait_for(timeout=30000)
    return page
