"""Qwen3-Reranker as a causal LM that scores P("yes") for each (query, passage) pair.

The prompt is the model card's, to the byte: a fixed system prefix, then
``<Instruct>: {instruction}\\n<Query>: {query}\\n<Document>: {doc}``, then the ``<think>\\n\\n</think>\\n\\n``
suffix. The score is softmax over the "no"/"yes" logits at the last position.

Faster than the card's code but the same numbers: each prompt runs without padding in length order, only the last
position's hidden state goes through the LM head, and only the "yes" and "no" rows of that head are used.
``tests/test_reranker.py`` holds the card's recipe and checks the two agree.

Leaves out: device and dtype choice (``rag.devices``).
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence

from rag.errors import ModelLoadError, brief

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


class Qwen3Reranker(Reranker):
    """Qwen3-Reranker (or any causal LM trained on the same yes/no format) from a hub id or a local folder."""

    def __init__(
        self,
        model: str,
        device: str = "cpu",
        dtype: object = None,
        instruction: str = DEFAULT_INSTRUCTION,
        max_length: int = 8192,
        batch_size: int = 1,
    ) -> None:
        try:
            import torch
            from transformers import AutoModelForCausalLM, AutoTokenizer

            self.tokenizer = AutoTokenizer.from_pretrained(model, padding_side="left")
            self.model = (
                AutoModelForCausalLM.from_pretrained(model, dtype=dtype or torch.float32).to(device).eval()
            )
        except Exception as exc:
            raise ModelLoadError(
                f"Could not load the reranker model {model!r} ({brief(exc)}). "
                "Set RAG_RERANKER_MODEL to a Hugging Face hub id you can download, or to a local folder "
                "that holds a Qwen3-Reranker-style causal LM."
            ) from exc
        self.name = model
        self.device = device
        self.instruction = instruction
        self.max_length = max_length
        self.batch_size = batch_size
        ids = self.tokenizer.convert_tokens_to_ids(["no", "yes"])
        if None in ids or self.tokenizer.unk_token_id in ids:
            raise ModelLoadError(f"{model!r} has no 'yes'/'no' tokens; RAG_RERANKER_MODEL must be a Qwen3-Reranker.")
        # (2, hidden): the LM head rows for "no" and "yes"; the rest of the vocabulary is never computed.
        self.head = self.model.get_output_embeddings().weight[ids].detach().float().clone()
        self.prefix = self.tokenizer.encode(SYSTEM_PREFIX, add_special_tokens=False)
        self.suffix = self.tokenizer.encode(SUFFIX, add_special_tokens=False)

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

    def score(self, query: str, passages: Sequence[str], instruction: str | None = None) -> list[float]:
        import torch

        prompts = self.encode(query, passages, instruction)
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
                logits = hidden.float() @ self.head.T  # (batch, 2): no, yes
                p_yes = torch.log_softmax(logits, dim=-1)[:, 1].exp().tolist()
                for i, p in zip(batch, p_yes, strict=True):
                    scores[i] = p
        return scores
