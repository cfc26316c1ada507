"""The history length a model was built for, whether its input is fixed or of any width."""

from __future__ import annotations

from edge_rec.keras_shim import keras


def history_length_of(model: keras.Model) -> int | None:
    """The history length ``L`` of a teacher or student, serving or sequence mode.

    A serving model's input is ``int32[B, L]``. A sequence-mode (training) model takes any width
    up to ``L`` (training batches are cut to their longest row); its ``L`` is then the one its
    position-dependent layers were built for (the teacher's position embedding, the student's
    pooling), looked up through wrappers and an averaged teacher's members. None for a model with
    no such layer (the GRU teacher reads histories of any length).
    """
    width = model.inputs[0].shape[-1]
    if width is not None:
        return int(width)
    for layer in model.layers:
        inner = getattr(layer, "layer", layer)  # a pruning or quantization wrapper
        if isinstance(inner, keras.Model):
            found = history_length_of(inner)
        else:
            found = getattr(inner, "history_length", None)
        if found is not None:
            return int(found)
    return None
