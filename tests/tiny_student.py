"""A tiny real student trained on clustered histories, shared by the compression/conversion tests.

Items 2..C-1 form clusters; a history holds items of one cluster and its target is a popular
item of the same cluster, so a trained model's top-10 is well separated from the rest.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from edge_rec.config import StudentConfig
from edge_rec.keras_shim import keras, set_global_seed
from edge_rec.models import build_student

CATALOG = 42  # PAD, OOV and 40 items in 4 clusters of 10
HISTORY = 6
CLUSTERS = 4
STUDENT_CFG = StudentConfig(embedding_dim=8, hidden=(16,), pooling="position", dropout=0.0)


@dataclass(frozen=True)
class TinyEvalSet:
    """Same fields as ``edge_rec.data.EvalSet``."""

    histories: np.ndarray
    targets: np.ndarray
    seen: list


def clustered_histories(users: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """``(histories int32[users, L], targets int32[users])``, left-padded, one cluster per row."""
    rng = np.random.default_rng(seed)
    size = (CATALOG - 2) // CLUSTERS
    popularity = 1.0 / np.arange(1, size + 1)
    popularity /= popularity.sum()
    histories = np.zeros((users, HISTORY), np.int32)
    targets = np.zeros(users, np.int32)
    for row in range(users):
        first = 2 + size * rng.integers(CLUSTERS)
        length = rng.integers(2, HISTORY + 1)
        histories[row, HISTORY - length :] = first + rng.choice(size, size=length, p=popularity)
        targets[row] = first + rng.choice(size, p=popularity)
    return histories, targets


def eval_set(users: int = 40, seed: int = 1) -> TinyEvalSet:
    """Held-out clustered rows; ``seen`` = the non-padding items of each history."""
    histories, targets = clustered_histories(users, seed)
    return TinyEvalSet(histories, targets, [row[row > 0] for row in histories])


def build_serving_student(seed: int = 0, cfg: StudentConfig = STUDENT_CFG) -> keras.Model:
    """An untrained serving-mode student (real ``build_student``)."""
    set_global_seed(seed)
    return build_student(cfg, CATALOG, HISTORY, sequence=False)


def fit_last_position(model: keras.Model, epochs: int, *, seed: int = 0, callbacks=()) -> keras.Model:
    """Fit a serving-mode (or QAT / pruning-wrapped) student on clustered next-item targets."""
    set_global_seed(seed)
    histories, targets = clustered_histories(512, seed)
    model.compile(
        keras.optimizers.Adam(0.02),
        loss=[keras.losses.SparseCategoricalCrossentropy(from_logits=True), None],
    )
    model.fit(histories, targets, epochs=epochs, batch_size=64, verbose=0, callbacks=list(callbacks))
    return model


def trained_serving_student(seed: int = 0, epochs: int = 4, cfg: StudentConfig = STUDENT_CFG) -> keras.Model:
    """A serving-mode student whose top-10 per cluster is learned."""
    return fit_last_position(build_serving_student(seed, cfg), epochs, seed=seed)
