"""Loaded at interpreter start-up when this folder is on PYTHONPATH: importing TensorFlow,
tf_keras or TF-MOT raises ImportError, as on a device that has only ``edge-rec[device]``."""

import sys

BLOCKED = ("tensorflow", "tf_keras", "tensorflow_model_optimization", "keras")


class _BlockTensorFlow:
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in BLOCKED:
            raise ImportError(f"{name} is blocked: this process simulates a device without TensorFlow")
        return None


sys.meta_path.insert(0, _BlockTensorFlow())
