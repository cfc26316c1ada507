"""Low-rank factorization of the student's largest Dense layer (hidden x catalog) by truncated SVD.

``W [H, C] ~= A [H, r] @ B [r, C]`` with ``A = U_r sqrt(S_r)`` and ``B = sqrt(S_r) V_r^T``: the
layer becomes ``Dense(r, use_bias=False)`` followed by ``Dense(C)`` that keeps the original
name (so the output is still called ``logits``), its bias and its activation. The new model's
output is exactly the rank-r approximation of the old one; fine-tune it afterwards.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass

import numpy as np

from edge_rec.compress.model_copy import custom_layer_objects
from edge_rec.keras_shim import keras


@dataclass(frozen=True)
class LowRankReport:
    """What :func:`factorize_output_layer` changed.

    ``params_before`` / ``params_after`` count the whole model; ``layer_params_before`` /
    ``layer_params_after`` the replaced layer (kernel + bias) and its two replacements.
    ``relative_error`` is ``||W - A B||_F / ||W||_F``; ``energy_kept`` the share of the squared
    singular values kept.
    """

    layer: str
    rank: int
    kernel_shape: tuple[int, int]
    layer_params_before: int
    layer_params_after: int
    params_before: int
    params_after: int
    relative_error: float
    energy_kept: float

    @property
    def param_ratio(self) -> float:
        """Whole-model parameters after / before."""
        return self.params_after / self.params_before


def largest_dense_layer(model: keras.Model) -> keras.layers.Dense:
    """The Dense layer of ``model`` with the most kernel entries (the hidden x catalog output)."""
    dense = [layer for layer in model.layers if isinstance(layer, keras.layers.Dense)]
    if not dense:
        raise ValueError(f"factorize_output_layer: model {model.name!r} has no Dense layer")
    return max(dense, key=lambda layer: int(np.prod(layer.kernel.shape)))


def truncated_svd_factors(kernel: np.ndarray, rank: int) -> tuple[np.ndarray, np.ndarray, float, float]:
    """``(A, B, relative_error, energy_kept)`` with ``A @ B`` the best rank-``rank`` approximation."""
    u, s, vt = np.linalg.svd(kernel.astype(np.float64), full_matrices=False)
    root = np.sqrt(s[:rank])
    a = (u[:, :rank] * root).astype(np.float32)
    b = (root[:, None] * vt[:rank]).astype(np.float32)
    total = float(np.sum(s**2))
    kept = float(np.sum(s[:rank] ** 2))
    error = float(np.sqrt(max(total - kept, 0.0) / total)) if total > 0 else 0.0
    return a, b, error, (kept / total if total > 0 else 1.0)


def factorize_output_layer(model: keras.Model, rank: int) -> keras.Model:
    """Replace the largest Dense layer of ``model`` by two Dense layers of rank ``rank``.

    Returns a new functional model (the input model is unchanged) with the same inputs, outputs
    and output names whose output is the rank-``rank`` SVD approximation of the original; see
    :func:`low_rank_report` for what changed. Raises ``ValueError`` when ``rank`` is not in
    ``[1, min(H, C))`` or would not reduce the layer's parameter count.
    """
    if not isinstance(model, keras.Model) or not getattr(model, "_is_graph_network", False):
        raise TypeError("factorize_output_layer: expected a functional tf_keras Model")
    target = largest_dense_layer(model)
    kernel = target.kernel.numpy()
    hidden, columns = kernel.shape
    if isinstance(rank, bool) or not isinstance(rank, int) or not 1 <= rank < min(hidden, columns):
        raise ValueError(
            f"lowrank.rank: expected an integer in [1, {min(hidden, columns) - 1}] for layer "
            f"{target.name!r} with kernel {hidden}x{columns}, got {rank!r}"
        )
    if rank * (hidden + columns) >= hidden * columns:
        raise ValueError(
            f"lowrank.rank: rank {rank} would not shrink layer {target.name!r} ({hidden}x{columns}); "
            f"use a rank below {hidden * columns // (hidden + columns) + 1}"
        )
    a, b, _error, _energy = truncated_svd_factors(kernel, rank)
    factor_name = f"{target.name}_factor"
    if any(layer.name == factor_name for layer in model.layers):
        raise ValueError(f"factorize_output_layer: model already has a layer named {factor_name!r}")

    config = copy.deepcopy(model.get_config())
    entries = config["layers"]
    index = next(i for i, entry in enumerate(entries) if entry["config"]["name"] == target.name)
    entry = entries[index]
    factor = copy.deepcopy(entry)
    factor["name"] = factor_name
    factor["config"].update(
        name=factor_name, units=rank, use_bias=False, activation="linear",
        kernel_regularizer=None, bias_regularizer=None, activity_regularizer=None,
    )
    entry["inbound_nodes"] = [[[factor_name, 0, 0, {}]]]
    entries.insert(index, factor)

    with keras.utils.custom_object_scope(custom_layer_objects(model)):
        new_model = keras.Model.from_config(config)
    for layer in new_model.layers:
        if layer.name == factor_name:
            layer.set_weights([a])
        elif layer.name == target.name:
            rest = target.get_weights()[1:]
            layer.set_weights([b, *rest])
        elif layer.weights:
            layer.set_weights(model.get_layer(layer.name).get_weights())

    return new_model


def low_rank_report(original: keras.Model, factorized: keras.Model) -> LowRankReport:
    """Compare a model with its :func:`factorize_output_layer` result (sizes and SVD error)."""
    target = largest_dense_layer(original)
    factor_name = f"{target.name}_factor"
    try:
        factor = factorized.get_layer(factor_name)
    except ValueError:
        raise ValueError(f"low_rank_report: the factorized model has no layer {factor_name!r}") from None
    kernel = target.kernel.numpy()
    hidden, columns = kernel.shape
    rank = int(factor.units)
    _a, _b, error, energy = truncated_svd_factors(kernel, rank)
    bias = columns if target.use_bias else 0
    return LowRankReport(
        layer=target.name,
        rank=rank,
        kernel_shape=(int(hidden), int(columns)),
        layer_params_before=int(kernel.size) + bias,
        layer_params_after=rank * (hidden + columns) + bias,
        params_before=int(original.count_params()),
        params_after=int(factorized.count_params()),
        relative_error=error,
        energy_kept=energy,
    )
