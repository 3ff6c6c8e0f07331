"""Chats that stay: chat records, kept on the server per signed-in user or in the visitor's browser, and exported
as Markdown.

A chat is the Chatbot's messages (``{"role": "user" | "assistant", "content": str}``, the answers with their
"Sources" lists) plus an id, a title (the first question) and two times. ``ServerChats`` keeps a signed-in user's
chats as JSON files under ``data_dir/chats/<user folder>/<id>.json``; the folder name is made from the user name
(a slug and a hash), so no name, however hostile, reaches the file system as a path, and two names never share a
folder. Files are written atomically (a temporary file, then a rename). ``BrowserChats`` reads and writes the list
that ``rag.ui_chats`` keeps in a ``gr.BrowserState``: that list comes from the browser, so it is untrusted data, and
anything malformed in it is dropped. ``browser_secret`` is the BrowserState's encryption secret: the setting, or one
made once and kept in the data folder, so that a restart can still read what browsers hold.

Leaves out: the UI (``rag.ui_chats``), sharing or searching chats, editing a message, a quota per user on the
server, and locking between several app processes that write one user's folder (the last write wins).
"""

from __future__ import annotations

import html
import json
import logging
import os
import re
import secrets
import tempfile
import time
import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from hashlib import sha256
from pathlib import Path
from typing import Any

from rag.errors import ChatError
from rag.render import md_escape
from rag.settings import Settings

log = logging.getLogger(__name__)

Message = dict[str, str]  # {"role": "user" | "assistant", "content": markdown}
TITLE_CHARS = 60
MAX_CHAT_CHARS = 500_000  # the text of one chat; a longer one is not kept
BROWSER_CHATS = 30  # the newest chats a browser keeps...
BROWSER_BYTES = 2_500_000  # ...within this much JSON: a browser's localStorage holds about 5 MB per site, encrypted
_ID = re.compile(r"[0-9a-f]{32}")


@dataclass(frozen=True)
class Chat:
    id: str  # 32 hex digits (uuid4)
    title: str  # plain text: the first question, cut to TITLE_CHARS
    created: float  # Unix time
    updated: float
    messages: tuple[Message, ...]

    def to_dict(self) -> dict[str, Any]:
        return {"id": self.id, "title": self.title, "created": self.created, "updated": self.updated,
                "messages": list(self.messages)}

    @classmethod
    def from_dict(cls, data: Any) -> Chat:
        """A chat from JSON data; ChatError if it is not one (a stored file or the browser's copy is data)."""
        try:
            chat_id, title, created, updated = data["id"], data["title"], data["created"], data["updated"]
            messages = clean_messages(data["messages"], strict=True)
        except (KeyError, TypeError, ValueError) as exc:
            raise ChatError(f"Not a chat: {exc}") from None
        if not (isinstance(chat_id, str) and _ID.fullmatch(chat_id) and isinstance(title, str)
                and all(isinstance(t, int | float) and not isinstance(t, bool) for t in (created, updated))):
            raise ChatError("Not a chat: a bad id, title or time.")
        return cls(chat_id, title[:TITLE_CHARS], float(created), float(updated), tuple(messages))


def message_text(content: Any) -> str:
    """The text of a message's content, whichever shape the Chatbot hands it in (a string or a list of parts)."""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "".join(p["text"] for p in content if isinstance(p, dict) and isinstance(p.get("text"), str))
    return ""


def clean_messages(messages: Any, strict: bool = False) -> list[Message]:
    """The user and assistant messages as plain ``{"role", "content"}`` dicts. Other roles and shapes are dropped,
    or with ``strict`` refused (ValueError)."""
    if not isinstance(messages, list):
        raise ValueError("messages is not a list")
    out = []
    for m in messages:
        if isinstance(m, dict) and m.get("role") in ("user", "assistant"):
            if strict and not isinstance(m.get("content"), str):
                raise ValueError("a message's content is not text")
            out.append({"role": m["role"], "content": message_text(m.get("content"))})
        elif strict:
            raise ValueError("a message is not a user or assistant message")
    return out


