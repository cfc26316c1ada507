"""TF-MOT magnitude pruning of the student's Dense and Embedding layers.

The transformation chain is::

    pruned = prune_student(model, cfg, steps_per_epoch)   # wrapped, a sparsity ladder to the target
    fit(pruned, callbacks=pruning_callbacks())            # e.g. through the Distiller, one level per epoch
    stripped = strip_pruning(pruned)                      # plain Keras layers, zeros kept
    sparsity_report(stripped)                             # {layer: achieved sparsity}

Only trainable Dense and Embedding layers are pruned: the frozen one-column ``mask`` Embedding
(0 for padding, 1 otherwise) is left alone, as is every other layer. The input model is never
modified: pruning works on a copy with its own weights.
"""

from __future__ import annotations

import numpy as np
import tensorflow_model_optimization as tfmot

from edge_rec.compress.model_copy import copy_model, custom_layer_objects
from edge_rec.config import PruneConfig
from edge_rec.keras_shim import keras, tf


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


def sparsity_levels(cfg: PruneConfig) -> tuple[float, ...]:
    """The ladder the fine-tuning climbs, one level per epoch: ``prune.fit.epochs`` evenly spaced
    levels from above ``initial_sparsity`` up to ``target_sparsity`` (e.g. 0.1, 0.2, ..., 0.5)."""
    epochs = cfg.fit.epochs
    if epochs < 1:
        raise ValueError(f"prune.fit.epochs: expected an integer >= 1, got {epochs}")
    if not 0.0 <= cfg.initial_sparsity <= cfg.target_sparsity < 1.0:
        raise ValueError(
            "prune.initial_sparsity / prune.target_sparsity: expected 0 <= initial <= target < 1, "
            f"got {cfg.initial_sparsity} and {cfg.target_sparsity}"
        )
    span = cfg.target_sparsity - cfg.initial_sparsity
    return tuple(round(cfg.initial_sparsity + span * (i + 1) / epochs, 6) for i in range(epochs))


class SparsityLadder(tfmot.sparsity.keras.PruningSchedule):
    """One sparsity level per epoch. In the first half of epoch ``i`` the sparsity ramps linearly
    from level ``i - 1`` (``initial`` before the first) to ``levels[i]``, the masks updated every
    ``frequency`` steps and on the ramp's last step; the second half keeps the masks fixed so the
    model recovers. At the end of every epoch the model is exactly at a level, so the epoch's
    validation score measures that level (:mod:`edge_rec.compress.sparsity_selection`)."""

    def __init__(self, levels: tuple[float, ...], steps_per_level: int, frequency: int, initial: float = 0.0):
        if not levels or steps_per_level < 1 or frequency < 1:
            raise ValueError(
                f"SparsityLadder: expected levels, steps_per_level >= 1 and frequency >= 1, got "
                f"{levels}, {steps_per_level}, {frequency}"
            )
        self.levels = tuple(float(level) for level in levels)
        self.steps_per_level = int(steps_per_level)
        self.ramp_steps = max(1, self.steps_per_level // 2)
        self.frequency = max(1, min(int(frequency), self.ramp_steps))
        self.initial = float(initial)

    def __call__(self, step):
        step = tf.cast(step, tf.int32)
        index = tf.minimum(step // self.steps_per_level, len(self.levels) - 1)
        starts = tf.constant((self.initial, *self.levels[:-1]), tf.float32)
        ends = tf.constant(self.levels, tf.float32)
        within = step - index * self.steps_per_level
        progress = tf.minimum(1.0, tf.cast(within, tf.float32) / float(self.ramp_steps))
        sparsity = tf.gather(starts, index) + (tf.gather(ends, index) - tf.gather(starts, index)) * progress
        ramping = within <= self.ramp_steps
        on_step = tf.logical_or(tf.equal(within % self.frequency, 0), tf.equal(within, self.ramp_steps))
        return tf.logical_and(ramping, on_step), sparsity

    def get_config(self) -> dict:
        return {
            "class_name": self.__class__.__name__,
            "config": {"levels": self.levels, "steps_per_level": self.steps_per_level,
                       "frequency": self.frequency, "initial": self.initial},
        }


def pruning_schedule(cfg: PruneConfig, steps_per_epoch: int) -> SparsityLadder:
    """The :class:`SparsityLadder` of ``cfg``: :func:`sparsity_levels`, one per epoch of
    ``steps_per_epoch`` steps, masks updated every ``cfg.frequency`` steps of each ramp."""
    if steps_per_epoch < 1:
        raise ValueError(f"steps_per_epoch: expected an integer >= 1, got {steps_per_epoch!r}")
    return SparsityLadder(sparsity_levels(cfg), steps_per_epoch, cfg.frequency, cfg.initial_sparsity)


def prune_student(model: keras.Model, cfg: PruneConfig, steps_per_epoch: int) -> keras.Model:
    """Wrap every prunable layer (see :func:`is_prunable`) with at least ``cfg.min_weights``
    parameters, in a copy of ``model``, for pruning.

    The returned model trains like the original (same inputs and outputs) and zeroes the smallest
    weights of each wrapped layer following :func:`pruning_schedule`. It must be fitted with the
    callbacks of :func:`pruning_callbacks`, then passed to :func:`strip_pruning`.
    """
    if not isinstance(model, keras.Model) or not getattr(model, "_is_graph_network", False):
        raise TypeError("prune_student: expected a functional tf_keras Model (TF-MOT cannot wrap subclassed models)")
    schedule = pruning_schedule(cfg, steps_per_epoch)
    source = copy_model(model)
    def pruned(layer: keras.layers.Layer) -> bool:
        return is_prunable(layer) and layer.count_params() >= cfg.min_weights

    if not any(pruned(layer) for layer in source.layers):
        raise ValueError(
            f"prune_student: model {model.name!r} has no trainable Dense or Embedding layer with at least "
            f"prune.min_weights = {cfg.min_weights} weights to prune"
        )

    def wrap(layer: keras.layers.Layer) -> keras.layers.Layer:
        if pruned(layer):
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
