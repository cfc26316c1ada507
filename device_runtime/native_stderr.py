"""Keep the interpreter's native log lines off stderr unless logging asks for them.

LiteRT and tflite-runtime print ``INFO: Created TensorFlow Lite XNNPACK delegate for CPU.`` from
C++ straight to file descriptor 2 on every interpreter they build; no environment variable turns
it off (``TF_CPP_MIN_LOG_LEVEL`` does not). :func:`native_stderr_to_logging` points fd 2 at a
temporary file while an interpreter is built, then forwards what was written through ``logging``:
``INFO:`` lines at DEBUG, everything else (warnings, errors) at WARNING. When the logger is
enabled for DEBUG (``edge-rec --verbose``), nothing is redirected and the lines print as before.

``logging`` is imported only when something must be logged (it costs ~1 MB of RSS and a few ms
of a device's cold start): a process that never imported it cannot have asked for DEBUG.
"""

from __future__ import annotations

import os
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager

_LOCK = threading.Lock()  # fd 2 is process-wide: one redirection at a time
_MAX_CAPTURE_BYTES = 64 * 1024


def _capture_fd() -> int:
    """A readable and writable anonymous file (memfd on Linux; no tempfile import on the way)."""
    memfd_create = getattr(os, "memfd_create", None)
    if memfd_create is not None:
        try:
            return memfd_create("edge-rec-native-stderr")
        except OSError:
            pass
    import tempfile

    fd, path = tempfile.mkstemp(prefix="edge-rec-native-stderr-")
    os.unlink(path)
    return fd


def _debug_enabled(logger_name: str) -> bool:
    logging = sys.modules.get("logging")
    return logging is not None and logging.getLogger(logger_name).isEnabledFor(logging.DEBUG)


def _forward(fd: int, logger_name: str) -> None:
    os.lseek(fd, 0, os.SEEK_SET)
    text = os.read(fd, _MAX_CAPTURE_BYTES).decode("utf-8", "replace")
    lines = [line for line in text.splitlines() if line.strip()]
    if not lines or (all(line.startswith("INFO:") for line in lines)
                     and not _debug_enabled(logger_name)):
        return
    import logging

    logger = logging.getLogger(logger_name)
    for line in lines:
        logger.log(logging.DEBUG if line.startswith("INFO:") else logging.WARNING, "%s", line)


@contextmanager
def native_stderr_to_logging(logger_name: str) -> Iterator[None]:
    """Capture what native code writes to fd 2 inside the block and log it through the logger
    named ``logger_name`` (see module doc).

    Python's ``sys.stderr`` is flushed before and after. Writes from other threads during the
    block are captured (and logged) too, so keep the block short. Where fd 2 cannot be duplicated
    (closed), the block runs without redirection.
    """
    if _debug_enabled(logger_name):
        yield
        return
    with _LOCK:
        try:
            saved = os.dup(2)
        except OSError:
            saved = -1
        if saved < 0:
            yield
            return
        try:
            capture = _capture_fd()
        except OSError:
            os.close(saved)
            raise
        try:
            _flush_python_stderr()
            os.dup2(capture, 2)
            try:
                yield
            finally:
                _flush_python_stderr()
                os.dup2(saved, 2)
                _forward(capture, logger_name)
        finally:
            os.close(saved)
            os.close(capture)


def _flush_python_stderr() -> None:
    try:
        sys.stderr.flush()
    except (AttributeError, OSError, ValueError):  # no stderr, or a closed one
        pass