def title_of(messages: Iterable[Message]) -> str:
    """The first question as one line of plain text (the chat shows it HTML-escaped), cut to TITLE_CHARS."""
    first = next((m["content"] for m in messages if m["role"] == "user" and m["content"].strip()), "")
    text = " ".join(html.unescape(first).split())
    return text if len(text) <= TITLE_CHARS else text[:TITLE_CHARS - 1].rstrip() + "…"


def updated_chat(chat: Chat | None, messages: Any, now: float | None = None) -> Chat | None:
    """``chat`` with the Chatbot's ``messages`` (a new chat when it is None); None when there is nothing to keep.
    The same messages give back the same chat, times included."""
    kept = clean_messages(messages or [])
    if not any(m["role"] == "user" for m in kept):
        return None
    if sum(len(m["content"]) for m in kept) > MAX_CHAT_CHARS:
        raise ChatError(key="chats.too_long", n=MAX_CHAT_CHARS)
    if chat is not None and list(chat.messages) == kept:
        return chat
    now = time.time() if now is None else now
    if chat is None:
        return Chat(uuid.uuid4().hex, title_of(kept), now, now, tuple(kept))
    return Chat(chat.id, chat.title or title_of(kept), chat.created, now, tuple(kept))


def newest_first(chats: Iterable[Chat]) -> list[Chat]:
    return sorted(chats, key=lambda c: (c.updated, c.created, c.id), reverse=True)


def user_folder(user: str) -> str:
    """A folder name for a user: a readable slug of the name and a hash of all of it (only ``[A-Za-z0-9_-]``)."""
    slug = re.sub(r"[^A-Za-z0-9_-]", "_", user)[:32]
    return f"{slug}-{sha256(user.encode('utf-8', 'surrogatepass')).hexdigest()[:16]}"


class ServerChats:
    """One signed-in user's chats on the server: ``root/<user folder>/<id>.json``."""

    browser_value = None  # nothing of a signed-in user's goes to the browser

    def __init__(self, root: Path, user: str) -> None:
        self.folder = Path(root) / user_folder(user)

    def _path(self, chat_id: str) -> Path | None:
        return self.folder / f"{chat_id}.json" if isinstance(chat_id, str) and _ID.fullmatch(chat_id) else None

    def list(self) -> list[Chat]:
        chats = []
        for path in self.folder.glob("*.json"):
            try:
                chats.append(Chat.from_dict(json.loads(path.read_text(encoding="utf-8"))))
            except (OSError, ValueError, ChatError) as exc:
                log.warning("skipped the chat file %s: %s", path, exc)
        return newest_first(chats)

    def get(self, chat_id: str | None) -> Chat | None:
        path = self._path(chat_id) if chat_id else None
        if path is None or not path.is_file():
            return None
        try:
            chat = Chat.from_dict(json.loads(path.read_text(encoding="utf-8")))
        except (OSError, ValueError, ChatError) as exc:
            log.warning("skipped the chat file %s: %s", path, exc)
            return None
        return chat if chat.id == chat_id else None

    def save(self, chat: Chat) -> None:
        path = self._path(chat.id)
        if path is None:
            raise ChatError(f"Not a chat id: {chat.id!r}.")
        try:
            self.folder.mkdir(parents=True, exist_ok=True)
            with tempfile.NamedTemporaryFile("w", encoding="utf-8", dir=self.folder, suffix=".tmp",
                                             delete=False) as f:
                json.dump(chat.to_dict(), f, ensure_ascii=False)
            os.replace(f.name, path)  # atomic: a crash leaves the old file or the new one
        except OSError as exc:
            raise ChatError(f"Could not keep the chat in {self.folder} ({exc.strerror or exc}). Make RAG_DATA_DIR "
                            "writable by the app.") from None

    def delete(self, chat_id: str | None) -> bool:
        path = self._path(chat_id) if chat_id else None
        if path is None or not path.is_file():
            return False
        path.unlink()
        return True


