"""The default corpus the app indexes on first start: a local folder (``RAG_DOCS``), or the tutorial's Milvus FAQ.

The FAQ comes from the milvus-docs v2.4.6-preview release zip, as in the tutorial (``en/faq/*.md``), and is
downloaded once into the data folder. Offline, the error says how to point the app at local files instead.

Leaves out: indexing (``rag.pipeline``).
"""

from __future__ import annotations

import shutil
import tempfile
import urllib.request
from pathlib import Path

from rag.documents import extract_zip
from rag.errors import EmptyCorpusError, brief
from rag.settings import Settings

FAQ_ZIP_URL = "https://github.com/milvus-io/milvus-docs/releases/download/v2.4.6-preview/milvus_docs_2.4.x_en.zip"


def default_corpus(settings: Settings, timeout: float = 30.0) -> list[str]:
    """Paths to index when the collection is empty: ``RAG_DOCS``, else the Milvus FAQ (downloaded if needed)."""
    if settings.docs:
        if not Path(settings.docs).exists():
            raise EmptyCorpusError(f"RAG_DOCS={settings.docs!r} does not exist; set it to a folder of documents.")
        return [settings.docs]
    target = Path(settings.data_dir) / "milvus_faq"
    if not any(target.glob("*.md")):
        download_faq(target, timeout)
    return [str(target)]


def download_faq(target: Path, timeout: float = 30.0) -> None:
    """Fetch the release zip and keep its ``en/faq/*.md`` pages in ``target``."""
    with tempfile.TemporaryDirectory() as tmp:
        archive = Path(tmp) / "docs.zip"
        try:
            with urllib.request.urlopen(FAQ_ZIP_URL, timeout=timeout) as response, open(archive, "wb") as out:
                shutil.copyfileobj(response, out)
        except OSError as exc:
            raise EmptyCorpusError(
                f"Could not download the default corpus, the Milvus FAQ ({brief(exc)}). Set RAG_DOCS to a folder of "
                "documents, or upload documents in the Documents tab."
            ) from exc
        files, _ = extract_zip(archive, Path(tmp) / "x", max_bytes=10_000_000)
        faq = [f for f in files if f.parent.name == "faq" and f.suffix == ".md"]
        if not faq:
            raise EmptyCorpusError("The downloaded docs zip has no en/faq pages; set RAG_DOCS to a local folder.")
        target.mkdir(parents=True, exist_ok=True)
        for f in faq:
            shutil.copy(f, target / f.name)
