"""TensorFlow's environment: the one place where TensorFlow and tf_keras are first imported.

Two rules live here and nowhere else:

- ``TF_USE_LEGACY_KERAS=1`` is set before TensorFlow is imported, so ``tf.keras`` is tf_keras
  (Keras 2): TF-MOT does not support Keras 3.
- TensorFlow is quiet unless asked: its C++ start-up lines (oneDNN, CUDA ``cuInit``), absl and
  ``tf`` logger warnings ("No training configuration found"), the converter's own lines
  ("fully_quantize: ...") and the ``tf.lite.Interpreter`` deprecation warning are hidden.
  ``EDGE_REC_VERBOSE=1`` in the environment (what ``edge-rec --verbose`` sets) shows them all.

Importing this module does not import TensorFlow; :func:`load_tensorflow` does::

    from converters.tensorflow_env import load_tensorflow

    tf, keras = load_tensorflow()
"""

from __future__ import annotations

import contextlib
import logging
import os
import sys
import tempfile
import warnings
from collections.abc import Iterator
from types import ModuleType

#: Environment variable that keeps TensorFlow's own logs (``edge-rec --verbose`` sets it to 1).
VERBOSE_ENV = "EDGE_REC_VERBOSE"

#: Python warnings from TensorFlow that read as failures to a newcomer and mean nothing here.
_QUIET_WARNINGS = (
    r"\s*Warning: tf\.lite\.Interpreter is deprecated",
    r"Statistics for quantized inputs were expected",
    r"You are saving your model as an HDF5 file",  # QAT models are kept as .h5 on purpose
)

_modules: tuple[ModuleType, ModuleType] | None = None


def is_verbose() -> bool:
    """True when TensorFlow's logs should be shown (``EDGE_REC_VERBOSE=1``)."""
    return os.environ.get(VERBOSE_ENV, "") not in ("", "0")


def set_verbose(verbose: bool) -> None:
    """Show (True) or hide TensorFlow's logs in this process and its children; call it before
    :func:`load_tensorflow` (C++ log levels are read once, when TensorFlow is imported)."""
    os.environ[VERBOSE_ENV] = "1" if verbose else "0"


@contextlib.contextmanager
def quiet_native_stderr() -> Iterator[None]:
    """Hide what native code writes to file descriptor 2 inside the block (unless verbose).

    The text is kept in a temporary file and written back to stderr when the block raises, so
    an error is never hidden with the noise.
    """
    if is_verbose():
        yield
        return
    sys.stderr.flush()
    saved = os.dup(2)
    with tempfile.TemporaryFile() as captured:
        os.dup2(captured.fileno(), 2)
        try:
            yield
        except BaseException:
            os.dup2(saved, 2)
            captured.seek(0)
            sys.stderr.write(captured.read().decode("utf-8", "replace"))
            raise
        finally:
            os.dup2(saved, 2)
            os.close(saved)


def load_tensorflow() -> tuple[ModuleType, ModuleType]:
    """``(tensorflow, tf_keras)``, imported once with ``TF_USE_LEGACY_KERAS=1`` and, unless
    verbose, TensorFlow's logs silenced (see the module docstring)."""
    global _modules
    if _modules is not None:
        return _modules
    os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")
    verbose = is_verbose()
    if not verbose:
        os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
        for pattern in _QUIET_WARNINGS:
            warnings.filterwarnings("ignore", message=pattern)
    with quiet_native_stderr():
        import tensorflow as tf
        import tf_keras as keras
    if not verbose:
        import absl.logging

        absl.logging.set_verbosity(absl.logging.ERROR)
        tf.get_logger().setLevel(logging.ERROR)
    _modules = (tf, keras)
    return _modules
