"""Copying functional tf_keras models that contain custom (registered) layers."""

from __future__ import annotations

from edge_rec.keras_shim import keras

_BUILTIN_MODULES = ("tf_keras.", "keras.", "tensorflow_model_optimization.")


def custom_layer_objects(model: keras.Model) -> dict[str, type]:
    """Every non-built-in layer class of ``model``, by class name and by registered name.

    Pass it as ``custom_objects`` to clone, quantize or reload the model.
    """
    objects: dict[str, type] = {}
    for layer in model.layers:
        cls = type(layer)
        if not cls.__module__.startswith(_BUILTIN_MODULES):
            objects[cls.__name__] = cls
            objects[keras.utils.get_registered_name(cls)] = cls
    return objects


def copy_model(model: keras.Model) -> keras.Model:
    """A functional copy of ``model`` with fresh layers holding copies of its weights.

    Transformations work on such a copy so that the model they were given keeps its weights.
    """
    with keras.utils.custom_object_scope(custom_layer_objects(model)):
        clone = keras.models.clone_model(model)
    clone.set_weights(model.get_weights())
    return clone
