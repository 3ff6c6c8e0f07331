"""Grounded answers streamed from any OpenAI-compatible chat-completions server (GPT-4o by default).

The prompt numbers the reranked passages and asks for [n] citations, the question's language, and a plain "not in
the passages" when they lack the answer. A follow-up question is condensed into a standalone one for retrieval,
and the answer prompt carries a bounded history. Failures (401, 404, 429 after bounded retries, 5xx, timeouts, a
stream cut short) end the answer with one clear line and keep the text received so far; the key is never shown.
Without a key (and without a base URL) there is no LLM call: the passages themselves are the answer.

Leaves out: retrieval (``rag.pipeline``), and any rendering (the CLI and the app do that).
"""

from __future__ import annotations

import time
import tomllib
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from rag.errors import GenerationError
from rag.locales import t
from rag.settings import ROOT, Settings
from rag.types import Hit

PROMPTS = ROOT / "config" / "prompts.toml"
MAX_HISTORY_CHARS = 2000  # per earlier answer carried into the prompt


@dataclass(frozen=True)
class Prompts:
    system: str
    user: str
    passage: str
    condense: str
    retrieval_only_notice: str

    @classmethod
    def load(cls, path: Path = PROMPTS) -> Prompts:
        with open(path, "rb") as f:
            return cls(**tomllib.load(f))


@dataclass(frozen=True)
class Turn:
    """One earlier exchange of the conversation."""

    question: str
    answer: str


@dataclass
class AnswerStream:
    """Iterate for the answer's text as it arrives; afterwards the fields say how it went.

    Any failure notice is part of the text (on a line of its own) and also in ``error``.
    """

    _deltas: Iterator[str]
    text: str = ""
    error: str | None = None
    partial: str = ""  # on failure: the text received before it
    generated: bool = False  # False when the passages were shown without an LLM
    finish_reason: str | None = None  # as the server said: "stop", "length" (cut at RAG_MAX_TOKENS), ...
    first_token_s: float | None = None
    generate_s: float = 0.0
    # the "⚠" line that ends the text (a failure, or a cut), as a locale key and its params, and the model's text
    # before it: the web app says that line in the user's language (rag.locales)
    tail: tuple[str, dict[str, Any]] | None = None
    body: str = ""
    _started: float = field(default_factory=time.perf_counter)

    def __iter__(self) -> Iterator[str]:
        for delta in self._deltas:
            if delta and self.first_token_s is None:
                self.first_token_s = time.perf_counter() - self._started
            self.text += delta
            yield delta
        self.generate_s = time.perf_counter() - self._started

    def consume(self) -> AnswerStream:
        for _ in self:
            pass
        return self


def format_passages(hits: Sequence[Hit], prompts: Prompts) -> str:
    return "\n\n".join(
        prompts.passage.format(n=i, heading=h.heading or "(no heading)", source=h.source, text=h.text)
        for i, h in enumerate(hits, 1)
    )


def retrieval_only(hits: Sequence[Hit], prompts: Prompts) -> str:
    """The answer shown when there is no LLM: the passages, numbered, with their sources."""
    parts = [prompts.retrieval_only_notice]
    for i, h in enumerate(hits, 1):
        parts.append(f"[{i}] {h.heading or '(no heading)'} ({h.source})\n{h.text}")
    return "\n\n".join(parts)


def fallback_standalone(question: str, history: Sequence[Turn]) -> str:
    """Without an LLM: the previous question and the follow-up together, which retrieval can use."""
    return f"{history[-1].question} {question}" if history else question


