"""device_runtime: serve an edge-rec bundle on a device with numpy and a TFLite interpreter.

This package never imports TensorFlow, tf_keras, TF-MOT, ``edge_rec`` or ``converters``.
"""
