"""The errors the rag package raises on purpose. Each message says what to change.

The command line and the web app turn these into one clear line (or a ``gr.Error``) at the edge;
anything else is a bug and keeps its traceback. The errors a UI user meets carry a locale key (``RAGError(key=...)``).
"""

from __future__ import annotations


class RAGError(Exception):
    """Base class: an expected failure whose message tells the user what to do.

    Raised with ``key`` (and its params) instead of a message, the message is the English text of that key in
    ``config/locales/en.toml`` and the web app shows the key's text in the user's language (``rag.locales``).
    """

    def __init__(self, *args: object, key: str = "", **params: object) -> None:
        if key and not args:
            from rag.locales import t

            args = (t("en", key, **params),)
        super().__init__(*args)
        self.key, self.params = key, params


class SettingsError(RAGError):
    """A setting has a value that cannot be used."""


class ModelLoadError(RAGError):
    """A model could not be found, downloaded or loaded."""


class ModelCallError(RAGError):
    """A model call failed while running: an inference server was down, slow, refused the request or answered
    something that is not the protocol. A question whose reranking fails this way keeps its first-stage results."""


class StoreError(RAGError):
    """Milvus could not be reached, or the collection cannot be used as asked."""


class IncompatibleCollectionError(StoreError):
    """The collection was built with another embedding model or dimension."""


class EmptyCorpusError(RAGError):
    """There is nothing to ingest, or nothing to search."""


class UnknownDocumentError(RAGError):
    """A document named by the user (to search in, or to remove) is not in the collection."""


class EmptyQuestionError(RAGError):
    """The question is empty or only whitespace."""


class EvaluationSetError(RAGError):
    """An evaluation set (a BEIR folder or a CSV file) is missing or cannot be read."""


class GenerationError(RAGError):
    """The LLM call failed in a way the user can fix (key, model, server)."""


class ChatError(RAGError):
    """A chat could not be kept, read or exported."""


def brief(exc: BaseException) -> str:
    """The first line of an underlying exception, short enough to put inside one of our messages."""
    lines = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {lines[0][:300]}" if lines else type(exc).__name__


def model_load_error(role: str, model: str, exc: BaseException, variable: str, expects: str) -> ModelLoadError:
    """The one-line error for a model that would not load. A local folder with a file this user cannot read (a
    common case in containers, where the app runs as another user) is named as such, whatever the loader said."""
    import os
    from pathlib import Path

    folder = Path(model).expanduser()
    if folder.is_dir():
        for f in sorted(folder.rglob("*")):
            if f.is_file() and not os.access(f, os.R_OK):
                return ModelLoadError(
                    f"Could not read {f} of the {role} model: permission denied. Make the folder readable by this "
                    f"user (chmod -R a+rX {folder}), or set {variable} to another folder."
                )
    return ModelLoadError(
        f"Could not load the {role} model {model!r} ({brief(exc)}). Set {variable} to a Hugging Face hub id you "
        f"can download, or to a local folder that holds {expects}."
    )
