"""Pruning-preserving quantization-aware training (TF-MOT PQAT) for the student.

:func:`quantize_student` annotates the layers TF-MOT can quantize (Dense and the other built-in
layers its 8-bit registry supports), gives every custom layer (the pooling layers) an explicit
:class:`NoOpQuantizeConfig`, leaves Embedding layers to the converter's representative-dataset
calibration, and applies ``Default8BitPrunePreserveQuantizeScheme`` so that weights pruned to zero
stay zero during fine-tuning. Nothing that consumes the int32 id tensor is annotated: TF-MOT
would put a FakeQuant on it and fail.

Save and reload a QAT model with :func:`save_qat_model` / :func:`load_qat_model` (SavedModel
directory or ``.h5``; the ``.keras`` format loses the wrapped kernels on reload), or inside
:func:`qat_scope`.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Mapping
from contextlib import AbstractContextManager
from pathlib import Path
from typing import Any

import tensorflow_model_optimization as tfmot
from tensorflow_model_optimization.python.core.quantization.keras.default_8bit import (
    default_8bit_quantize_registry,
)

from edge_rec.compress.model_copy import copy_model, custom_layer_objects
from edge_rec.keras_shim import keras, tf

_quant = tfmot.quantization.keras


@keras.utils.register_keras_serializable(package="edge_rec")
class NoOpQuantizeConfig(_quant.QuantizeConfig):
    """Quantize nothing in a layer: its weights and output stay float inside the QAT graph.

    Used for custom layers (pooling) that TF-MOT does not know; the TFLite converter then
    calibrates their tensors from the representative dataset like any unannotated op.
    """

    def get_weights_and_quantizers(self, layer):
        return []

    def get_activations_and_quantizers(self, layer):
        return []

    def set_quantize_weights(self, layer, quantize_weights):
        return None

    def set_quantize_activations(self, layer, quantize_activations):
        return None

    def get_output_quantizers(self, layer):
        return []

    def get_config(self) -> dict[str, Any]:
        return {}


def _id_consumers(model: keras.Model) -> set[str]:
    """Names of layers that read an integer model input directly."""
    names: set[str] = set()
    int_inputs = {id(t) for t in model.inputs if t.dtype.is_integer}
    for layer in model.layers:
        for node in layer._inbound_nodes:  # noqa: SLF001 - Keras has no public node API
            if any(id(t) in int_inputs for t in tf.nest.flatten(node.input_tensors)):
                names.add(layer.name)
    return names


def _is_builtin(layer: keras.layers.Layer) -> bool:
    return type(layer).__module__.startswith("tf_keras.")


def quantization_plan(model: keras.Model) -> dict[str, str]:
    """How :func:`quantize_student` treats each layer: ``annotate``, ``no-op`` or ``skip``.

    ``annotate``: a built-in layer TF-MOT's 8-bit registry supports (Dense, ReLU, ...) that does
    not read the id input. ``no-op``: a layer TF-MOT does not support (custom pooling), wrapped
    with :class:`NoOpQuantizeConfig`. ``skip``: inputs, Embedding layers and id consumers.
    """
    registry = default_8bit_quantize_registry.Default8BitQuantizeRegistry()
    id_readers = _id_consumers(model)
    plan: dict[str, str] = {}
    for layer in model.layers:
        if isinstance(layer, keras.layers.InputLayer | keras.layers.Embedding) or layer.name in id_readers:
            plan[layer.name] = "skip"
        elif isinstance(layer, keras.Model):
            raise ValueError(
                f"quantize_student: layer {layer.name!r} is a nested model; TF-MOT cannot quantize "
                "models inside models — build the student as one flat functional model"
            )
        elif _is_builtin(layer) and registry.supports(layer):
            plan[layer.name] = "annotate"
        else:
            plan[layer.name] = "no-op"
    return plan


def qat_scope(custom_objects: Mapping[str, Any] | None = None) -> AbstractContextManager:
    """TF-MOT's ``quantize_scope`` plus :class:`NoOpQuantizeConfig` and ``custom_objects``.

    Needed to clone, save-and-reload or ``load_model`` a model returned by :func:`quantize_student`.
    """
    objects: dict[str, Any] = {
        "NoOpQuantizeConfig": NoOpQuantizeConfig,
        "edge_rec>NoOpQuantizeConfig": NoOpQuantizeConfig,
    }
    objects.update(custom_objects or {})
    return _quant.quantize_scope(objects)


def quantize_student(model: keras.Model) -> keras.Model:
    """A pruning-preserving QAT copy of ``model`` (the input model is not modified).

    Same inputs, outputs and output names; Dense kernels get 8-bit fake quantization that keeps
    every zero weight zero. Fit it (e.g. through the Distiller), then convert it with
    ``convert_to_tflite(..., "int8", ...)``.
    """
    if not isinstance(model, keras.Model) or not getattr(model, "_is_graph_network", False):
        raise TypeError("quantize_student: expected a functional tf_keras Model")
    plan = quantization_plan(model)
    if "annotate" not in plan.values():
        raise ValueError(f"quantize_student: model {model.name!r} has no layer TF-MOT can quantize (no Dense layer)")
    custom = custom_layer_objects(model)
    source = copy_model(model)

    def annotate(layer: keras.layers.Layer) -> keras.layers.Layer:
        action = plan.get(layer.name, "skip")
        if action == "annotate":
            return _quant.quantize_annotate_layer(layer)
        if action == "no-op":
            return _quant.quantize_annotate_layer(layer, quantize_config=NoOpQuantizeConfig())
        return layer

    with qat_scope(custom):
        annotated = keras.models.clone_model(source, clone_function=annotate)
        return _quant.quantize_apply(
            annotated, scheme=tfmot.experimental.combine.Default8BitPrunePreserveQuantizeScheme()
        )


def is_quantization_aware(model: keras.Model) -> bool:
    """True when ``model`` holds TF-MOT quantize wrappers (it came from :func:`quantize_student`)."""
    return any(isinstance(layer, _quant.QuantizeWrapperV2 | _quant.QuantizeWrapper) for layer in model.layers)


def save_qat_model(model: keras.Model, path: str | Path, custom_objects: Mapping[str, Any] | None = None) -> Path:
    """Save a QAT model as a SavedModel directory (or ``.h5`` file), atomically.

    The Keras v3 ``.keras`` format is refused: reloading it loses the kernels TF-MOT's
    ``QuantizeWrapperV2`` tracks (``expected 6 variables, but received 8``).
    """
    path = Path(path)
    if path.suffix == ".keras":
        raise ValueError(
            f"{path}: QAT models cannot round-trip through the .keras format; save to a directory "
            "(SavedModel) or a .h5 file instead"
        )
    path.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{path.name}.tmp-", dir=path.parent))
    target = staging / path.name
    try:
        with qat_scope(custom_objects):
            model.save(str(target))
        if path.is_dir():
            shutil.rmtree(path)
        os.replace(target, path)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return path


def load_qat_model(path: str | Path, custom_objects: Mapping[str, Any] | None = None) -> keras.Model:
    """Load a model written by :func:`save_qat_model` (``custom_objects``: the model's custom layers)."""
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"{path}: no saved QAT model here")
    with qat_scope(custom_objects):
        return keras.models.load_model(str(path))
