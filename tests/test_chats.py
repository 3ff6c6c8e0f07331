"""Kept chats: the records, the per-user server store, the browser's copy, the export, the secret, and the Ask tab's
handlers as the built app wires them."""

from __future__ import annotations

import json
import stat
from pathlib import Path
from types import SimpleNamespace

import gradio as gr
import pytest

from rag import chats, render
from rag.chats import BrowserChats, Chat, ServerChats, to_markdown, updated_chat, user_folder
from rag.errors import ChatError
from rag.settings import load_settings
from rag.types import Hit

HIT = Hit("i", "t", "docs/milvus/storage.md", "Where is data kept?", 1, 0.5, 1, 0.9)
ANSWER = "Milvus keeps data in object storage [1]." + render.sources_markdown([HIT])
HOSTILE_NAMES = ["../../etc", "..", ".", "/abs/path", "a/b", "a\\b", "", " ", "alice\x00", "名前", "Alice", "alice",
                 "x" * 500, "con", "a:b*c?", "-rf"]


def talk(*pairs: tuple[str, str]) -> list[dict[str, str]]:
    return [m for q, a in pairs for m in ({"role": "user", "content": q}, {"role": "assistant", "content": a})]


def chat(question: str = "Where does Milvus store data?", now: float = 1000.0) -> Chat:
    made = updated_chat(None, talk((question, ANSWER)), now=now)
    assert made is not None
    return made


def test_a_chat_is_titled_by_its_first_question_and_changes_only_when_its_messages_do() -> None:
    first = chat("  Where does\nMilvus &lt;store&gt; data?  ")
    assert first.title == "Where does Milvus <store> data?"  # plain text: the chat shows questions HTML-escaped
    assert len(first.id) == 32 and first.created == first.updated == 1000.0
    assert updated_chat(first, list(first.messages), now=2000.0) is first
    longer = updated_chat(first, [*first.messages, *talk(("and how is it flushed?", "By segments."))], now=2000.0)
    assert longer is not None and (longer.id, longer.title, longer.created, longer.updated) == (
        first.id, first.title, 1000.0, 2000.0)
    assert len(longer.messages) == 4
    assert updated_chat(None, []) is None and updated_chat(None, [{"role": "assistant", "content": "hi"}]) is None
    assert len(chat("word " * 100).title) == chats.TITLE_CHARS and chat("word " * 100).title.endswith("…")
    with pytest.raises(ChatError, match="too long to keep"):
        updated_chat(None, talk(("q", "a" * (chats.MAX_CHAT_CHARS + 1))))


def test_the_chatbots_list_of_parts_becomes_text() -> None:
    made = updated_chat(None, [{"role": "user", "content": [{"type": "text", "text": "q1"}], "metadata": None},
                               {"role": "assistant", "content": [{"type": "text", "text": "a"}, {"text": "b"}]},
                               {"role": "system", "content": "dropped"}])
    assert made is not None and list(made.messages) == talk(("q1", "ab"))


def test_server_chats_save_list_get_delete(tmp_path: Path) -> None:
    shelf = ServerChats(tmp_path, "alice")
    old, new = chat("first question", now=1000.0), chat("second question", now=2000.0)
    shelf.save(old)
    shelf.save(new)
    assert [c.title for c in shelf.list()] == ["second question", "first question"]  # newest first
    assert shelf.get(old.id) == old and shelf.get(None) is None
    again = ServerChats(tmp_path, "alice")  # as after a restart: only the files
    assert again.list() == [new, old]
    assert sorted(p.name for p in shelf.folder.iterdir()) == sorted([f"{old.id}.json", f"{new.id}.json"])  # no .tmp
    assert again.delete(old.id) and not again.delete(old.id)
    assert shelf.list() == [new]


def test_two_users_never_see_each_others_chats(tmp_path: Path) -> None:
    alice, bob = ServerChats(tmp_path, "alice"), ServerChats(tmp_path, "bob")
    hers = chat("alice's question")
    alice.save(hers)
    assert bob.list() == [] and bob.get(hers.id) is None
    assert not bob.delete(hers.id) and alice.get(hers.id) == hers
    bob.save(chat("bob's question"))
    assert [c.title for c in alice.list()] == ["alice's question"]
    assert [c.title for c in bob.list()] == ["bob's question"]


def test_hostile_user_names_stay_inside_the_folder_and_apart(tmp_path: Path) -> None:
    root = tmp_path / "chats"
    folders = set()
    for name in HOSTILE_NAMES:
        shelf, question = ServerChats(root, name), f"question of {name!r}"
        shelf.save(chat(question))
        assert shelf.folder.resolve().parent == root.resolve(), name
        assert [c.messages[0]["content"] for c in ServerChats(root, name).list()] == [question]
        folders.add(shelf.folder.name)
    assert len(folders) == len(HOSTILE_NAMES)  # "Alice" and "alice", "a/b" and "a\\b": never one folder
    assert sorted(p.name for p in tmp_path.iterdir()) == ["chats"] and not Path("/abs").exists()
    assert user_folder("alice").startswith("alice-")


