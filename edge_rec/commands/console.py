"""Where a command's output goes: machine output on stdout, progress and logs on stderr; and the
one message a device-only install gets from a command that needs TensorFlow.

click only: importing this module never imports TensorFlow.
"""

from __future__ import annotations

import contextlib
import logging
import sys
from collections.abc import Iterator
from types import ModuleType
from typing import Any, TextIO

import click

#: What a command that trains or converts tells a device-only install.
TRAIN_EXTRA_HINT = "pip install 'edge-rec[train]'"


class _Progress:
    """Whether a progress bar left the console in the middle of a line."""

    mid_line = False


class _ProgressStream:
    """A text stream that forwards everything and remembers whether the last write ended a line."""

    def __init__(self, stream: TextIO) -> None:
        self._stream = stream

    def write(self, text: str) -> int:
        if text:
            _Progress.mid_line = not text.endswith("\n")
        return self._stream.write(text)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._stream, name)


@contextlib.contextmanager
def progress_to_stderr() -> Iterator[None]:
    """Send what Python code prints to stdout inside the block (Keras progress bars, TensorFlow's
    prints) to stderr, so a command's stdout holds only its own output (e.g. ``--json``)."""
    with contextlib.redirect_stdout(_ProgressStream(sys.stderr)):
        try:
            yield
        finally:
            if _Progress.mid_line:
                sys.stderr.write("\n")
                _Progress.mid_line = False


class ConsoleHandler(logging.StreamHandler):
    """Log records on stderr, each on its own line even when a progress bar was mid-line."""

    def emit(self, record: logging.LogRecord) -> None:
        if _Progress.mid_line:
            self.stream.write("\n")
            _Progress.mid_line = False
        super().emit(record)


def require_training_stack(command: str) -> tuple[ModuleType, ModuleType]:
    """``(tensorflow, tf_keras)``, or a one-line error (exit 1, no traceback) naming the install
    ``command`` needs when TensorFlow, tf_keras or TF-MOT cannot be imported."""
    try:
        from converters.tensorflow_env import load_tensorflow

        modules = load_tensorflow()
        import tensorflow_model_optimization  # noqa: F401  (compression needs it)
    except ImportError as exc:
        raise click.ClickException(
            f"edge-rec {command} trains or converts models and needs TensorFlow, which this install "
            f"does not have ({exc}); install edge-rec[train]: {TRAIN_EXTRA_HINT}"
        ) from None
    return modules
