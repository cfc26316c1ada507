"""Ranking quality of a TFLite model, measured by running it in the interpreter.

Every TFLite variant is judged this way (never by assuming it equals its Keras model): each
evaluation row goes through the flatbuffer one at a time, as on the device, the graph's
``top_ids`` minus already-seen items form the ranking, and ``device_runtime.metrics`` scores it.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from converters.tflite import run_tflite
from device_runtime.metrics import evaluate_ranked


def rank_graph_top_ids(top_ids: np.ndarray, seen: Sequence[np.ndarray], depth: int) -> np.ndarray:
    """The graph's top ids per row in graph order minus seen items, -1-padded to ``depth``."""
    ranked = np.full((len(top_ids), depth), -1, dtype=np.int32)
    for row, (ids, seen_row) in enumerate(zip(top_ids, seen, strict=True)):
        kept = ids[~np.isin(ids, np.asarray(seen_row))][:depth]
        ranked[row, : len(kept)] = kept
    return ranked


def tflite_rankings(tflite_bytes: bytes, eval_set) -> np.ndarray:
    """Ranked item indices per row of ``eval_set`` (an ``EvalSet``) from the TFLite graph's top-K."""
    histories = np.asarray(eval_set.histories, dtype=np.int32)
    top_ids, _scores = run_tflite(tflite_bytes, histories)
    return rank_graph_top_ids(top_ids, eval_set.seen, depth=top_ids.shape[1])


def evaluate_tflite(tflite_bytes: bytes, eval_set, catalog_size: int, k: int = 10) -> dict[str, float]:
    """HR@k, NDCG@k, MRR (over the graph's top-K) and coverage@k of a TFLite model on ``eval_set``."""
    ranked = tflite_rankings(tflite_bytes, eval_set)
    if ranked.shape[1] < k:
        raise ValueError(f"k: the TFLite graph returns top-{ranked.shape[1]}, fewer than k={k}")
    return evaluate_ranked(ranked, np.asarray(eval_set.targets), catalog_size, k=k)
