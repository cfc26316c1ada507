"""What a bundle serves for one history: the rule shared by the runtime and every evaluation of it.

Given the graph's ``top_ids`` (best first), the served list of ``k`` items is:

1. the graph's ids in graph order, minus banned items (PAD, OOV, everything the user has seen,
   anything the caller excludes) and ids outside the catalog, up to ``k``;
2. when fewer than ``k`` remain, the rest from the popularity fill order (the bundle's popularity
   list, then every unlisted real item in index order), minus banned and already chosen items.

A history without any known item (empty, or only out-of-vocabulary ids) skips the graph: the
whole list comes from popularity (cold start). ``Recommender.recommend`` serves by this rule, and
the build report (``converters.tflite_evaluation``) and ``edge-rec benchmark --eval-data`` score
rankings made by it, so the numbers they print are those of what the device serves.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Sequence
from itertools import compress, count, filterfalse, islice
from operator import not_

import numpy as np

from device_runtime.bundle_schema import FIRST_ITEM_INDEX, OOV_INDEX, PAD_INDEX, real_item_count
from device_runtime.metrics import EVAL_DEPTH

#: Cut-off of the quality metrics (HR@K, NDCG@K, coverage@K) of the report and the benchmark.
EVAL_K = 10


def popularity_fill_indices(popularity: Iterable[int], catalog_size: int) -> np.ndarray:
    """The order popularity fill draws from, as ``int64[n]``: ``popularity`` (a bundle's list,
    most popular first), then every real item index (2..C-1) it does not list, in index order."""
    listed = np.fromiter(popularity, dtype=np.int64)
    unlisted = np.ones(catalog_size, dtype=bool)
    unlisted[:FIRST_ITEM_INDEX] = False
    unlisted[listed[(listed >= 0) & (listed < catalog_size)]] = False
    return np.concatenate([listed, np.flatnonzero(unlisted)])


def popularity_fill_order(popularity: Iterable[int], catalog_size: int) -> list[int]:
    """:func:`popularity_fill_indices` as a list of Python ints."""
    return popularity_fill_indices(popularity, catalog_size).tolist()


def graph_positions(ids: Sequence[int], banned: Collection[int], k: int, catalog_size: int) -> list[int]:
    """Step 1 of the rule: positions in the graph's ``ids`` (best first) of the first (up to) ``k``
    ids that are in the catalog, not banned and not repeated. A TopK's ids are distinct and in
    range, so the common path is C-level builtins whose work grows with ``k`` and the banned
    count, never with K (the runtime's hot path); anything else takes the checked Python loop."""
    positions = list(islice(compress(count(), map(not_, map(banned.__contains__, ids))), k))
    picked = [ids[p] for p in positions]
    if not picked or (min(picked) >= 0 and max(picked) < catalog_size and len(set(picked)) == len(picked)):
        return positions
    positions, taken = [], set(banned)
    for position, index in enumerate(ids):
        if len(positions) == k:
            break
        if 0 <= index < catalog_size and index not in taken:
            taken.add(index)
            positions.append(position)
    return positions


def popularity_fill(fill_order: Iterable[int], taken: Collection[int], count_: int) -> list[int]:
    """Step 2 of the rule: the first ``count_`` items of ``fill_order`` not in ``taken`` (the
    banned items and those the graph already gave)."""
    return list(islice(filterfalse(taken.__contains__, fill_order), count_))


def served_items(graph_ids: Iterable[int], banned: Collection[int], fill_order: Iterable[int], k: int,
                 catalog_size: int) -> tuple[list[int], int]:
    """``(items, from_model)``: the ``k`` (or fewer, when the catalog runs out) item indices served,
    and how many of them came from the graph (the rest came from ``fill_order``).

    ``graph_ids`` are the graph's top ids (pass ``()`` for a cold start); ``banned`` never appear
    (PAD and OOV are always banned); ids outside ``0..catalog_size-1`` are skipped.
    """
    taken = {PAD_INDEX, OOV_INDEX, *banned}
    ids = [int(i) for i in graph_ids]
    chosen = [ids[p] for p in graph_positions(ids, taken, k, catalog_size)]
    taken.update(chosen)
    return chosen + popularity_fill(fill_order, taken, k - len(chosen)), len(chosen)


def has_known_item(history: Iterable[int]) -> bool:
    """True when an index-space history holds a real item, i.e. the graph is asked at all."""
    return any(int(i) >= FIRST_ITEM_INDEX for i in history)


def served_rankings(top_ids: np.ndarray, seen: Sequence[Sequence[int]], fill_order: Sequence[int],
                    depth: int, catalog_size: int) -> np.ndarray:
    """:func:`served_items` for every row: ``int32[N, depth]``, -1 where the catalog ran out.

    ``top_ids[i]`` is the graph's answer for row ``i``, ``seen[i]`` the user's whole history
    (item indices; all of it is excluded, as ``recommend(..., exclude_seen=True)`` does). Pass an
    empty ``fill_order`` to rank by the graph alone (parity compares models, not fills).
    """
    top_ids = np.asarray(top_ids)
    if top_ids.ndim != 2 or len(top_ids) != len(seen):
        raise ValueError(f"top_ids must be [N, K] with N = len(seen) = {len(seen)}, got shape {top_ids.shape}")
    ranked = np.full((len(top_ids), depth), -1, dtype=np.int32)
    for row, (ids, seen_row) in enumerate(zip(top_ids.tolist(), seen)):
        seen_row = [int(i) for i in seen_row]
        graph = ids if has_known_item(seen_row) else ()
        items, _ = served_items(graph, seen_row, fill_order, depth, catalog_size)
        ranked[row, : len(items)] = items
    return ranked


def evaluation_depth(top_k: int, catalog_size: int) -> int:
    """How many items an evaluation asks for per user: at least :data:`EVAL_K`, the graph's top-K
    up to :data:`~device_runtime.metrics.EVAL_DEPTH`, never more than the real items."""
    return min(max(EVAL_K, min(top_k, EVAL_DEPTH)), real_item_count(catalog_size))
