"""converters: Keras model -> TFLite variants -> parity check -> verified bundle.

Importing this package does not import TensorFlow; its modules do (through
:func:`converters.tensorflow_env.load_tensorflow`).
"""
