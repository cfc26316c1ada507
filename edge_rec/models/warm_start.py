"""Parameter transfer: start the student's item embeddings from the teacher's, reduced by PCA."""

from __future__ import annotations

import numpy as np

from edge_rec.keras_shim import keras
from edge_rec.models.output_head import item_embedding_tables


def pca_project(table: np.ndarray, width: int) -> np.ndarray:
    """Project the rows of ``table`` [C, H] onto its top ``width`` principal components -> [C, width].

    Rows are centred first; when ``width`` exceeds the rank the extra columns are zero.
    """
    table = np.asarray(table, dtype=np.float64)
    centred = table - table.mean(axis=0, keepdims=True)
    _, _, vt = np.linalg.svd(centred, full_matrices=False)
    components = vt[:width].T
    projected = centred @ components
    if projected.shape[1] < width:
        projected = np.pad(projected, ((0, 0), (0, width - projected.shape[1])))
    return projected


def warm_start_student(student: keras.Model, teacher: keras.Model, *, scale: float = 0.05) -> None:
    """Initialise ``student``'s ``item_embedding`` from ``teacher``'s, by PCA to the student's width
    (an averaged teacher's members' tables side by side, [C, sum of their widths]).

    The projection is rescaled so its standard deviation is ``scale`` (a usual embedding init),
    keeping the teacher's geometry (which items are close) without its magnitude.
    Raises ValueError when the two models do not share the same catalog.
    """
    source = np.concatenate([table.numpy() for table in item_embedding_tables(teacher)], axis=1)
    target_layer = student.get_layer("item_embedding")
    (target,) = target_layer.get_weights()
    if source.shape[0] != target.shape[0]:
        raise ValueError(
            f"warm start: teacher has {source.shape[0]} items, student {target.shape[0]}; "
            "train both on the same vocabulary"
        )
    projected = pca_project(source, target.shape[1])
    std = projected.std()
    if std > 0:
        projected = projected * (scale / std)
    target_layer.set_weights([projected.astype(target.dtype)])
