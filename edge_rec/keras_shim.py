"""Keras for edge_rec: TensorFlow with tf_keras (Keras 2), and the seed of a training run.

TF-MOT does not support Keras 3, so ``TF_USE_LEGACY_KERAS=1`` must be set before TensorFlow is
first imported; :mod:`converters.tensorflow_env` keeps that rule (and the quiet console) for
both layers. Every module of edge_rec that needs Keras imports it from here::

    from edge_rec.keras_shim import keras, tf
"""

from __future__ import annotations

from converters.tensorflow_env import load_tensorflow

tf, keras = load_tensorflow()

__all__ = ["keras", "tf", "set_global_seed"]


def set_global_seed(seed: int) -> None:
    """Seed Python, numpy and TensorFlow so that a run is repeatable."""
    import random

    import numpy as np

    random.seed(seed)
    np.random.seed(seed)
    tf.random.set_seed(seed)
    keras.utils.set_random_seed(seed)
