"""The Ask tab's chats: "New chat", the list of earlier chats, Delete and Export, and the chat kept after each answer.

``build_chat_history(settings, chatbot, user_of)`` places the controls where it is called (inside the Ask tab) and
returns a ``ChatHistory``; ``keep(event)`` chains the save after a chat event, ``wire(demo)`` connects the buttons
and the list and restores the newest chat when the page loads. A signed-in user's chats are kept on the server
(``rag.chats.ServerChats``), a visitor's in the browser (a ``gr.BrowserState`` encrypted with
``rag.chats.browser_secret``); nothing of a signed-in user's goes to the browser's storage. Every event here is
private (no API endpoint). Handlers are thin: the records and the files are ``rag.chats``'s. Texts are
``rag.locales``'s, in the language of the request.

Leaves out: the chat itself (``app.chat_turn``) and who is signed in (``user_of``, the app's ``current_user``).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import gradio as gr

from rag import chats
from rag.errors import ChatError
from rag.locales import error_text, lang_of, t, ui
from rag.render import md_escape
from rag.settings import Settings

UserOf = Callable[[gr.Request | None, gr.OAuthProfile | None], str | None]
STORAGE_KEY = "rag-chats"  # the browser's localStorage key: the same on every start, so a restart finds it
PRIVATE: dict[str, Any] = {"api_visibility": "private", "queue": False}


@dataclass
class ChatHistory:
    settings: Settings
    user_of: UserOf
    chatbot: gr.Chatbot
    browser: gr.BrowserState  # a visitor's chats: a list of chat dicts (rag.chats.Chat.to_dict)
    current: gr.State  # the id of the chat shown, or None for a new one
    listing: gr.Radio  # (title, id) choices, newest first
    new: gr.Button
    delete: gr.Button
    export: gr.DownloadButton
    note: gr.Markdown
    # the panels that wire(reset=...) clears with the chat: language -> their empty values
    empty: Callable[[str], tuple[Any, ...]] = lambda lang: ()

    def shelf(self, browser: Any, request: gr.Request | None,
              profile: gr.OAuthProfile | None) -> chats.ServerChats | chats.BrowserChats:
        user = self.user_of(request, profile)
        return chats.ServerChats(chats.chats_root(self.settings), user) if user else chats.BrowserChats(browser)

    def keep(self, event: Any) -> Any:
        """Save the chat after ``event`` (a chat event's dependency) has finished; returns the chained one."""
        return event.then(self.save, [self.chatbot, self.current, self.browser],
                          [self.current, self.listing, self.browser, self.export], **PRIVATE)

    def wire(self, demo: gr.Blocks, reset: dict[gr.components.Component, Callable[[str], Any]] | None = None) -> None:
        """Connect the controls; ``reset`` gives panels beside the chat and their empty values (a function of the
        language), to show when another chat is opened, a new one started, or one deleted (they belong to the chat
        that was shown)."""
        shown = [self.chatbot, self.current, self.listing, self.browser, self.export, *(reset or {})]
        values = list((reset or {}).values())
        self.empty = lambda lang: tuple(value(lang) for value in values)
        demo.load(self.restore, self.browser, [*shown[:5], self.note], **PRIVATE)
        self.listing.input(self.open, [self.listing, self.browser], shown, **PRIVATE)
        self.new.click(self.started, None, shown, **PRIVATE)
        # The chat's own trash button empties it: what comes next is a new chat, not the old one overwritten.
        self.chatbot.clear(self.cleared, None, shown[1:], **PRIVATE)
        self.delete.click(self.remove, [self.current, self.browser], shown, **PRIVATE)

    def started(self, request: gr.Request) -> tuple[Any, ...]:
        """A new chat: nothing shown, the panels beside it empty."""
        return [], *self.cleared(request)

    def cleared(self, request: gr.Request) -> tuple[Any, ...]:
        return *view(None, None), *self.empty(lang_of(request))

    def save(self, messages: list[dict[str, Any]], current: str | None, browser: Any, request: gr.Request,
             profile: gr.OAuthProfile | None) -> tuple[Any, ...]:
        shelf = self.shelf(browser, request, profile)
        try:
            chat = chats.updated_chat(shelf.get(current), messages)
            if chat is None:
                return (gr.skip(),) * 4
            shelf.save(chat)
        except ChatError as exc:
            gr.Warning(error_text(lang_of(request), exc))
            return (gr.skip(),) * 4
        return view(shelf, chat)

    def restore(self, browser: Any, request: gr.Request, profile: gr.OAuthProfile | None) -> tuple[Any, ...]:
        user = self.user_of(request, profile)
        shelf = self.shelf(browser, request, profile)
        newest = next(iter(shelf.list()), None)
        lang = lang_of(request)
        note = t(lang, "chats.on_server", user=md_escape(user)) if user else t(lang, "chats.in_browser")
        return messages_of(newest), *view(shelf, newest, browser=gr.skip()), note

    def open(self, chat_id: str | None, browser: Any, request: gr.Request,
             profile: gr.OAuthProfile | None) -> tuple[Any, ...]:
        shelf = self.shelf(browser, request, profile)
        chat = shelf.get(chat_id)
        if chat is None:
            gr.Warning(t(lang_of(request), "chats.gone"))
        return messages_of(chat), *view(shelf, chat), *self.empty(lang_of(request))

    def remove(self, current: str | None, browser: Any, request: gr.Request,
               profile: gr.OAuthProfile | None) -> tuple[Any, ...]:
        shelf = self.shelf(browser, request, profile)
        if current is None or not shelf.delete(current):
            empty = self.empty(lang_of(request))
            gr.Warning(t(lang_of(request), "chats.pick_first"))
            return (gr.skip(),) * (5 + len(empty))
        return [], *view(shelf, None), *self.empty(lang_of(request))


def messages_of(chat: chats.Chat | None) -> list[dict[str, str]]:
    return [dict(m) for m in chat.messages] if chat else []


def view(shelf: chats.ServerChats | chats.BrowserChats | None, chat: chats.Chat | None,
         browser: Any = None) -> tuple[Any, ...]:
    """(current id, list, browser storage, export button) showing ``chat``; a None shelf leaves the list's choices
    and the storage as they are."""
    listing = (gr.update(value=None) if shelf is None else
               gr.update(choices=[(c.title, c.id) for c in shelf.list()], value=chat.id if chat else None))
    if browser is None:
        browser = gr.skip() if shelf is None or shelf.browser_value is None else shelf.browser_value
    export = gr.update(value=str(chats.export_file(chat)) if chat else None, interactive=chat is not None)
    return (chat.id if chat else None), listing, browser, export


def build_chat_history(settings: Settings, chatbot: gr.Chatbot, user_of: UserOf) -> ChatHistory:
    """The chats' controls, placed here; call ``keep`` on each chat event and ``wire(demo)`` once."""
    with gr.Row():
        new = gr.Button(ui("chats.new"), size="sm", elem_id="new-chat", min_width=80)
        delete = gr.Button(ui("chats.delete"), size="sm", variant="stop", elem_id="delete-chat", min_width=80)
        export = gr.DownloadButton(ui("chats.export"), size="sm", elem_id="export-chat", interactive=False,
                                   min_width=80)
    listing = gr.Radio([], label=ui("chats.earlier"), elem_id="chats")
    note = gr.Markdown(elem_id="chats-note")
    browser = gr.BrowserState([], storage_key=STORAGE_KEY, secret=chats.browser_secret(settings))
    return ChatHistory(settings, user_of, chatbot, browser, gr.State(None), listing, new, delete, export, note)
