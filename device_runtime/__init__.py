"""device_runtime: serve an edge-rec bundle on a device with numpy and a TFLite interpreter.

This package never imports tf_keras, TF-MOT, ``edge_rec`` or ``converters``; TensorFlow is
imported only when its ``tensorflow.lite`` interpreter is the backend chosen (last in ``auto``,
after ``ai_edge_litert`` and ``tflite_runtime``).

    from device_runtime import Recommender
    rec = Recommender.load("runs/demo/bundle")
    for r in rec.recommend(["show-12", "show-40"], k=10):
        print(r.rank, r.item_id, r.score)

:mod:`device_runtime.personalization` adds per-user heads that learn on the device
(``Recommender.load(..., state_dir=)``); :mod:`device_runtime.updates` installs signed bundles
(python-tuf, the ``update`` extra).
"""

from device_runtime.bundle import BundleError, verify_bundle
from device_runtime.interpreter import InterpreterUnavailableError, ModelFormatError
from device_runtime.model_check import ModelCheckError, ModelMemoryError, ModelOutputError
from device_runtime.recommender import Recommendation, RecommendationList, Recommender
from device_runtime.runtime_limits import InterpreterPoolTimeout, RuntimeLimits

__all__ = [
    "BundleError",
    "InterpreterPoolTimeout",
    "InterpreterUnavailableError",
    "ModelCheckError",
    "ModelFormatError",
    "ModelMemoryError",
    "ModelOutputError",
    "Recommendation",
    "RecommendationList",
    "Recommender",
    "RuntimeLimits",
    "verify_bundle",
]
