"""Keras vs TFLite parity on an evaluation split: top-k overlap and NDCG@k of both.

The TFLite side runs the flatbuffer in the ``ai_edge_litert`` interpreter one row at a time, as
the device does. Its ranking is the graph's ``top_ids`` in graph order with already-seen items
removed (the model's part of what the runtime serves, by :mod:`device_runtime.served_ranking`,
without the popularity fill: parity compares models); the Keras side ranks the full logits with
``device_runtime.metrics.rank_scores``. Both are scored by ``evaluate_ranked``.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from converters.tensorflow_env import load_tensorflow
from converters.tflite import serving_catalog_size
from converters.tflite_evaluation import graph_top_ids
from device_runtime.metrics import EVAL_DEPTH, evaluate_ranked, rank_scores, scoring_rows
from device_runtime.served_ranking import served_rankings

_tf, keras = load_tensorflow()


class ParityError(RuntimeError):
    """A TFLite model ranks too differently from its Keras model (overlap below the threshold)."""


@dataclass(frozen=True)
class ParityResult:
    """Keras vs TFLite agreement on ``users`` evaluation rows.

    ``top10_overlap``: mean over users of |Keras top-k ∩ TFLite top-k| / k (k = ``k``, 10 by
    default; seen items excluded on both sides). ``min_overlap``: the worst user's overlap.
    ``keras_metrics`` / ``tflite_metrics``: the full ``evaluate_ranked`` dicts.
    """

    top10_overlap: float
    keras_ndcg: float
    tflite_ndcg: float
    users: int
    k: int = 10
    min_overlap: float = 0.0
    keras_metrics: dict = field(default_factory=dict)
    tflite_metrics: dict = field(default_factory=dict)


def _keras_logits(model: keras.Model, histories: np.ndarray, batch_size: int = 256) -> np.ndarray:
    outputs = model.predict(histories, batch_size=batch_size, verbose=0)
    if isinstance(outputs, list | tuple):
        names = list(model.output_names)
        outputs = outputs[names.index("logits") if "logits" in names else 0]
    return np.asarray(outputs, dtype=np.float32)


def _keras_ranked(model: keras.Model, histories: np.ndarray, seen, catalog_size: int) -> np.ndarray:
    """The Keras model's top-``EVAL_DEPTH`` per row, scored and ranked a chunk of rows at a time
    (:func:`~device_runtime.metrics.scoring_rows`): never users x catalog logits at once."""
    step = scoring_rows(catalog_size)
    return np.concatenate([
        rank_scores(_keras_logits(model, histories[start : start + step]), seen[start : start + step],
                    depth=EVAL_DEPTH)
        for start in range(0, len(histories), step)
    ])


def check_parity(
    keras_serving_model: keras.Model,
    tflite_bytes: bytes,
    eval_set,
    catalog_size: int,
    k: int = 10,
) -> ParityResult:
    """Compare the Keras serving model and a TFLite flatbuffer on ``eval_set`` (an ``EvalSet``).

    The TFLite graph's top-K must be at least ``k``; users whose seen items push real
    recommendations past the graph's K get fewer TFLite items (counted as misses).
    """
    histories = np.asarray(eval_set.histories, dtype=np.int32)
    targets = np.asarray(eval_set.targets)
    if histories.ndim != 2 or len(histories) == 0 or len(targets) != len(histories) or len(eval_set.seen) != len(histories):
        raise ValueError(
            f"eval_set: expected histories [U >= 1, L], targets [U] and seen of length U, got "
            f"{histories.shape}, {targets.shape}, {len(eval_set.seen)}"
        )
    model_catalog = serving_catalog_size(keras_serving_model, histories.shape[1])
    if model_catalog != catalog_size:
        raise ValueError(f"catalog_size: the model scores {model_catalog} items, got catalog_size={catalog_size}")
    keras_ranked = _keras_ranked(keras_serving_model, histories, eval_set.seen, catalog_size)
    top_ids = graph_top_ids(tflite_bytes, eval_set)
    if top_ids.shape[1] < k:
        raise ValueError(f"k: the TFLite graph returns top-{top_ids.shape[1]}, fewer than k={k}")
    # the graph alone (no popularity fill): parity compares the two models, not the fill
    tflite_ranked = served_rankings(top_ids, eval_set.seen, (), top_ids.shape[1], catalog_size)

    overlaps = np.empty(len(histories), dtype=np.float64)
    for row in range(len(histories)):
        keras_top = {int(i) for i in keras_ranked[row, :k] if i >= 0}
        tflite_top = {int(i) for i in tflite_ranked[row, :k] if i >= 0}
        overlaps[row] = len(keras_top & tflite_top) / max(1, len(keras_top))
    keras_metrics = evaluate_ranked(keras_ranked, targets, catalog_size, k=k)
    tflite_metrics = evaluate_ranked(tflite_ranked, targets, catalog_size, k=k)
    return ParityResult(
        top10_overlap=float(overlaps.mean()),
        keras_ndcg=float(keras_metrics[f"ndcg@{k}"]),
        tflite_ndcg=float(tflite_metrics[f"ndcg@{k}"]),
        users=len(histories),
        k=k,
        min_overlap=float(overlaps.min()),
        keras_metrics=dict(keras_metrics),
        tflite_metrics=dict(tflite_metrics),
    )


def require_parity(result: ParityResult, threshold: float, *, variant: str = "int8") -> ParityResult:
    """Return ``result`` when its mean top-k overlap reaches ``threshold``, else raise ParityError."""
    if not 0.0 <= threshold <= 1.0:
        raise ValueError(f"parity threshold: expected a number in [0, 1], got {threshold!r}")
    if result.top10_overlap < threshold:
        raise ParityError(
            f"the {variant} TFLite model's top-{result.k} agrees with the Keras model on only "
            f"{result.top10_overlap:.3f} of items on average over {result.users} users (threshold "
            f"{threshold:.2f}); NDCG@{result.k} Keras {result.keras_ndcg:.4f} vs TFLite "
            f"{result.tflite_ndcg:.4f}. Fine-tune with QAT ([qat] enabled), calibrate on more "
            "representative histories ([convert] representative_samples), or lower --parity-threshold."
        )
    return result
