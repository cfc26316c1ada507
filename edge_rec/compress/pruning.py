"""TF-MOT magnitude pruning of the student's Dense and Embedding layers.

The transformation chain is::

    pruned = prune_student(model, cfg, steps_per_epoch)   # wrapped, schedule to target sparsity
    fit(pruned, callbacks=pruning_callbacks())            # e.g. through the Distiller
    stripped = strip_pruning(pruned)                      # plain Keras layers, zeros kept
    sparsity_report(stripped)                             # {layer: achieved sparsity}

Only trainable Dense and Embedding layers are pruned: the frozen one-column ``mask`` Embedding
(0 for padding, 1 otherwise) is left alone, as is every other layer. The input model is never
modified: pruning works on a copy with its own weights.
"""

from __future__ import annotations

import math

import numpy as np
import tensorflow_model_optimization as tfmot

from edge_rec.compress.model_copy import copy_model, custom_layer_objects
from edge_rec.config import PruneConfig
from edge_rec.keras_shim import keras

#: Fraction of the fine-tuning steps over which sparsity ramps up; the rest lets the model recover.
RAMP_FRACTION = 0.7


def is_prunable(layer: keras.layers.Layer) -> bool:
    """True for a trainable Dense or Embedding layer with more than one output column.

    This excludes the frozen one-column padding-mask Embedding, whose 0/1 weights must survive.
    """
    if not isinstance(layer, keras.layers.Dense | keras.layers.Embedding):
        return False
    if not layer.trainable:
        return False
    if isinstance(layer, keras.layers.Embedding) and layer.output_dim < 2:
        return False
    return True


def pruning_schedule(cfg: PruneConfig, steps_per_epoch: int) -> tfmot.sparsity.keras.PolynomialDecay:
    """A PolynomialDecay from ``cfg.initial_sparsity`` to ``cfg.target_sparsity``.

    The ramp ends after :data:`RAMP_FRACTION` of ``cfg.fit.epochs * steps_per_epoch`` steps, on a
    step that is a multiple of the pruning frequency, so the target is reached during fine-tuning
    and the remaining steps recover accuracy with the masks fixed. The frequency is lowered when
    fine-tuning is shorter than ``cfg.frequency`` steps.
    """
    if steps_per_epoch < 1:
        raise ValueError(f"steps_per_epoch: expected an integer >= 1, got {steps_per_epoch!r}")
    if not 0.0 <= cfg.initial_sparsity <= cfg.target_sparsity < 1.0:
        raise ValueError(
            "prune.initial_sparsity / prune.target_sparsity: expected 0 <= initial <= target < 1, "
            f"got {cfg.initial_sparsity} and {cfg.target_sparsity}"
        )
    total_steps = cfg.fit.epochs * steps_per_epoch
    if total_steps < 2:
        raise ValueError(
            f"pruning needs at least 2 fine-tuning steps, got {cfg.fit.epochs} epoch(s) x "
            f"{steps_per_epoch} step(s); raise prune.fit.epochs or lower prune.fit.batch_size"
        )
    ramp = max(1, math.floor(total_steps * RAMP_FRACTION))
    frequency = max(1, min(cfg.frequency, ramp))
    end_step = max(frequency, (ramp // frequency) * frequency)
    return tfmot.sparsity.keras.PolynomialDecay(
        initial_sparsity=cfg.initial_sparsity,
        final_sparsity=cfg.target_sparsity,
        begin_step=0,
        end_step=end_step,
        frequency=frequency,
    )


def prune_student(model: keras.Model, cfg: PruneConfig, steps_per_epoch: int) -> keras.Model:
    """Wrap every prunable layer (see :func:`is_prunable`) of a copy of ``model`` for pruning.

    The returned model trains like the original (same inputs and outputs) and zeroes the smallest
    weights of each wrapped layer following :func:`pruning_schedule`. It must be fitted with the
    callbacks of :func:`pruning_callbacks`, then passed to :func:`strip_pruning`.
    """
    if not isinstance(model, keras.Model) or not getattr(model, "_is_graph_network", False):
        raise TypeError("prune_student: expected a functional tf_keras Model (TF-MOT cannot wrap subclassed models)")
    schedule = pruning_schedule(cfg, steps_per_epoch)
    source = copy_model(model)
    if not any(is_prunable(layer) for layer in source.layers):
        raise ValueError(f"prune_student: model {model.name!r} has no trainable Dense or Embedding layer to prune")

    def wrap(layer: keras.layers.Layer) -> keras.layers.Layer:
        if is_prunable(layer):
            return tfmot.sparsity.keras.prune_low_magnitude(layer, pruning_schedule=schedule)
        return layer

    with keras.utils.custom_object_scope(custom_layer_objects(model)):
        return keras.models.clone_model(source, clone_function=wrap)


def pruning_callbacks() -> list[keras.callbacks.Callback]:
    """The callbacks a pruned model must be fitted with (TF-MOT's ``UpdatePruningStep``)."""
    return [tfmot.sparsity.keras.UpdatePruningStep()]


def strip_pruning(model: keras.Model) -> keras.Model:
    """The pruned model with its pruning wrappers removed; pruned weights stay exactly zero."""
    return tfmot.sparsity.keras.strip_pruning(model)


def _inner_layer(layer: keras.layers.Layer) -> keras.layers.Layer:
    """Unwrap TF-MOT pruning / quantization wrappers (both keep the wrapped layer in ``.layer``)."""
    while isinstance(layer, keras.layers.Wrapper):
        layer = layer.layer
    return layer


def main_weight(layer: keras.layers.Layer) -> np.ndarray | None:
    """The kernel (Dense) or embedding matrix (Embedding) of ``layer`` or of the layer it wraps.

    Read from the variable itself, so it also works inside a QAT wrapper (where ``layer.kernel``
    is replaced by a fake-quantized tensor). None for other layers.
    """
    inner = _inner_layer(layer)
    wanted = {keras.layers.Dense: "kernel", keras.layers.Embedding: "embeddings"}
    name = next((n for cls, n in wanted.items() if isinstance(inner, cls)), None)
    if name is None:
        return None
    for variable in [*inner.weights, *layer.weights]:  # a QAT wrapper tracks the kernel itself
        if variable.name.split("/")[-1].split(":")[0] == name:
            return variable.numpy()
    return None


def sparsity_report(model: keras.Model) -> dict[str, float]:
    """Fraction of exact zeros in the kernel / embedding matrix of every prunable layer.

    Works on plain, pruning-wrapped, stripped and QAT models (wrappers are looked through); keys
    are the names of the Dense / Embedding layers themselves.
    """
    report: dict[str, float] = {}
    for layer in model.layers:
        inner = _inner_layer(layer)
        if not is_prunable(inner):
            continue
        weight = main_weight(layer)
        if weight is not None and weight.size:
            report[inner.name] = float(np.mean(weight == 0.0))
    return report


def overall_sparsity(model: keras.Model) -> float:
    """Fraction of exact zeros over all prunable layers' kernels / embedding matrices together."""
    zeros = total = 0
    for layer in model.layers:
        inner = _inner_layer(layer)
        if is_prunable(inner):
            weight = main_weight(layer)
            if weight is not None:
                zeros += int(np.sum(weight == 0.0))
                total += weight.size
    return zeros / total if total else 0.0
