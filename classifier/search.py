"""Nearest neighbours over cached image embeddings (docs/architecture.md#search).

numpy for exact search; faiss (imported lazily) for the approximate index over large caches
and for near-duplicate scans. No Django, no torch: a search worker keeps `Vectors` in memory
and calls these functions."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass
class Vectors:
    """One embedding cache in memory: item ids (int64, sorted) and their L2-normalised image
    embeddings as float32 rows (C-contiguous), row i belonging to item_ids[i]."""

    item_ids: np.ndarray
    matrix: np.ndarray

    def __len__(self) -> int:
        return len(self.item_ids)

    def row_of(self, item_id: int) -> int | None:
        i = int(np.searchsorted(self.item_ids, item_id))
        return i if i < len(self.item_ids) and self.item_ids[i] == item_id else None


def normalise(vectors: np.ndarray) -> np.ndarray:
    """float32 rows of unit length (a zero row stays zero)."""
    out = np.asarray(vectors, np.float32)
    norms = np.linalg.norm(out, axis=-1, keepdims=True)
    return np.divide(out, norms, out=np.zeros_like(out), where=norms > 0)


def exact_search(matrix: np.ndarray, query: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Top-k rows by cosine similarity to one normalised query vector: (scores, rows), best
    first. One float32 matrix-vector product (BLAS) and a partial sort."""
    scores = matrix @ np.asarray(query, np.float32).reshape(-1)
    k = min(k, len(scores))
    if k <= 0:
        return np.zeros(0, np.float32), np.zeros(0, np.int64)
    top = np.argpartition(-scores, k - 1)[:k]
    top = top[np.lexsort((top, -scores[top]))]  # score descending, then row: deterministic
    return scores[top], top.astype(np.int64)