@pytest.mark.parametrize("bad", ["../../x", "../" + "a" * 32, "A" * 32, "g" * 32, "", "a" * 31])
def test_hostile_chat_ids_name_no_file(tmp_path: Path, bad: str) -> None:
    shelf = ServerChats(tmp_path, "alice")
    secret = tmp_path / "x.json"
    secret.write_text(json.dumps(chat().to_dict()))
    assert shelf.get(bad) is None and not shelf.delete(bad) and secret.exists()
    with pytest.raises(ChatError, match="Not a chat id"):
        shelf.save(Chat(bad, "t", 1.0, 1.0, ()))


def test_a_damaged_file_is_skipped(tmp_path: Path) -> None:
    shelf = ServerChats(tmp_path, "alice")
    good = chat()
    shelf.save(good)
    (shelf.folder / ("0" * 32 + ".json")).write_text("{not json")
    (shelf.folder / ("1" * 32 + ".json")).write_text(json.dumps({"id": "1" * 32}))
    assert shelf.list() == [good] and shelf.get("0" * 32) is None


def test_the_browsers_copy_is_data(tmp_path: Path) -> None:
    good = chat()
    value = [good.to_dict(), "text", None, 7, {"id": "../x", "title": "t", "created": 1, "updated": 1, "messages": []},
             {**good.to_dict(), "id": "2" * 32, "messages": [{"role": "user", "content": {"$ne": 1}}]},
             {**good.to_dict(), "id": "3" * 32, "created": "yesterday"},
             {**good.to_dict(), "id": "4" * 32, "messages": [{"role": "tool", "content": "x"}]},
             good.to_dict()]
    assert BrowserChats(value).list() == [good]  # malformed entries and the duplicate are dropped
    for junk in (None, "x", {"a": 1}, 3):
        assert BrowserChats(junk).list() == [] and BrowserChats(junk).browser_value == []
    shelf = BrowserChats([])
    for i in range(chats.BROWSER_CHATS + 5):
        shelf.save(chat(f"question {i}", now=1000.0 + i))
    assert len(shelf.list()) == chats.BROWSER_CHATS and shelf.list()[0].title == f"question {chats.BROWSER_CHATS + 4}"
    assert BrowserChats(shelf.browser_value).list() == shelf.list()  # what goes to the browser comes back the same
    big = [chat(f"big {i}", now=3000.0 + i) for i in range(3)]
    wide = "名" * (chats.MAX_CHAT_CHARS - 10)  # 3 bytes a character in UTF-8: over half the byte budget
    big = [updated_chat(c, talk((c.title, wide)), now=4000.0 + i) for i, c in enumerate(big)]
    shelf = BrowserChats([])
    for c in big:
        shelf.save(c)
    assert [c.title for c in shelf.list()] == ["big 2"]  # within the byte budget, the newest always kept
    assert shelf.delete(big[2].id) and shelf.list() == [] and not shelf.delete(big[2].id)


def test_markdown_export_keeps_questions_answers_and_sources() -> None:
    c = updated_chat(None, talk(("Where does &lt;b&gt;Milvus&lt;/b&gt; store data?", ANSWER),
                                ("and etcd?", "Metadata goes to etcd [1]." + render.sources_markdown([HIT]))),
                     now=1_780_000_000.0)
    assert c is not None
    md = to_markdown(c)
    assert md.startswith("# Where does &lt;b&gt;Milvus&lt;/b&gt; store data?\n")  # the title stays inert text
    assert "started 2026-05-28 20:26 UTC" in md
    assert md.count("## Question") == 2 and md.count("## Answer") == 2 and md.count("**Sources**") == 2
    assert "[1] Where is data kept? · *milvus/storage.md*" in md
    assert md.index("and etcd?") > md.index("object storage [1]") > md.index("## Answer")
    path = chats.export_file(c)
    assert path.suffix == ".md" and path.read_text(encoding="utf-8") == md
    assert path.name == "Where-does-b-Milvus-b-store-data.md"


