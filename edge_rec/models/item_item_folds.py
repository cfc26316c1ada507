"""Cross-fitted item-item models: soft labels on a training sequence from an EASE fit that never
saw it.

EASE's closed form fitted on every training user has seen each user's own co-occurrences, so on
that user's training sequence it points at the items the user went on to consume: on the shared
real log, predicting each user's last training item from the items before it, the full fit
scores NDCG@10 0.308 in sample against 0.06 on held-out targets. Distilled from, that
memorisation is what the student learns. Cross-fitting removes it: the training users are cut
into ``folds`` folds and fold ``k``'s matrix is fitted on every other fold, so the soft labels of
a sequence in fold ``k`` come from a model fitted without it (as out-of-fold predictions in
stacking). Evaluation (validation, test, serving) keeps the full fit: its targets were never in
any fit.

The fold of a training row is a function of the row itself (:func:`row_folds`: the sum of its
item ids modulo ``folds``), so the teacher can find it inside a training step from the ids it is
given, with no user index threaded through the pipeline; the rows are exactly those of
:func:`~edge_rec.distill.training_input.sequence_batches` (one per training window,
:meth:`~edge_rec.data.split.LeaveLastOutSplit.training_windows`, the same every epoch). The folds
are fitted on windows too, so a window's soft labels come from fits without it; a long user's
other windows may be in them, but they hold other items (windows overlap by one item).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from edge_rec.data.sequences import left_pad
from edge_rec.keras_shim import tf
from edge_rec.models.ease import ITEM_ITEM_DTYPE, fit_item_item


def row_folds(ids, folds: int) -> tf.Tensor:
    """Fold int64[B] of each training row int[B, L] (inputs, left-padded with PAD = 0): the sum
    of the row's ids modulo ``folds``. Accepts a tensor or a numpy array (the one rule both the
    fit, in numpy, and the teacher's training step, in the graph, use)."""
    if folds < 2:
        raise ValueError(f"folds: expected >= 2, got {folds}")
    return tf.math.floormod(tf.reduce_sum(tf.cast(ids, tf.int64), axis=1), folds)


def training_row_folds(windows: Sequence[np.ndarray], history_length: int, folds: int) -> np.ndarray:
    """Fold int64[W] of each training window's row (``window[:-1]``, its last ``history_length``
    items: the inputs :func:`~edge_rec.distill.training_input.sequence_batches` feeds)."""
    inputs = left_pad([np.asarray(s)[:-1] for s in windows], history_length)
    return row_folds(inputs, folds).numpy()


def out_of_fold_bytes(catalog_size: int, folds: int) -> int:
    """Memory the ``folds`` out-of-fold matrices hold while distilling (float16, C x C each)."""
    return folds * catalog_size * catalog_size * np.dtype(ITEM_ITEM_DTYPE).itemsize


def fit_out_of_fold(windows: Sequence[np.ndarray], catalog_size: int, l2: float, *,
                    history_length: int, folds: int) -> np.ndarray:
    """The out-of-fold EASE matrices float16[folds, C, C]: entry ``k`` is
    :func:`~edge_rec.models.ease.fit_item_item` of the training windows not in fold ``k``
    (:func:`training_row_folds`), so on (folds - 1) / folds of them. Time: ``folds`` fits;
    memory: the result plus one fit."""
    assignment = training_row_folds(windows, history_length, folds)
    out = np.empty((folds, catalog_size, catalog_size), ITEM_ITEM_DTYPE)
    for k in range(folds):
        out[k] = fit_item_item([s for s, f in zip(windows, assignment, strict=True) if f != k],
                               catalog_size, l2)
    return out
