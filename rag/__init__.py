"""Two-stage retrieval (Qwen3 embedding + Milvus, then Qwen3 reranking) and grounded answers.

Importing the package is cheap: torch, transformers and pymilvus load only when a model or the store is used.
"""

__version__ = "0.1.0"
