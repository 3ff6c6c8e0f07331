"""Qwen3-Reranker as a causal LM that scores P("yes") for each (query, passage) pair.

The prompt is the model card's, to the byte: a fixed system prefix, then
``<Instruct>: {instruction}\\n<Query>: {query}\\n<Document>: {doc}``, then the ``<think>\\n\\n</think>\\n\\n``
suffix. The score is softmax over the "no"/"yes" logits at the last position.

Faster than the card's code but the same numbers: on the CPU the tokens every prompt shares (system prefix,
instruction, query) run once and each passage runs on their KV cache, without padding; only the last position's
hidden state goes through the LM head, and only the "yes" and "no" rows of that head are used; scores are kept in an
LRU cache keyed by (instruction, query, passage). On a GPU, prompts run in length-sorted padded batches instead.
``tests/test_reranker.py`` holds the card's recipe and checks the two agree.

``YesNoReranker`` is the engine-neutral part (prompt, score cache, shared-prefix split); ``Qwen3Reranker`` runs it
on PyTorch, ``rag.onnx_engine.OnnxReranker`` on ONNX Runtime.

Leaves out: device and dtype choice (``rag.devices``), the engine choice (``rag.engines``).
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections import OrderedDict
from collections.abc import Iterator, Sequence
from typing import Any

from rag.errors import ModelLoadError, model_load_error

SYSTEM_PREFIX = (
    "<|im_start|>system\nJudge whether the Document meets the requirements based on the Query and the Instruct "
    'provided. Note that the answer can only be "yes" or "no".<|im_end|>\n<|im_start|>user\n'
)
SUFFIX = "<|im_end|>\n<|im_start|>assistant\n<think>\n\n</think>\n\n"
DEFAULT_INSTRUCTION = "Given a web search query, retrieve relevant passages that answer the query"


def format_pair(instruction: str, query: str, document: str) -> str:
    return f"<Instruct>: {instruction}\n<Query>: {query}\n<Document>: {document}"


class Reranker(ABC):
    """Scores passages for a query; higher is more relevant."""

    name: str

    @abstractmethod
    def score(self, query: str, passages: Sequence[str], instruction: str | None = None) -> list[float]:
        """One score in [0, 1] per passage, in the order given."""

    def score_iter(self, query: str, passages: Sequence[str], instruction: str | None = None) -> Iterator[float]:
        """The same scores, yielded one by one as they are ready (a UI can show the best so far).

        A backend that scores everything at once yields them all at the end; that is the default.
        """
        yield from self.score(query, passages, instruction)

    def notice(self, instruction: str | None = None) -> str:
        """One line for the user when the scores cannot follow ``instruction`` as asked (empty: they do)."""
        return ""


MIN_SHARED_PREFIX = 8  # fewer shared tokens than this: each prompt runs whole (a cache would not pay)


def shared_prefix_length(prompts: Sequence[Sequence[int]]) -> int:
    """How many leading token ids every prompt shares, leaving each prompt at least one token of its own."""
    first, shared = prompts[0], min(len(p) for p in prompts) - 1
    for ids in prompts[1:]:
        n = 0
        while n < shared and ids[n] == first[n]:
            n += 1
        shared = n
    return shared


def p_yes(logits: Any) -> list[float]:
    """P("yes") from (batch, 2) "no"/"yes" logits as the card computes it (log-softmax, then exp), in float64."""
    import numpy as np

    z = np.asarray(logits, dtype=np.float64)
    top = z.max(axis=1, keepdims=True)
    log_p = z - top - np.log(np.exp(z - top).sum(axis=1, keepdims=True))
    return np.exp(log_p[:, 1]).tolist()


class YesNoReranker(Reranker):
    """The engine-neutral part of a Qwen3-Reranker: the card's prompt, the score cache, and the choice between one
    shared-prefix pass and plain batches. An engine writes ``_score_batches`` and ``_iter_on_prefix``."""

    def __init__(self, tokenizer: Any, name: str, instruction: str = DEFAULT_INSTRUCTION, max_length: int = 8192,
                 batch_size: int = 1, prefix_cache: bool = True, cache_size: int = 4096) -> None:
        self.tokenizer, self.name = tokenizer, name
        self.instruction = instruction
        self.max_length = max_length
        self.batch_size = batch_size
        self.prefix_cache = prefix_cache
        self.yes_no_ids = self.tokenizer.convert_tokens_to_ids(["no", "yes"])
        if None in self.yes_no_ids or self.tokenizer.unk_token_id in self.yes_no_ids:
            raise ModelLoadError(
                f"{self.name!r} has no 'yes'/'no' tokens; RAG_RERANKER_MODEL must be a Qwen3-Reranker."
            )
        self.prefix = self.tokenizer.encode(SYSTEM_PREFIX, add_special_tokens=False)
        self.suffix = self.tokenizer.encode(SUFFIX, add_special_tokens=False)
        self._scores: OrderedDict[tuple[str, str, str], float] = OrderedDict()  # LRU: (instruction, query, doc)
        self._cache_size = cache_size

    @abstractmethod
    def _score_batches(self, prompts: list[list[int]]) -> list[float]:
        """P(yes) of each prompt, run on its own or in padded batches of ``batch_size``."""

    @abstractmethod
    def _iter_on_prefix(self, prompts: list[list[int]], shared: int) -> Iterator[float]:
        """P(yes) of each prompt as it is ready, their first ``shared`` tokens (the same in all) run once."""

    def encode(self, query: str, passages: Sequence[str], instruction: str | None = None) -> list[list[int]]:
        """The token ids of each full prompt, truncated as the model card does."""
        texts = [format_pair(instruction or self.instruction, query, p) for p in passages]
        body = self.tokenizer(
            texts,
            padding=False,
            truncation="longest_first",
            return_attention_mask=False,
            max_length=self.max_length - len(self.prefix) - len(self.suffix),
        )["input_ids"]
        return [self.prefix + ids + self.suffix for ids in body]

    def clear_cache(self) -> None:
        """Forget the cached scores (a benchmark times the model, not the cache)."""
        self._scores.clear()

    def score(self, query: str, passages: Sequence[str], instruction: str | None = None) -> list[float]:
        return list(self.score_iter(query, passages, instruction))

    def score_iter(self, query: str, passages: Sequence[str], instruction: str | None = None) -> Iterator[float]:
        """Scores in the order given; on the CPU each is yielded as soon as its passage has run.

        No lock or torch mode is held across a yield: the consumer may resume it from another thread.
        """
        instruction = instruction or self.instruction
        keys = [(instruction, query, p) for p in passages]
        todo = list(dict.fromkeys(k for k in keys if k not in self._scores))  # unique, in first-seen order
        fresh: Iterator[float] = iter(())
        if todo:
            prompts = self.encode(query, [k[2] for k in todo], instruction)
            if self.prefix_cache and self.batch_size == 1 and len(prompts) > 1:
                fresh = self._iter_shared_prefix(prompts)
            else:
                fresh = iter(self._score_batches(prompts))
        for k in keys:
            if k not in self._scores:
                self._scores[k] = next(fresh)
            self._scores.move_to_end(k)
            yield self._scores[k]
        while len(self._scores) > self._cache_size:
            self._scores.popitem(last=False)

    def _iter_shared_prefix(self, prompts: list[list[int]]) -> Iterator[float]:
        """Run the tokens every prompt shares (system prefix, instruction, query) once, then each rest on its cache,
        yielding each prompt's score as it is ready.

        The shared part is the longest common prefix of the token ids themselves, so every prompt sees exactly
        the tokens it would see alone; RoPE makes the positions match too.
        """
        shared = shared_prefix_length(prompts)
        if shared < MIN_SHARED_PREFIX:
            yield from self._score_batches(prompts)
        else:
            yield from self._iter_on_prefix(prompts, shared)


class Qwen3Reranker(YesNoReranker):
    """Qwen3-Reranker (or any causal LM trained on the same yes/no format) from a hub id or a local folder.

    ``model`` may also be an already-built causal LM, with its ``tokenizer`` (the benchmark does that).
    """

    def __init__(
        self,
        model: Any,
        device: str = "cpu",
        dtype: object = None,
        instruction: str = DEFAULT_INSTRUCTION,
        max_length: int = 8192,
        batch_size: int = 1,
        tokenizer: Any = None,
        prefix_cache: bool = True,
        cache_size: int = 4096,
        quantize: str = "none",
    ) -> None:
        import torch

        if isinstance(model, str):
            try:
                from transformers import AutoModelForCausalLM, AutoTokenizer

                tokenizer = AutoTokenizer.from_pretrained(model, padding_side="left")
                model_obj = AutoModelForCausalLM.from_pretrained(model, dtype=dtype or torch.float32)
            except Exception as exc:
                raise model_load_error("reranker", model, exc, "RAG_RERANKER_MODEL",
                                       "a Qwen3-Reranker-style causal LM") from exc
            name = model
        else:
            model_obj, name = model, getattr(model, "name_or_path", "") or type(model).__name__
        super().__init__(tokenizer, name, instruction, max_length, batch_size, prefix_cache, cache_size)
        self.model = model_obj.to(device).eval()
        self.device = device
        # (2, hidden): the LM head rows for "no" and "yes"; the rest of the vocabulary is never computed.
        self.head = self.model.get_output_embeddings().weight[self.yes_no_ids].detach().float().clone()
        if quantize == "int8":
            from rag.devices import quantize_int8

            self.model = quantize_int8(self.model)

    def _p_yes(self, hidden: Any) -> list[float]:
        import torch

        logits = hidden.float() @ self.head.T  # (batch, 2): no, yes
        return torch.log_softmax(logits, dim=-1)[:, 1].exp().tolist()

    def _score_batches(self, prompts: list[list[int]]) -> list[float]:
        """Length-sorted batches, left-padded; one prompt per batch means no padding at all."""
        import torch

        order = sorted(range(len(prompts)), key=lambda i: len(prompts[i]))
        scores = [0.0] * len(prompts)
        pad = self.tokenizer.pad_token_id or 0
        with torch.inference_mode():
            for start in range(0, len(order), self.batch_size):
                batch = order[start : start + self.batch_size]
                width = max(len(prompts[i]) for i in batch)
                ids = torch.tensor([[pad] * (width - len(prompts[i])) + prompts[i] for i in batch], device=self.device)
                mask = torch.tensor(
                    [[0] * (width - len(prompts[i])) + [1] * len(prompts[i]) for i in batch], device=self.device
                )
                hidden = self.model.model(input_ids=ids, attention_mask=mask).last_hidden_state[:, -1]
                for i, p in zip(batch, self._p_yes(hidden), strict=True):
                    scores[i] = p
        return scores

    def _iter_on_prefix(self, prompts: list[list[int]], shared: int) -> Iterator[float]:
        import torch
        from transformers import DynamicCache

        with torch.inference_mode():
            cache = DynamicCache(config=self.model.config)
            head = torch.tensor([prompts[0][:shared]], device=self.device)
            self.model.model(input_ids=head, cache=cache, use_cache=True)
        for ids in prompts:
            with torch.inference_mode():
                rest = torch.tensor([ids[shared:]], device=self.device)
                positions = torch.arange(shared, len(ids), device=self.device).unsqueeze(0)
                out = self.model.model(input_ids=rest, cache=cache, use_cache=True, position_ids=positions)
                score = self._p_yes(out.last_hidden_state[:, -1])[0]
                cache.crop(shared - len(ids))  # drop this passage, keep the shared prefix
            yield score
