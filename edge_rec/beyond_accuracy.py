"""Beyond accuracy: how popular and how varied the recommended lists are.

- **popularity rank@k**: the mean, over users, of the mean training-popularity rank of their
  top-k items (1 = the most popular item). Low values mean the model mostly echoes the head of
  the catalog; compare with the popularity baseline's ``(k + 1) / 2``.
- **intra-list diversity@k** (ILD): the mean, over users, of ``1 - cosine`` over all pairs of
  their top-k items. Items are described by who consumed them: a fixed random projection (seeded)
  of each item's column of the user-item matrix, so two items bought by the same users are close
  and ILD needs no item metadata (real logs rarely have any).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

#: Width of the random projection that describes items for ILD.
SKETCH_DIM = 64


def popularity_ranks(popularity: np.ndarray) -> np.ndarray:
    """float64[C]: each index's rank by training count (1 = most popular; ties by lower index)."""
    order = np.argsort(-np.asarray(popularity, dtype=np.float64), kind="stable")
    ranks = np.empty(order.size, dtype=np.float64)
    ranks[order] = np.arange(1, order.size + 1)
    return ranks


def item_sketches(train_sequences: Sequence[np.ndarray], catalog_size: int, *, seed: int = 0) -> np.ndarray:
    """float32[C, SKETCH_DIM] unit rows: each item's users, randomly projected (rows of zeros
    for items nobody consumed)."""
    rng = np.random.default_rng(seed)
    user_vectors = rng.standard_normal((len(train_sequences), SKETCH_DIM)).astype(np.float32)
    sketches = np.zeros((catalog_size, SKETCH_DIM), dtype=np.float32)
    distinct = [np.unique(s) for s in train_sequences]
    if any(d.size for d in distinct):
        owners = np.repeat(np.arange(len(distinct)), [d.size for d in distinct])
        np.add.at(sketches, np.concatenate(distinct), user_vectors[owners])
    norms = np.linalg.norm(sketches, axis=1, keepdims=True)
    return np.divide(sketches, norms, out=np.zeros_like(sketches), where=norms > 0)


def popularity_rank_at_k(ranked: np.ndarray, ranks: np.ndarray, k: int = 10) -> float:
    """Mean popularity rank of the top-k items (padding -1 entries ignored)."""
    top = np.asarray(ranked)[:, :k]
    valid = top >= 0
    values = np.where(valid, ranks[np.clip(top, 0, None)], 0.0)
    per_user = values.sum(axis=1) / np.maximum(valid.sum(axis=1), 1)
    return float(per_user[valid.any(axis=1)].mean()) if valid.any() else 0.0


def intra_list_diversity(ranked: np.ndarray, sketches: np.ndarray, k: int = 10) -> float:
    """Mean over users of ``1 - mean pairwise cosine`` of their top-k items (lists of >= 2)."""
    top = np.asarray(ranked)[:, :k]
    valid = top >= 0
    vectors = sketches[np.clip(top, 0, None)] * valid[..., None]
    sums = vectors.sum(axis=1)
    counts = valid.sum(axis=1)
    # sum over pairs i != j of cos = |sum v|^2 - sum |v|^2 (unit rows)
    self_dot = (vectors * vectors).sum(axis=(1, 2))
    pair_sum = (sums * sums).sum(axis=1) - self_dot
    pairs = counts * (counts - 1)
    rows = pairs > 0
    if not rows.any():
        return 0.0
    return float((1.0 - pair_sum[rows] / pairs[rows]).mean())
