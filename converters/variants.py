"""The TFLite variants edge-rec converts to, in one constant (importable without TensorFlow).

``float32`` (no optimization), ``float16`` (float16 weights), ``dynamic`` (int8 weights, float
activations) and ``int8`` (full integer, calibrated activations; what a bundle ships by default).
Config validation, the CLI's ``--quantize`` choices and the converter all read this tuple.
"""

from __future__ import annotations

VARIANTS: tuple[str, ...] = ("float32", "float16", "dynamic", "int8")

#: The variant a bundle ships unless told otherwise.
DEFAULT_VARIANT = "int8"
