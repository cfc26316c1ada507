"""TensorFlow with tf_keras (Keras 2) as its Keras: the only place converters and edge_rec import it.

TF-MOT does not support Keras 3, so ``TF_USE_LEGACY_KERAS=1`` must be set before TensorFlow is
first imported. Import from here, never ``tensorflow`` directly::

    from converters.legacy_keras import keras, tf
"""

from __future__ import annotations

import os

os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import tensorflow as tf  # noqa: E402
import tf_keras as keras  # noqa: E402

__all__ = ["keras", "tf", "set_global_seed"]


def set_global_seed(seed: int) -> None:
    """Seed Python, numpy and TensorFlow so that a run is repeatable."""
    import random

    import numpy as np

    random.seed(seed)
    np.random.seed(seed)
    tf.random.set_seed(seed)
    keras.utils.set_random_seed(seed)
