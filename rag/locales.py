"""The UI's languages: one table per language, the language of a request, and one lookup.

The tables are ``config/locales/{en,zh-TW,zh-CN}.toml`` (TOML sections flatten to dotted keys: ``[ask] send``
is ``ask.send``); every key is in every table, with the same ``{param}`` placeholders (``tests/test_locales.py``).
``t(lang, key, **params)`` is the one lookup: the text of ``key`` in ``lang`` (English for a language not
offered), ``str.format``-ed with ``params``. A key missing from one table falls back to English, and a key missing
from English raises ``KeyError``; both are bugs the test finds. ``lang_of(request)`` is the language of a
``gr.Request`` from its Accept-Language header: the tag the browser puts first (by quality), zh-TW / zh-HK / zh-MO /
zh-Hant -> "zh-TW", any other Chinese -> "zh-CN", anything else -> "en". ``browser_i18n(**params)`` is the
``gr.I18n`` for what the browser renders (labels, tabs, buttons), and ``ui(key)`` the key a component is given.

Leaves out: which text a tab shows (the tabs ask here for every string) and the CLI, which stays English. Imports
nothing of the package (``rag.errors`` reads its English messages from here) and Gradio only when it is asked for.
"""

from __future__ import annotations

import re
import string
import tomllib
from functools import cache
from pathlib import Path
from typing import Any

LOCALES = Path(__file__).resolve().parent.parent / "config" / "locales"
LANGS = ("en", "zh-TW", "zh-CN")  # the tables, English first: the fallback
DEFAULT = "en"
_QUALITY = re.compile(r"q\s*=\s*([^;,\s]*)")  # a malformed quality counts as 0: the tag is ignored


def _flatten(table: dict[str, Any], prefix: str = "") -> dict[str, str]:
    flat: dict[str, str] = {}
    for k, v in table.items():
        if isinstance(v, dict):
            flat.update(_flatten(v, f"{prefix}{k}."))
        else:
            flat[f"{prefix}{k}"] = str(v)
    return flat


@cache
def table(lang: str) -> dict[str, str]:
    """Every key of ``lang``'s table -> its text (``{param}`` placeholders as written)."""
    with open(LOCALES / f"{lang}.toml", "rb") as f:
        return _flatten(tomllib.load(f))


def t(lang: str, key: str, **params: Any) -> str:
    """The text of ``key`` in ``lang``, formatted with ``params`` (``str.format``: literal braces are doubled)."""
    text = table(lang if lang in LANGS else DEFAULT).get(key)
    if text is None:
        text = table(DEFAULT)[key]
    return text.format(**params)


def placeholders(text: str) -> set[str]:
    """The ``{param}`` names a text uses."""
    return {name.split(".")[0].split("[")[0] for _, name, _, _ in string.Formatter().parse(text) if name}


def match(tag: str) -> str | None:
    """The table for one language tag ("zh-Hant-HK" -> "zh-TW"), or None for a language without one."""
    parts = tag.strip().lower().replace("_", "-").split("-")
    if parts[0] == "en":
        return "en"
    if parts[0] == "zh":
        return "zh-TW" if {"tw", "hk", "mo", "hant"} & set(parts[1:]) else "zh-CN"
    return None


def pick(header: str | None) -> str:
    """The language of an Accept-Language header: the first tag by quality (ties in order) decides."""
    ranked = []
    for i, part in enumerate((header or "").split(",")):
        tag, _, rest = part.partition(";")
        found = _QUALITY.search(rest)
        try:
            q = float(found.group(1)) if found else 1.0
        except ValueError:
            q = 0.0
        if tag.strip() and tag.strip() != "*" and q > 0:
            ranked.append((-q, i, tag.strip()))
    return next((match(tag) or DEFAULT for _, _, tag in sorted(ranked)), DEFAULT)


def lang_of(request: Any) -> str:
    """The language of a ``gr.Request`` (or anything with ``headers``); "en" without one."""
    headers = getattr(request, "headers", None)  # starlette's Headers, or Gradio's Obj of them for a queued event
    if headers is None:
        return DEFAULT
    return pick(headers.get("accept-language") or headers.get("Accept-Language"))


class _Kept(dict):
    def __missing__(self, key: str) -> str:
        raise KeyError(key)


def _filled(text: str, params: dict[str, Any]) -> str:
    """``text`` formatted with ``params`` when it uses only those; as written otherwise."""
    try:
        return text.format_map(_Kept(params))
    except (KeyError, IndexError, ValueError):
        return text


def browser_i18n(**params: Any) -> Any:
    """The ``gr.I18n`` of every table, for ``launch(i18n=...)``; texts whose placeholders are all in ``params``
    (the settings a label names: upload limits, timeouts) are filled in."""
    import gradio as gr

    return gr.I18n(**{lang: {k: _filled(v, params) for k, v in table(lang).items()} for lang in LANGS})


def ui(key: str) -> Any:
    """What a component is given for text the browser translates (``gr.I18n``'s key); the key must exist."""
    import gradio as gr

    table(DEFAULT)[key]  # noqa: B018 - a KeyError here names a key no table has
    return gr.I18n()(key)


def error_text(lang: str, exc: BaseException) -> str:
    """An error as the UI shows it: its own text in ``lang`` when it has a key, else a translated prefix and the
    error's (English) detail."""
    key = getattr(exc, "key", "")
    if key:
        return t(lang, key, **getattr(exc, "params", {}))
    return t(lang, "error.prefix", detail=str(exc))