class Generator:
    """Chat completions over the ``openai`` client; one instance serves every user (it keeps no per-answer state)."""

    def __init__(self, settings: Settings, client: Any = None, prompts: Prompts | None = None,
                 sleep: Callable[[float], None] = time.sleep) -> None:
        self.settings = settings
        self.prompts = prompts or Prompts.load()
        self._client = client
        self._sleep = sleep

    @property
    def enabled(self) -> bool:
        """True when there is an LLM to call: a key, or a base URL of a server that needs none."""
        return bool(self.settings.openai_api_key or self.settings.openai_base_url)

    @property
    def client(self) -> Any:
        if self._client is None:
            try:
                import openai
            except ImportError as exc:
                raise GenerationError("The openai package is missing: pip install -r requirements.txt") from exc
            self._client = openai.OpenAI(
                api_key=self.settings.openai_api_key or "not-needed",
                base_url=self.settings.openai_base_url or None,
                timeout=self.settings.llm_timeout_s,
                max_retries=0,  # retries are ours, and only for rate limits
            )
        return self._client

    def messages(self, question: str, hits: Sequence[Hit], history: Sequence[Turn] = ()) -> list[dict[str, str]]:
        """The chat messages: system, the last ``history_turns`` exchanges, then the passages and the question."""
        out = [{"role": "system", "content": self.prompts.system}]
        for turn in history[-self.settings.history_turns :] if self.settings.history_turns else ():
            out.append({"role": "user", "content": turn.question})
            out.append({"role": "assistant", "content": turn.answer[:MAX_HISTORY_CHARS]})
        passages = format_passages(hits, self.prompts)
        out.append({"role": "user", "content": self.prompts.user.format(passages=passages, question=question)})
        return out

    def standalone_question(self, question: str, history: Sequence[Turn], model: str | None = None) -> str:
        """A follow-up rewritten to stand alone, for retrieval. Falls back to a plain join if the LLM fails."""
        history = list(history)[-self.settings.history_turns :] if self.settings.history_turns else []
        if not history:
            return question
        if not self.enabled:
            return fallback_standalone(question, history)
        convo = "\n".join(f"User: {t.question}\nAssistant: {t.answer[:500]}" for t in history)
        prompt = self.prompts.condense.format(history=convo, follow_up=question)
        try:
            reply = self.client.chat.completions.create(
                model=model or self.settings.llm_model, messages=[{"role": "user", "content": prompt}],
                temperature=0, max_tokens=100, stream=False,
            )
            text = (reply.choices[0].message.content or "").strip()
        except Exception:
            return fallback_standalone(question, history)
        return text or fallback_standalone(question, history)

    def stream(self, question: str, hits: Sequence[Hit], history: Sequence[Turn] = (),
               model: str | None = None) -> AnswerStream:
        """Stream an answer grounded in ``hits``; without an LLM, the passages are the answer."""
        if not self.enabled:
            return AnswerStream(iter([retrieval_only(hits, self.prompts)]), generated=False)
        answer = AnswerStream(iter(()), generated=True)
        answer._deltas = self._deltas(self.messages(question, hits, history), model or self.settings.llm_model,
                                      answer)
        return answer

    def _deltas(self, messages: list[dict[str, str]], model: str, answer: AnswerStream) -> Iterator[str]:
        import openai

        attempt, received, finished = 0, False, False
        while True:
            try:
                stream = self.client.chat.completions.create(
                    model=model, messages=messages, stream=True, temperature=self.settings.temperature,
                    max_tokens=self.settings.max_tokens,
                )
                # Servers differ: OpenAI sends usage in a last chunk without choices (when asked), transformers serve
                # on the chunk that finishes; some end with [DONE], others just close. Only choices matter here.
                for chunk in stream:
                    for choice in chunk.choices or ():
                        text = choice.delta.content if choice.delta else None
                        if text:
                            received = True
                            yield text
                        if choice.finish_reason:
                            finished = True
                            answer.finish_reason = choice.finish_reason
                if not finished:
                    yield self._fail(answer, "llm.stream_ended")
                elif answer.finish_reason in _CUT:
                    answer.tail = (_CUT[answer.finish_reason], {"n": self.settings.max_tokens})
                    answer.body = answer.text
                    yield ("\n\n" if received else "") + "⚠ " + t("en", answer.tail[0], **answer.tail[1])
                return
            except openai.RateLimitError as exc:
                attempt += 1
                if received or attempt > self.settings.llm_retries:
                    yield self._fail(answer, "llm.rate_limited", tries=attempt)
                    return
                self._sleep(_retry_after(exc, attempt))
            except Exception as exc:  # every other failure ends the answer with one clear line
                key, params = self.describe_keyed(exc, model, received)
                yield self._fail(answer, key, **params)
                return

    def _fail(self, answer: AnswerStream, key: str, **params: Any) -> str:
        """The failure line that ends the answer (``key``'s English text, the API key blanked out)."""
        answer.error = self.scrub(t("en", key, **params))
        answer.partial = answer.body = answer.text
        answer.tail = (key, params)
        return ("\n\n" if answer.text else "") + f"⚠ {answer.error}"

    def scrub(self, text: str) -> str:
        """``text`` with the API key blanked out, wherever it appears."""
        key = self.settings.openai_api_key
        return text.replace(key, "***") if key else text

    def describe(self, exc: BaseException, model: str, received: bool) -> str:
        """One line that says what went wrong and what to change."""
        key, params = self.describe_keyed(exc, model, received)
        return t("en", key, **params)

    def describe_keyed(self, exc: BaseException, model: str, received: bool) -> tuple[str, dict[str, Any]]:
        """``describe``'s line as a locale key (``config/locales``) and its params."""
        import openai

        where = self.settings.openai_base_url or "api.openai.com"
        if isinstance(exc, openai.AuthenticationError):
            return "llm.key_rejected", {"where": where}
        if isinstance(exc, openai.PermissionDeniedError):
            return "llm.model_denied", {"model": repr(model)}
        if isinstance(exc, openai.NotFoundError):
            return "llm.model_not_found", {"model": repr(model), "where": where}
        if isinstance(exc, openai.APITimeoutError):
            return "llm.timeout", {"where": where, "seconds": self.settings.llm_timeout_s}
        if isinstance(exc, openai.APIConnectionError):
            if received:
                return "llm.connection_broke", {}
            return "llm.unreachable", {"where": where}
        if isinstance(exc, openai.APIStatusError):
            status = exc.status_code
            if status >= 500:
                return "llm.server_failed", {"where": where, "status": status}
            return "llm.refused", {"where": where, "status": status, "detail": _message(exc)}
        return "llm.failed", {"detail": f"{type(exc).__name__}: {str(exc)[:200]}"}


# finish reasons that mean the answer is not whole -> the locale key of the line shown under it (not an error: the
# text stands)
_CUT = {"length": "llm.cut_length", "content_filter": "llm.cut_filter"}


def _retry_after(exc: Any, attempt: int) -> float:
    """Seconds to wait before retry ``attempt``: the server's Retry-After if given, else exponential (capped)."""
    try:
        header = exc.response.headers.get("retry-after")
        if header is not None:
            return min(float(header), 30.0)
    except (AttributeError, ValueError):
        pass
    return min(0.5 * 2 ** (attempt - 1), 8.0)


def _message(exc: Any) -> str:
    body = getattr(exc, "body", None)
    if isinstance(body, dict):
        inner = body.get("error", body)
        if isinstance(inner, dict) and inner.get("message"):
            return str(inner["message"])[:200]
        if isinstance(body.get("detail"), str):  # FastAPI servers (transformers serve): {"detail": "..."}
            return body["detail"][:200]
    return str(exc)[:200]
