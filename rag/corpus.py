"""The default corpus the app indexes on first start: a local folder (``RAG_DOCS``), or the tutorial's Milvus FAQ.

The FAQ comes from the milvus-docs v2.4.6-preview release zip, as in the tutorial (``en/faq/*.md``), downloaded once
into the data folder. When it cannot be downloaded (no internet), the same four pages shipped in the repository
(``corpus/milvus_faq``) are used instead, and ``DefaultCorpus.origin`` says which copy it was.

Leaves out: indexing (``rag.pipeline``) and the library's bookkeeping (``rag.library``).
"""

from __future__ import annotations

import logging
import shutil
import tempfile
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

from rag.documents import extract_zip
from rag.errors import EmptyCorpusError, brief
from rag.locales import t
from rag.settings import ROOT, Settings

FAQ_ZIP_URL = "https://github.com/milvus-io/milvus-docs/releases/download/v2.4.6-preview/milvus_docs_2.4.x_en.zip"
SHIPPED_FAQ = ROOT / "corpus" / "milvus_faq"  # the same four pages, in the repository (see NOTICE)
log = logging.getLogger(__name__)


@dataclass(frozen=True)
class DefaultCorpus:
    """What first start and rebuild index: ``paths``, named relative to ``root`` (so both copies of the FAQ give
    the same document names, ``milvus_faq/…``), and ``origin``, one line saying where they came from."""

    paths: tuple[str, ...]
    root: str
    origin: str  # in English; ``origin_key`` and ``origin_params`` say it in the UI's language (rag.locales)
    origin_key: str = ""
    origin_params: dict[str, str] = field(default_factory=dict, compare=False, hash=False)

    @classmethod
    def keyed(cls, paths: tuple[str, ...], root: str, key: str, **params: str) -> DefaultCorpus:
        return cls(paths, root, t("en", key, **params), key, params)


def default_corpus(settings: Settings, timeout: float = 30.0) -> DefaultCorpus:
    """``RAG_DOCS``, else the Milvus FAQ: downloaded once, or the shipped copy when the download fails."""
    if settings.docs:
        docs = Path(settings.docs)
        if not docs.exists():
            raise EmptyCorpusError(key="error.no_docs", docs=repr(settings.docs))
        return DefaultCorpus.keyed((str(docs),), str(docs.parent), "origin.docs", path=str(docs))
    target = Path(settings.data_dir) / "milvus_faq"
    if any(target.glob("*.md")):
        return DefaultCorpus.keyed(_pages(target), str(target.parent), "origin.downloaded", path=str(target))
    try:
        download_faq(target, timeout)
    except EmptyCorpusError as exc:
        log.warning("%s Using the copy shipped in the repository, %s.", exc, SHIPPED_FAQ)
        return DefaultCorpus.keyed(_pages(SHIPPED_FAQ), str(SHIPPED_FAQ.parent), "origin.shipped")
    return DefaultCorpus.keyed(_pages(target), str(target.parent), "origin.zip", url=FAQ_ZIP_URL)


def _pages(folder: Path) -> tuple[str, ...]:
    return tuple(str(p) for p in sorted(folder.glob("*.md")))


def download_faq(target: Path, timeout: float = 30.0) -> None:
    """Fetch the release zip and keep its ``en/faq/*.md`` pages in ``target``."""
    with tempfile.TemporaryDirectory() as tmp:
        archive = Path(tmp) / "docs.zip"
        try:
            with urllib.request.urlopen(FAQ_ZIP_URL, timeout=timeout) as response, open(archive, "wb") as out:
                shutil.copyfileobj(response, out)
        except OSError as exc:
            raise EmptyCorpusError(f"Could not download the default corpus, the Milvus FAQ ({brief(exc)}).") from exc
        files, _ = extract_zip(archive, Path(tmp) / "x", max_bytes=10_000_000)
        faq = [f for f in files if f.parent.name == "faq" and f.suffix == ".md"]
        if not faq:
            raise EmptyCorpusError("The downloaded docs zip has no en/faq pages.")
        target.mkdir(parents=True, exist_ok=True)
        for f in faq:
            shutil.copy(f, target / f.name)