def test_browser_secret_from_the_setting_or_kept_in_the_data_folder(tmp_path: Path) -> None:
    made = load_settings(env_file=None, environ={"RAG_DATA_DIR": str(tmp_path / "data")})
    first = chats.browser_secret(made)
    assert len(first) >= 32 and chats.browser_secret(made) == first  # a restart reads the same one
    kept = tmp_path / "data" / "browser-secret"
    assert kept.read_text() == first and stat.S_IMODE(kept.stat().st_mode) == 0o600
    assert [p.name for p in kept.parent.iterdir()] == ["browser-secret"]
    assert chats.browser_secret(made.replace(browser_secret="from-setting")) == "from-setting"
    assert "from-setting" not in repr(made.replace(browser_secret="from-setting"))
    other = load_settings(env_file=None, environ={"RAG_DATA_DIR": str(tmp_path / "other")})
    assert chats.browser_secret(other) != first
    assert load_settings(env_file=None, environ={"RAG_BROWSER_SECRET": "s3"}).browser_secret == "s3"


def test_an_unwritable_data_folder_says_what_to_change(tmp_path: Path) -> None:
    (tmp_path / "a-file").write_text("not a folder")  # a file where the data folder should be: root is refused too
    s = load_settings(env_file=None, environ={"RAG_DATA_DIR": str(tmp_path / "a-file" / "data")})
    with pytest.raises(ChatError, match="RAG_BROWSER_SECRET"):
        chats.browser_secret(s)


# The handlers of the Ask tab, as the built app wires them.

def request(user: str | None) -> SimpleNamespace:
    return SimpleNamespace(username=user)


@pytest.fixture
def history(tmp_path: Path):
    from app import current_user
    from rag.ui_chats import build_chat_history

    settings = load_settings(env_file=None, environ={"RAG_DATA_DIR": str(tmp_path / "data")})
    with gr.Blocks() as demo:
        h = build_chat_history(settings, gr.Chatbot(), current_user)
        h.wire(demo)
    return h


def test_a_visitors_chat_goes_to_the_browser_and_comes_back(history, tmp_path: Path) -> None:
    messages = talk(("Where does Milvus store data?", ANSWER))
    current, listing, browser, export = history.save(messages, None, [], request(None), None)
    assert listing["choices"] == [("Where does Milvus store data?", current)] and listing["value"] == current
    assert [c["id"] for c in browser] == [current] and not (tmp_path / "data" / "chats").exists()
    assert "**Sources**" in Path(export["value"]).read_text() and export["interactive"]
    shown, *_, note = history.restore(browser, request(None), None)  # a reload: the page sends the browser's copy
    assert shown == messages and "this browser" in note
    more = [*messages, *talk(("and etcd?", "Metadata [1]."))]
    again, _, browser2, _ = history.save(more, current, browser, request(None), None)
    assert again == current and len(browser2) == 1 and len(browser2[0]["messages"]) == 4
    shown, current2, listing, *_ = history.remove(current, browser2, request(None), None)
    assert shown == [] and current2 is None and listing["choices"] == []


def test_a_signed_in_users_chat_goes_to_the_server_only(history, tmp_path: Path) -> None:
    messages = talk(("alice asks", ANSWER))
    current, listing, browser, _ = history.save(messages, None, [], request("alice"), None)
    assert browser == gr.skip()  # nothing of a signed-in user's goes to the browser's storage
    assert [c.id for c in ServerChats(tmp_path / "data" / "chats", "alice").list()] == [current]
    shown, *_, note = history.restore([], request("alice"), None)
    assert shown == messages and "alice" in note and "server" in note
    bob = history.restore([], request("bob"), None)
    assert bob[0] == [] and bob[2]["choices"] == []
    assert history.open(current, [], request("bob"), None)[0] == []  # bob cannot open alice's chat by its id
    assert history.remove(current, [], request("bob"), None) == (gr.skip(),) * 5
    assert history.restore([], request("alice"), None)[0] == messages


def test_the_built_app_keeps_each_answer_and_adds_no_api(make_settings, tmp_path: Path) -> None:
    from app import build_app
    from rag.pipeline import Pipeline

    demo = build_app(Pipeline(make_settings()))
    public = {d.api_name for d in demo.fns.values() if d.api_visibility == "public"}
    assert {"search", "ask"} <= public and not {"save", "restore", "open", "remove"} & public
    ours = [d for d in demo.fns.values() if getattr(d.fn, "__module__", "") == "rag.ui_chats"]
    assert len(ours) == 7 and all(d.api_visibility == "private" for d in ours)  # 2 saves, load, list, 3 buttons
    saves = [d for d in ours if d.fn.__name__ == "save"]
    assert len(saves) == 2
    respond = [d for d in demo.fns.values() if getattr(d.fn, "__name__", "") == "respond"]
    assert {d.trigger_after for d in saves} == {d._id for d in respond}  # chained after both chat events
    kept = [b for b in demo.blocks.values() if isinstance(b, gr.BrowserState)]
    assert [(b.storage_key, b.secret) for b in kept] == [("rag-chats", (tmp_path / "data" / "browser-secret")
                                                          .read_text())]
