"""Who is signed in, and who may change the index: the access rules the app's tabs share.

A user is the RAG_AUTH login, else the Hugging Face account ("Sign in with Hugging Face" on a Space), else nobody.
Without RAG_ADMINS everyone who can open the app may change the index; with it, only those users.

Leaves out: the login itself (Gradio's ``auth``, ``rag.mcp_auth``) and the UI (``app.py``, ``rag.ui_documents``).
"""

from __future__ import annotations

from typing import Any

from rag.locales import t
from rag.render import md_escape
from rag.settings import Settings


def current_user(request: Any, profile: Any = None) -> str | None:
    """Who is signed in (``request``: a ``gr.Request``, ``profile``: a ``gr.OAuthProfile``); None when nobody is."""
    if request is not None and getattr(request, "username", None):
        return str(request.username)
    return profile.username if profile is not None else None


def may_change_index(settings: Settings, user: str | None) -> bool:
    """Uploading, removing, clearing and rebuilding: open to everyone without RAG_ADMINS, else to those users only."""
    admins = settings.admin_names()
    return not admins or user in admins


def access_note(settings: Settings, user: str | None, lang: str = "en") -> str:
    """Who is signed in, and whether they may change the index, in ``lang`` (markdown)."""
    if may_change_index(settings, user):
        return t(lang, "access.signed_in", user=md_escape(user)) if user else ""
    if user:
        return t(lang, "access.read_only_user", user=md_escape(user))
    return t(lang, "access.read_only_visitor")
