"""Memory of the current process as the OS reports it: resident set size now and at its peak.

The peak comes from ``VmHWM`` in ``/proc/self/status`` (the high-water mark of *this* process's
own address space), not from ``getrusage(RUSAGE_SELF).ru_maxrss``: on Linux ``ru_maxrss`` survives
``fork`` + ``execve``, so a freshly spawned benchmark child reports its parent's peak whenever the
parent was larger (that is how three different models once all showed the parent's 116 MiB).
``ru_maxrss`` is only the fallback where there is no ``/proc`` (macOS).
"""

from __future__ import annotations

import resource
import sys
from pathlib import Path

MIB = 1024 * 1024
_STATUS = Path("/proc/self/status")


def _status_field_mb(name: str) -> float | None:
    """A ``kB`` field of ``/proc/self/status`` in MiB; None where there is no /proc or no such field."""
    try:
        for line in _STATUS.read_text().splitlines():
            if line.startswith(name + ":"):
                return int(line.split()[1]) / 1024
    except (OSError, ValueError, IndexError):
        return None
    return None


def peak_rss_source() -> str:
    """Where :func:`peak_rss_mb` reads from on this machine: ``"VmHWM"`` or ``"ru_maxrss"``."""
    return "VmHWM" if _status_field_mb("VmHWM") is not None else "ru_maxrss"


def peak_rss_mb() -> float:
    """Peak resident set size of this process's own address space so far, in MiB.

    ``VmHWM`` from ``/proc/self/status`` (reset by ``execve``, so never the parent's peak); where
    there is no ``/proc``, ``getrusage(RUSAGE_SELF).ru_maxrss`` (KiB on Linux, bytes on macOS).
    """
    peak = _status_field_mb("VmHWM")
    if peak is not None:
        return peak
    maxrss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return maxrss / MIB if sys.platform == "darwin" else maxrss / 1024


def current_rss_mb() -> float | None:
    """Resident set size now, in MiB, from ``VmRSS`` in ``/proc/self/status``; None where there is no /proc."""
    return _status_field_mb("VmRSS")
