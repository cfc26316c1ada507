"""Saving and loading trained models: the serving form and the sequence (training) form.

A model directory holds ``model.<ext>`` (serving: last-position logits) and
``sequence_model.<ext>`` (every position; what distillation and fine-tuning continue from).
Plain models use the Keras ``.keras`` format; QAT models use ``.h5``, because TF-MOT's quantize
wrappers do not round-trip through ``.keras``. Both files are renamed into place.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path
from typing import Any

from edge_rec.compress.qat import is_quantization_aware, load_qat_model, save_qat_model
from edge_rec.keras_shim import keras
from edge_rec.models import CUSTOM_OBJECTS

SERVING_STEM = "model"
SEQUENCE_STEM = "sequence_model"


def _extension(model: keras.Model) -> str:
    return ".h5" if is_quantization_aware(model) else ".keras"


def save_model_pair(out_dir: str | Path, *, serving: keras.Model, sequence: keras.Model) -> Path:
    """Write ``model.<ext>`` and ``sequence_model.<ext>`` into ``out_dir``; returns ``out_dir``."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=".staging-", dir=out_dir))
    try:
        names = []
        for stem, model in ((SERVING_STEM, serving), (SEQUENCE_STEM, sequence)):
            name = stem + _extension(model)
            if is_quantization_aware(model):
                save_qat_model(model, staging / name, CUSTOM_OBJECTS)
            else:
                model.save(staging / name)
            names.append(name)
        for name in names:
            os.replace(staging / name, out_dir / name)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return out_dir


def find_saved_model(directory: str | Path, *, sequence: bool = False) -> Path:
    """The serving (or sequence) model file inside a model directory; FileNotFoundError if none."""
    directory = Path(directory)
    stem = SEQUENCE_STEM if sequence else SERVING_STEM
    for ext in (".keras", ".h5"):
        if (directory / (stem + ext)).is_file():
            return directory / (stem + ext)
    raise FileNotFoundError(f"{directory}: no {stem}.keras or {stem}.h5 here")


def load_saved_model(path: str | Path) -> keras.Model:
    """Load a model file written by :func:`save_model_pair` (or any .keras / .h5 / SavedModel)."""
    return load_qat_model(path, CUSTOM_OBJECTS)


def _non_causal_config(value: Any) -> Any:
    """A copy of a model config with every ``SequencePooling`` switched to serving (non-causal)."""
    if isinstance(value, dict):
        out = {k: _non_causal_config(v) for k, v in value.items()}
        if str(out.get("class_name", "")).endswith("SequencePooling") and isinstance(out.get("config"), dict):
            out["config"] = {**out["config"], "causal": False}
        return out
    if isinstance(value, list):
        return [_non_causal_config(v) for v in value]
    return value


def serving_form(model: keras.Model) -> keras.Model:
    """The serving form of a loaded model: itself if its logits are [B, C], else rebuilt non-causal."""
    from edge_rec.compress.qat import qat_scope

    names = list(model.output_names)
    logits = model.outputs[names.index("logits") if "logits" in names else 0]
    if len(logits.shape) == 2:
        return model
    with qat_scope(CUSTOM_OBJECTS):
        serving = keras.Model.from_config(_non_causal_config(model.get_config()))
    serving.set_weights(model.get_weights())
    return serving


def went_through_qat(model: keras.Model) -> bool:
    """True when ``model`` holds TF-MOT quantization layers (a QAT model: int8 scheme "qat-...")."""
    return any(type(layer).__module__.startswith("tensorflow_model_optimization")
               and "Quantize" in type(layer).__name__ for layer in model.layers)
