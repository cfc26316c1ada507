"""Ranking quality of a TFLite model, measured by running it in the interpreter as the device does.

Every TFLite variant is judged this way (never by assuming it equals its Keras model): each
evaluation row goes through the flatbuffer one at a time, the served list is built by the
runtime's own rule (:mod:`device_runtime.served_ranking`: the graph's ``top_ids`` minus seen
items, filled from the popularity order), and ``device_runtime.metrics`` scores it. The numbers
therefore equal those of ``edge-rec benchmark --eval-data`` on a bundle of the same model.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from converters.tflite import run_tflite
from device_runtime.metrics import evaluate_ranked
from device_runtime.served_ranking import (
    EVAL_K,
    evaluation_depth,
    popularity_fill_order,
    served_rankings,
)


def graph_top_ids(tflite_bytes: bytes, eval_set) -> np.ndarray:
    """The graph's ``top_ids`` int32[N, K] for every row of ``eval_set`` (an ``EvalSet``)."""
    top_ids, _scores = run_tflite(tflite_bytes, np.asarray(eval_set.histories, dtype=np.int32))
    return top_ids


def tflite_rankings(tflite_bytes: bytes, eval_set, catalog_size: int,
                    popularity_order: Sequence[int] = ()) -> np.ndarray:
    """Served ranked item indices per row of ``eval_set``, to :func:`evaluation_depth`.

    ``popularity_order`` is the bundle's cold-start order (``split.popularity_order()``); an empty
    one ranks by the graph alone (rows may then end in -1).
    """
    top_ids = graph_top_ids(tflite_bytes, eval_set)
    depth = evaluation_depth(top_ids.shape[1], catalog_size)
    fill = popularity_fill_order(popularity_order, catalog_size) if len(popularity_order) else ()
    return served_rankings(top_ids, eval_set.seen, fill, depth, catalog_size)


def evaluate_tflite(tflite_bytes: bytes, eval_set, catalog_size: int, *, popularity_order: Sequence[int],
                    k: int = EVAL_K) -> dict[str, float]:
    """HR@k, NDCG@k, MRR and coverage@k of what a bundle of this model serves on ``eval_set``.

    ``popularity_order``: the order the bundle carries (``split.popularity_order()``), used to
    fill a list the graph's top-K cannot fill after seen items are removed.
    """
    ranked = tflite_rankings(tflite_bytes, eval_set, catalog_size, popularity_order)
    if ranked.shape[1] < k:
        raise ValueError(f"k: the evaluation ranks {ranked.shape[1]} items per user, fewer than k={k}")
    return evaluate_ranked(ranked, np.asarray(eval_set.targets), catalog_size, k=k)
