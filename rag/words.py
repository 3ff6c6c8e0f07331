"""Where words begin in Chinese text, by jieba: the segmenter that Milvus's ``jieba`` BM25 analyzer uses.

The chunker (``rag.documents``) asks it where a window may end inside a run of Han characters, which has no spaces
between words: at a word boundary, never inside a word jieba keeps whole. jieba loads its dictionary (about 1.5 s)
the first time a text with Han characters is cut; text without any never loads it.

Leaves out: BM25 itself (Milvus analyzes the text on its side, ``rag.store``) and other scripts without spaces
(Japanese, Thai).
"""

from __future__ import annotations

import logging
import re
import threading

from rag.errors import RAGError

_HAN = re.compile(r"[\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff]")
_lock = threading.Lock()
_jieba = None


def has_han(text: str) -> bool:
    return _HAN.search(text) is not None


def is_han(char: str) -> bool:
    return bool(char) and _HAN.fullmatch(char) is not None


def word_starts(text: str) -> set[int]:
    """The character offsets at which jieba starts a word (accurate mode, as it segments a document); empty when
    ``text`` has no Han character."""
    if not has_han(text):
        return set()
    return {start for _, start, _ in _segmenter().tokenize(text)}


def _segmenter():
    global _jieba
    with _lock:
        if _jieba is None:
            try:
                import jieba
            except ImportError as exc:
                raise RAGError("Cutting Chinese text needs jieba: pip install -r requirements.txt (it comes with "
                               "milvus-lite[chinese]), or pip install jieba.") from exc
            jieba.setLogLevel(logging.WARNING)
            jieba.initialize()
            _jieba = jieba
        return _jieba