class BrowserChats:
    """A visitor's chats as the browser holds them (a list of chat dicts); ``browser_value`` is what to store back."""

    def __init__(self, value: Any) -> None:
        chats = {}
        for item in value if isinstance(value, list) else []:
            try:
                chat = Chat.from_dict(item)
            except ChatError:
                continue
            chats.setdefault(chat.id, chat)
        self.chats = _within_budget(newest_first(chats.values()))

    @property
    def browser_value(self) -> list[dict[str, Any]]:
        return [c.to_dict() for c in self.chats]

    def list(self) -> list[Chat]:
        return list(self.chats)

    def get(self, chat_id: str | None) -> Chat | None:
        return next((c for c in self.chats if c.id == chat_id), None)

    def save(self, chat: Chat) -> None:
        self.chats = _within_budget(newest_first([chat, *(c for c in self.chats if c.id != chat.id)]))

    def delete(self, chat_id: str | None) -> bool:
        before = len(self.chats)
        self.chats = [c for c in self.chats if c.id != chat_id]
        return len(self.chats) < before


def _within_budget(chats: list[Chat]) -> list[Chat]:
    """The newest chats that fit the browser's budget (BROWSER_CHATS, BROWSER_BYTES); the newest always does."""
    kept, used = [], 0
    for chat in chats[:BROWSER_CHATS]:
        used += len(json.dumps(chat.to_dict(), ensure_ascii=False).encode())
        if kept and used > BROWSER_BYTES:
            break
        kept.append(chat)
    return kept


def chats_root(settings: Settings) -> Path:
    return Path(settings.data_dir) / "chats"


def _utc(t: float) -> str:
    return datetime.fromtimestamp(t, UTC).strftime("%Y-%m-%d %H:%M UTC")


def to_markdown(chat: Chat) -> str:
    """The chat as a Markdown file: the title, when it was held, then each question and its answer with sources."""
    lines = [f"# {md_escape(chat.title) or 'Chat'}", "",
             f"*Ask your documents: a chat started {_utc(chat.created)}, last changed {_utc(chat.updated)}.*", ""]
    for m in chat.messages:
        lines += ["## Question" if m["role"] == "user" else "## Answer", "", m["content"].strip(), ""]
    return "\n".join(lines)


def export_file(chat: Chat, folder: Path | None = None) -> Path:
    """``to_markdown(chat)`` written to ``folder/<id>/<title>.md`` (by default under the system's temp folder)."""
    folder = Path(folder or Path(tempfile.gettempdir()) / "rag-chat-exports") / chat.id
    folder.mkdir(parents=True, exist_ok=True)
    name = re.sub(r"[^A-Za-z0-9]+", "-", chat.title).strip("-")[:40] or "chat"
    path = folder / f"{name}.md"
    path.write_text(to_markdown(chat), encoding="utf-8")
    return path


def browser_secret(settings: Settings) -> str:
    """The secret the browsers' chats are encrypted with: RAG_BROWSER_SECRET, else one made on first use and kept
    in ``data_dir/browser-secret`` (the same for every later start, so a restart still reads them)."""
    if settings.browser_secret:
        return settings.browser_secret
    path = Path(settings.data_dir) / "browser-secret"
    try:
        if path.is_file() and (kept := path.read_text(encoding="utf-8").strip()):
            return kept
        path.parent.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile("w", dir=path.parent, suffix=".tmp", delete=False) as f:
            f.write(secrets.token_urlsafe(32))
        os.chmod(f.name, 0o600)
        try:
            os.link(f.name, path)  # only the first of two processes starting at once makes it; both read it
        except FileExistsError:
            pass
        finally:
            os.unlink(f.name)
        return path.read_text(encoding="utf-8").strip()
    except OSError as exc:
        raise ChatError(f"Could not keep the browser chats' secret in {path} ({exc.strerror or exc}). Make "
                        "RAG_DATA_DIR writable, or set RAG_BROWSER_SECRET.") from None
