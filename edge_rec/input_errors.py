"""The exceptions that mean "the input is wrong", not "edge-rec has a bug".

Commands turn these into a one-line error and a non-zero exit; anything else is a bug and keeps
its traceback. :data:`DATA_INPUT_ERRORS` are those of reading a config and a log (no TensorFlow);
:data:`INPUT_ERRORS` adds the converters' (importing this module's ``INPUT_ERRORS`` imports
TensorFlow, so only commands that train or convert use it).
"""

from __future__ import annotations

from typing import Any

from device_runtime.bundle import BundleError
from device_runtime.interpreter import ModelFormatError
from edge_rec.config import ConfigError
from edge_rec.data import DataFormatError

#: Wrong config or log: catch these at a command's boundary and report ``str(exc)``.
DATA_INPUT_ERRORS: tuple[type[BaseException], ...] = (
    ConfigError,
    DataFormatError,
    BundleError,
    ModelFormatError,
    FileNotFoundError,
    IsADirectoryError,
    NotADirectoryError,
)


def __getattr__(name: str) -> Any:
    """``INPUT_ERRORS``: :data:`DATA_INPUT_ERRORS` plus the converters' errors, imported (with
    TensorFlow) only when asked for."""
    if name == "INPUT_ERRORS":
        from converters.parity import ParityError
        from converters.tflite import ConversionError

        return (*DATA_INPUT_ERRORS, ConversionError, ParityError)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
