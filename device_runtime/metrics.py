"""Ranking metrics for next-item recommendation, in numpy only.

Every artifact of the pipeline (Keras models, TFLite variants, the popularity baseline, the
device benchmark) is judged by the same two steps:

1. :func:`rank_scores` turns a score matrix ``float[N, C]`` into the top ``depth`` item indices
   per row, ranking the *whole* catalog with padding (0), out-of-vocabulary (1) and every item
   the user has already seen excluded.
2. :func:`evaluate_ranked` turns those ranked lists and one target per row into HR@K, NDCG@K,
   MRR and catalog coverage@K.

Tie-breaking is deterministic: among equal scores the lower item index ranks first. Because
vocabularies index items by descending popularity, a tie therefore goes to the more popular
item. A score of ``-inf`` is a real (lowest possible) score; only excluded items are dropped.
NaN scores are refused.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from device_runtime.bundle_schema import OOV_INDEX, PAD_INDEX, real_item_count

#: Depth of the ranked lists; MRR is exact for targets inside the top ``EVAL_DEPTH``.
EVAL_DEPTH = 100

#: Indices that are never recommended (padding and out-of-vocabulary).
_NEVER_RANKED = (PAD_INDEX, OOV_INDEX)

#: Rows ranked per block (at most), and the budget of float64 cells one block may hold, so memory
#: stays bounded for large score matrices and large catalogs alike (~128 MiB per working copy).
_BLOCK_ROWS = 512
_BLOCK_CELLS = 1 << 24


#: Scores a caller may hold at once when it scores a model chunk by chunk before ranking
#: (float32: 256 MiB), so evaluation memory does not grow with users x catalog.
_SCORE_CELLS = 1 << 26


def scoring_rows(catalog: int) -> int:
    """Rows of model scores to compute and rank at a time for a ``catalog``-item model (16-2048)."""
    return max(16, min(2048, _SCORE_CELLS // max(1, catalog)))


def block_rows(catalog: int) -> int:
    """Rows of a ``[rows, catalog]`` block that fit the cell budget (between 8 and 512)."""
    return max(8, min(_BLOCK_ROWS, _BLOCK_CELLS // max(1, catalog)))


def _excluded_mask(rows: int, catalog: int, seen: Sequence[np.ndarray], start: int) -> np.ndarray:
    """Boolean ``[rows, catalog]``: True where an item must not be ranked for that row."""
    mask = np.zeros((rows, catalog), dtype=bool)
    mask[:, list(_NEVER_RANKED[: min(catalog, 2)])] = True
    block_seen = [np.asarray(seen[start + r], dtype=np.int64).ravel() for r in range(rows)]
    lengths = np.fromiter((s.size for s in block_seen), dtype=np.int64, count=rows)
    if lengths.sum():
        cols = np.concatenate(block_seen)
        if cols.min() < 0 or cols.max() >= catalog:
            bad = cols[(cols < 0) | (cols >= catalog)][0]
            raise ValueError(
                f"seen item index {int(bad)} is outside the catalog [0, {catalog}); "
                "seen must hold item indices of the same vocabulary as the scores"
            )
        mask[np.repeat(np.arange(rows), lengths), cols] = True
    return mask


def _rank_block(scores: np.ndarray, excluded: np.ndarray, depth: int) -> np.ndarray:
    """Top-``depth`` indices of one block, exact ties broken by lower index; -1 fills."""
    rows, catalog = scores.shape
    # Order key: excluded items get NaN-free -inf and are tracked by the mask; real -inf
    # scores are lifted to the lowest finite value so they still outrank excluded items.
    work = scores.astype(np.float64, copy=True)
    work[np.isneginf(work)] = np.finfo(np.float64).min
    work[excluded] = -np.inf
    d = min(depth, catalog)
    # d-th largest value per row (the cut), then take everything above it plus the first
    # (lowest-index) items equal to it until exactly d are chosen.
    cut = -np.partition(-work, d - 1, axis=1)[:, d - 1]
    above = work > cut[:, None]
    equal = work == cut[:, None]
    need = d - above.sum(axis=1)
    take_equal = equal & (np.cumsum(equal, axis=1, dtype=np.int32) <= need[:, None])
    chosen = above | take_equal
    cols = np.nonzero(chosen)[1].reshape(rows, d)  # ascending index within each row
    chosen_scores = np.take_along_axis(work, cols, axis=1)
    order = np.argsort(-chosen_scores, axis=1, kind="stable")  # stable => lower index first
    ranked = np.take_along_axis(cols, order, axis=1)
    ranked_excluded = np.take_along_axis(excluded, ranked, axis=1)
    ranked = np.where(ranked_excluded, -1, ranked).astype(np.int32)
    if d < depth:
        ranked = np.concatenate([ranked, np.full((rows, depth - d), -1, np.int32)], axis=1)
    return ranked


def rank_scores(
    scores: np.ndarray, seen: Sequence[np.ndarray], depth: int = EVAL_DEPTH
) -> np.ndarray:
    """Rank the full catalog per row and return the top ``depth`` item indices, ``int32[N, depth]``.

    Padding (0), out-of-vocabulary (1) and the items of ``seen[i]`` are never ranked for row
    ``i``. Ties go to the lower index. When fewer than ``depth`` items remain, the tail is -1.
    Raises ``ValueError`` for NaN scores, a ``seen`` of the wrong length or out-of-range indices.
    """
    scores = np.asarray(scores)
    if scores.ndim != 2:
        raise ValueError(f"scores must be 2-D [N, catalog_size], got shape {scores.shape}")
    if depth < 1:
        raise ValueError(f"depth must be >= 1, got {depth}")
    rows, catalog = scores.shape
    if len(seen) != rows:
        raise ValueError(f"seen has {len(seen)} rows but scores has {rows}")
    if np.isnan(scores).any():
        raise ValueError("scores contain NaN; the model produced invalid outputs")
    out = np.empty((rows, depth), dtype=np.int32)
    step = block_rows(catalog)
    for start in range(0, rows, step):
        stop = min(rows, start + step)
        excluded = _excluded_mask(stop - start, catalog, seen, start)
        out[start:stop] = _rank_block(scores[start:stop], excluded, depth)
    return out


def target_positions(scores: np.ndarray, targets: np.ndarray, seen: Sequence[np.ndarray]) -> np.ndarray:
    """Each row's 0-based position of its target in the ranking :func:`rank_scores` would make
    (same exclusions, ties to the lower index), int64[N]; ``catalog_size`` when the target is
    excluded (never ranked). One comparison pass per row instead of a partial sort: for
    per-user gains at any depth (``1 / log2(position + 2)`` below ``k`` is NDCG@k) when many
    score matrices must be judged. Scores must be finite."""
    scores = np.asarray(scores)
    targets = np.asarray(targets).ravel()
    rows, catalog = scores.shape
    if len(seen) != rows or targets.shape[0] != rows:
        raise ValueError(f"scores has {rows} rows, seen {len(seen)} and targets {targets.shape[0]}")
    out = np.empty(rows, dtype=np.int64)
    columns = np.arange(catalog)[None, :]
    step = block_rows(catalog)
    for start in range(0, rows, step):
        stop = min(rows, start + step)
        block, wanted = scores[start:stop], targets[start:stop, None]
        excluded = _excluded_mask(stop - start, catalog, seen, start)
        target = np.take_along_axis(block, wanted, axis=1)
        ahead = (block > target) | ((block == target) & (columns < wanted))
        position = np.count_nonzero(ahead & ~excluded, axis=1)
        position[np.take_along_axis(excluded, wanted, axis=1)[:, 0]] = catalog
        out[start:stop] = position
    return out


def evaluate_ranked(
    ranked: np.ndarray, targets: np.ndarray, catalog_size: int, k: int = 10
) -> dict[str, float | int]:
    """HR@k, NDCG@k, MRR and coverage@k of ranked lists against one target per row.

    Returns ``{"hr@k", "ndcg@k", "mrr", "coverage@k", "users"}`` (keys use the given ``k``).
    With the target at 0-based position ``p``: HR@k counts ``p < k``; NDCG@k adds
    ``1 / log2(p + 2)`` when ``p < k`` (single target, so the ideal DCG is 1); MRR adds
    ``1 / (p + 1)`` when the target is anywhere in the list (exact within the list depth).
    coverage@k = distinct real items (index >= 2) in any row's top k / ``(catalog_size - 2)``.
    """
    ranked = np.asarray(ranked)
    targets = np.asarray(targets).ravel()
    if ranked.ndim != 2:
        raise ValueError(f"ranked must be 2-D [N, depth], got shape {ranked.shape}")
    rows, depth = ranked.shape
    if rows == 0:
        raise ValueError("cannot evaluate zero rows")
    if targets.shape[0] != rows:
        raise ValueError(f"targets has {targets.shape[0]} rows but ranked has {rows}")
    if not 1 <= k <= depth:
        raise ValueError(f"k must be in [1, {depth}] (the ranked depth), got {k}")
    if catalog_size < 3:
        raise ValueError(f"catalog_size must be >= 3 (PAD, OOV and one item), got {catalog_size}")
    gains = per_user_gains(ranked, targets, k=k)
    hr = float(gains[f"hr@{k}"].mean())
    ndcg = float(gains[f"ndcg@{k}"].mean())
    mrr = float(gains["mrr"].mean())
    top_k = ranked[:, :k]
    distinct = np.unique(top_k[top_k >= 2])
    coverage = float(distinct.size / real_item_count(catalog_size))
    return {
        f"hr@{k}": hr,
        f"ndcg@{k}": ndcg,
        "mrr": mrr,
        f"coverage@{k}": coverage,
        "users": int(rows),
    }


def ndcg_at_positions(positions: np.ndarray, k: int = 10) -> np.ndarray:
    """NDCG@k of single-target rankings from each target's 0-based position, float64[N]:
    ``1 / log2(position + 2)`` below ``k``, else 0 (the ideal DCG of one target is 1)."""
    positions = np.asarray(positions)
    return np.where(positions < k, 1.0 / np.log2(positions + 2.0), 0.0)


def per_user_gains(ranked: np.ndarray, targets: np.ndarray, k: int = 10) -> dict[str, np.ndarray]:
    """Each row's HR@k, NDCG@k and reciprocal rank, float64[N] each (their means are the
    metrics of :func:`evaluate_ranked`); the paired comparisons of two models use these."""
    ranked = np.asarray(ranked)
    targets = np.asarray(targets).ravel()
    depth = ranked.shape[1]
    hits = ranked == targets[:, None]
    position = np.where(hits.any(axis=1), hits.argmax(axis=1), depth)
    return gains_at_positions(position, k=k, depth=depth)


def gains_at_positions(positions: np.ndarray, k: int = 10, depth: int = EVAL_DEPTH) -> dict[str, np.ndarray]:
    """:func:`per_user_gains` from each target's 0-based position (:func:`target_positions`)
    instead of ranked lists: a target at ``depth`` or beyond counts as not in the list (reciprocal
    rank 0), so the means equal :func:`evaluate_ranked`'s on lists ``depth`` deep."""
    positions = np.asarray(positions)
    return {
        f"hr@{k}": (positions < k).astype(np.float64),
        f"ndcg@{k}": ndcg_at_positions(positions, k),
        "mrr": np.where(positions < depth, 1.0 / (positions + 1.0), 0.0),
    }
