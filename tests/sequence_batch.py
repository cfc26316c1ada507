"""A small batch of next-item training data, shared by the distillation tests."""

from __future__ import annotations

import numpy as np


def padded_batch(catalog: int, length: int, rows: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """``(inputs, targets)`` int32[rows, length] of random items 2..catalog-1, row ``r`` left-padded
    by ``r % 4`` zeros; targets are the inputs shifted by one (0 where the input is padding)."""
    rng = np.random.default_rng(seed)
    seq = rng.integers(2, catalog, size=(rows, length + 1)).astype(np.int32)
    for r in range(rows):
        seq[r, : r % 4] = 0
    return seq[:, :-1].copy(), seq[:, 1:].copy()
