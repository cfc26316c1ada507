"""The exceptions that mean "the input is wrong", not "edge-rec has a bug".

Commands that train or convert turn these into a one-line error and a non-zero exit; anything
else is a bug and keeps its traceback. Importing this module imports TensorFlow (through the
converters' error types), so only commands that train or convert use it.
"""

from __future__ import annotations

from converters.parity import ParityError
from converters.tflite import ConversionError
from device_runtime.bundle import BundleError
from device_runtime.interpreter import ModelFormatError
from edge_rec.config import ConfigError
from edge_rec.data import DataFormatError

#: Catch these at a command's boundary and report ``str(exc)``.
INPUT_ERRORS: tuple[type[BaseException], ...] = (
    ConfigError,
    DataFormatError,
    ConversionError,
    ParityError,
    BundleError,
    ModelFormatError,
    FileNotFoundError,
    IsADirectoryError,
    NotADirectoryError,
)
