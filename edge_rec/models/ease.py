"""A linear item-item model: EASE, fitted in closed form with numpy and LAPACK (no TensorFlow).

EASE (Steck, "Embarrassingly Shallow Autoencoders for Sparse Data", WWW 2019) scores the next
item as a weighted sum over the items of the history: ``score(j) = sum_{i in history} S[i, j]``,
with ``S`` the ridge regression of the user-item matrix on itself under a zero diagonal, in
closed form: ``P = (X^T X + l2 I)^-1``, ``S[i, j] = -P[i, j] / P[j, j]``, ``S[j, j] = 0``.
It ignores order and is strong exactly where a sequential model is weak (sparse, short
histories); averaged with SASRec's logits it makes the classic ensemble teacher.

``S`` is returned in float16 (half the memory; its entries are small weights, and summed
scores are computed in float32). :class:`~edge_rec.models.blended_logits.BlendedLogits` adds
it to the teacher's logits.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

#: dtype of the stored item-item matrix.
ITEM_ITEM_DTYPE = np.float16

def item_item_fit_bytes(catalog_size: int) -> int:
    """Peak extra memory :func:`fit_item_item` needs for a catalog of ``catalog_size`` logits:
    one float32 C x C matrix (built from a sparse product, factorised and inverted in place)
    plus its float16 copy."""
    return catalog_size * catalog_size * (4 + np.dtype(ITEM_ITEM_DTYPE).itemsize)


def _gram(sequences: Sequence[np.ndarray], catalog_size: int) -> np.ndarray:
    """X^T X of the binary user-item matrix, float32 [C, C], through a sparse product (the only
    dense C x C array made is the result)."""
    from scipy import sparse

    rows = np.repeat(np.arange(len(sequences)), [len(s) for s in sequences])
    columns = np.concatenate(sequences) if len(sequences) else np.zeros(0, np.int64)
    users = sparse.csr_matrix((np.ones(rows.size, np.float32), (rows, columns)),
                              shape=(len(sequences), catalog_size))
    users.sum_duplicates()
    users.data[:] = 1.0  # a repeated item counts once
    return (users.T @ users).toarray()


def _mirror_lower(matrix: np.ndarray, block: int = 1024) -> None:
    """Copy the lower triangle of a square matrix onto its upper triangle, in place."""
    n = matrix.shape[0]
    for start in range(0, n, block):
        stop = min(n, start + block)
        matrix[start:stop, stop:] = matrix[stop:, start:stop].T
        square = matrix[start:stop, start:stop]
        upper = np.triu_indices(stop - start, 1)
        square[upper] = square.T[upper]


def fit_item_item(sequences: Sequence[np.ndarray], catalog_size: int, l2: float) -> np.ndarray:
    """The EASE item-item matrix ``S`` (float16 [C, C], zero diagonal) of ``sequences`` (each an
    int array of item indices; repeats count once). Rows and columns of indices that never occur
    (PAD, OOV) are zero. Memory: :func:`item_item_fit_bytes`; time: one Cholesky factorisation and
    inversion of a C x C matrix."""
    from scipy.linalg import lapack

    if l2 <= 0:
        raise ValueError(f"l2: expected > 0, got {l2}")
    gram = _gram(sequences, catalog_size)
    gram[np.diag_indices(catalog_size)] += np.float32(l2)
    # symmetric, so the matrix equals its transpose: hand LAPACK whichever of the two is
    # Fortran-ordered, and it factorises and inverts in place (no second C x C array)
    fortran = gram if gram.flags.f_contiguous else gram.T
    factor, info = lapack.spotrf(fortran, lower=1, clean=0, overwrite_a=1)
    if info != 0:
        raise np.linalg.LinAlgError(f"item-item fit: Cholesky failed (info={info}); raise l2")
    inverse, info = lapack.spotri(factor, lower=1, overwrite_c=1)
    if info != 0:
        raise np.linalg.LinAlgError(f"item-item fit: inversion failed (info={info})")
    precision = inverse  # only its lower triangle is filled
    _mirror_lower(precision)
    diagonal = np.diag(precision).copy()
    precision /= -diagonal[None, :]
    precision[np.diag_indices(catalog_size)] = 0.0
    present = np.zeros(catalog_size, bool)
    for sequence in sequences:
        present[sequence] = True
    precision[~present, :] = 0.0
    precision[:, ~present] = 0.0
    return precision.astype(ITEM_ITEM_DTYPE, order="C")


def history_scores(matrix: np.ndarray, histories: np.ndarray, chunk: int = 64) -> np.ndarray:
    """Item-item scores float32[N, C] of whole histories int[N, L] (the sum of their rows of
    ``matrix``; PAD rows are zero): what the blended teacher adds at the last position."""
    histories = np.asarray(histories)
    out = np.empty((histories.shape[0], matrix.shape[1]), np.float32)
    for start in range(0, histories.shape[0], chunk):
        out[start : start + chunk] = matrix[histories[start : start + chunk]].sum(axis=1, dtype=np.float32)
    return out
