"""The reranker against the Qwen3-Reranker model card's recipe, written out plainly here as the reference."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from transformers import AutoModelForCausalLM, AutoTokenizer

from rag.errors import ModelLoadError
from rag.reranker import Qwen3Reranker

QUERY = "Where does Milvus store data?"
DOCS = [
    "Milvus deals with two types of data, inserted data and metadata. Inserted data is stored in MinIO.",
    "Milvus is a 100% free open-source project.",
    "etcd stores the metadata.",
    "How much does Milvus cost? " * 30,
    "yes",
]


def card_reference(model_path: str, query: str, docs: list[str], instruction: str | None = None,
                   max_length: int = 8192) -> list[float]:
    """The model card's code, nearly verbatim (one padded batch, full logits)."""
    tokenizer = AutoTokenizer.from_pretrained(model_path, padding_side="left")
    model = AutoModelForCausalLM.from_pretrained(model_path, dtype=torch.float32).eval()
    token_false_id = tokenizer.convert_tokens_to_ids("no")
    token_true_id = tokenizer.convert_tokens_to_ids("yes")
    prefix = ("<|im_start|>system\nJudge whether the Document meets the requirements based on the Query and the "
              "Instruct provided. Note that the answer can only be \"yes\" or \"no\".<|im_end|>\n<|im_start|>user\n")
    suffix = "<|im_end|>\n<|im_start|>assistant\n<think>\n\n</think>\n\n"
    prefix_tokens = tokenizer.encode(prefix, add_special_tokens=False)
    suffix_tokens = tokenizer.encode(suffix, add_special_tokens=False)

    def format_instruction(instruction, query, doc):
        if instruction is None:
            instruction = "Given a web search query, retrieve relevant passages that answer the query"
        return f"<Instruct>: {instruction}\n<Query>: {query}\n<Document>: {doc}"

    pairs = [format_instruction(instruction, query, doc) for doc in docs]
    inputs = tokenizer(pairs, padding=False, truncation="longest_first", return_attention_mask=False,
                       max_length=max_length - len(prefix_tokens) - len(suffix_tokens))
    for i, ele in enumerate(inputs["input_ids"]):
        inputs["input_ids"][i] = prefix_tokens + ele + suffix_tokens
    inputs = tokenizer.pad(inputs, padding=True, return_tensors="pt", max_length=max_length)
    with torch.no_grad():
        batch_scores = model(**inputs).logits[:, -1, :]
        true_vector = batch_scores[:, token_true_id]
        false_vector = batch_scores[:, token_false_id]
        batch_scores = torch.stack([false_vector, true_vector], dim=1)
        batch_scores = torch.nn.functional.log_softmax(batch_scores, dim=1)
        return batch_scores[:, 1].exp().tolist()


@pytest.fixture(scope="module")
def reranker_path(tiny_models: tuple[Path, Path]) -> str:
    return str(tiny_models[1])


@pytest.mark.parametrize("batch_size", [1, 3, 8])
def test_matches_model_card_recipe_in_float32(reranker_path: str, batch_size: int) -> None:
    expected = card_reference(reranker_path, QUERY, DOCS)
    assert max(expected) - min(expected) > 0.05, "random model too flat for a meaningful comparison"
    got = Qwen3Reranker(reranker_path, dtype=torch.float32, batch_size=batch_size).score(QUERY, DOCS)
    assert got == pytest.approx(expected, abs=1e-4)


def test_instruction_is_editable_and_matches_reference(reranker_path: str) -> None:
    instruction = "Given a question about databases, find the passage that answers it"
    r = Qwen3Reranker(reranker_path, dtype=torch.float32)
    edited = r.score(QUERY, DOCS, instruction=instruction)
    assert edited == pytest.approx(card_reference(reranker_path, QUERY, DOCS, instruction), abs=1e-4)
    assert edited != pytest.approx(r.score(QUERY, DOCS), abs=1e-6)


def test_truncation_matches_reference(reranker_path: str) -> None:
    r = Qwen3Reranker(reranker_path, dtype=torch.float32, max_length=120)
    assert max(len(ids) for ids in r.encode(QUERY, DOCS)) == 120
    assert r.score(QUERY, DOCS) == pytest.approx(card_reference(reranker_path, QUERY, DOCS, max_length=120), abs=1e-4)


def test_prompt_is_the_model_cards(reranker_path: str) -> None:
    r = Qwen3Reranker(reranker_path, dtype=torch.float32)
    text = r.tokenizer.decode(r.encode(QUERY, ["DOC"])[0])
    assert text.startswith("<|im_start|>system\nJudge whether the Document meets the requirements")
    assert "<|im_end|>\n<|im_start|>user\n<Instruct>: Given a web search query" in text
    assert text.endswith(f"<Query>: {QUERY}\n<Document>: DOC<|im_end|>\n<|im_start|>assistant\n<think>\n\n</think>\n\n")


def test_missing_model_names_the_setting(tmp_path: Path) -> None:
    with pytest.raises(ModelLoadError, match="RAG_RERANKER_MODEL.*local folder"):
        Qwen3Reranker(str(tmp_path / "no-such-model"))


def test_shared_prefix_path_runs_and_agrees_with_plain_batches(reranker_path: str, monkeypatch) -> None:
    r = Qwen3Reranker(reranker_path, dtype=torch.float32, cache_size=0)
    calls: list[int] = []
    plain = r._score_batches
    monkeypatch.setattr(r, "_score_batches", lambda prompts: calls.append(len(prompts)) or plain(prompts))
    shared = r.score(QUERY, DOCS)
    assert calls == []  # the shared-prefix path did the work
    assert shared == pytest.approx(plain(r.encode(QUERY, DOCS)), abs=1e-5)


def test_scores_are_cached_per_instruction_query_and_passage(reranker_path: str, monkeypatch) -> None:
    r = Qwen3Reranker(reranker_path, dtype=torch.float32, cache_size=3)
    first = r.score(QUERY, DOCS[:3])
    monkeypatch.setattr(r, "_iter_shared_prefix", lambda prompts: pytest.fail("cached scores were recomputed"))
    monkeypatch.setattr(r, "_score_batches", lambda prompts: pytest.fail("cached scores were recomputed"))
    assert r.score(QUERY, DOCS[:3][::-1]) == first[::-1]
    monkeypatch.undo()
    other = r.score(QUERY, DOCS[:3], instruction="Another task")  # a new key: computed, and the LRU evicts
    assert other != first and len(r._scores) == 3


def test_int8_is_opt_in_and_close(reranker_path: str) -> None:
    exact = Qwen3Reranker(reranker_path, dtype=torch.float32).score(QUERY, DOCS)
    quant = Qwen3Reranker(reranker_path, dtype=torch.float32, quantize="int8").score(QUERY, DOCS)
    assert quant == pytest.approx(exact, abs=0.05)


def test_score_iter_yields_the_same_scores_one_by_one(reranker_path: str) -> None:
    r = Qwen3Reranker(reranker_path, dtype=torch.float32, cache_size=0)
    whole = r.score(QUERY, DOCS)
    steps = r.score_iter(QUERY, DOCS)
    first = next(steps)  # the first passage's score is ready before the rest have run
    assert first == pytest.approx(whole[0], abs=1e-6)
    assert [first, *steps] == pytest.approx(whole, abs=1e-6)
    twice = r.score(QUERY, [DOCS[1], DOCS[0], DOCS[1]])  # a passage given twice is scored once, in its places
    assert twice == pytest.approx([whole[1], whole[0], whole[1]], abs=1e-6)
