"""How much a served model may cost: interpreter memory and the number of interpreters.

A bundle pushed over the air can hold a model whose hashes match but whose tensors ask for a
gigabyte, and every concurrent caller used to get its own interpreter. :class:`RuntimeLimits`
bounds both; the defaults are sized for a TV (0.5-2 GB of RAM shared with the whole UI), and
:meth:`RuntimeLimits.for_profile` derives them from a device profile's budgets (the one home of
device budgets: :mod:`device_runtime.benchmarking.device_profile`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

MIB = 1024 * 1024


@dataclass(frozen=True)
class RuntimeLimits:
    """Limits a :class:`~device_runtime.recommender.Recommender` enforces.

    - ``memory_limit_bytes``: budget for the tensors of all pooled interpreters of one model
      (sum of tensor sizes, :func:`tensor_bytes`). A model whose single interpreter exceeds it is
      refused at load; otherwise the pool holds at most ``memory_limit_bytes // per-interpreter``.
    - ``max_interpreters``: the pool never holds more interpreters than this; a caller that finds
      all of them busy waits for one.
    - ``pool_wait_s``: how long such a caller waits before :class:`InterpreterPoolTimeout`.
    """

    memory_limit_bytes: int = 256 * MIB
    max_interpreters: int = 4
    pool_wait_s: float = 30.0

    def __post_init__(self) -> None:
        for name in ("memory_limit_bytes", "max_interpreters"):
            value = getattr(self, name)
            if type(value) is not int or value < 1:
                raise ValueError(f"RuntimeLimits.{name}: expected an integer >= 1, got {value!r}")
        if not isinstance(self.pool_wait_s, (int, float)) or not 0 < self.pool_wait_s < float("inf"):
            raise ValueError(f"RuntimeLimits.pool_wait_s: expected a finite number of seconds > 0, "
                             f"got {self.pool_wait_s!r}")


    @classmethod
    def for_profile(cls, profile: Any) -> RuntimeLimits:
        """The limits a device profile implies: one interpreter per thread it grants, and its
        ``peak_rss_mb`` budget minus what the serving process holds before any model
        (:data:`PROCESS_BASELINE_MB`) for their tensors (defaults for budgets it does not set)."""
        memory = cls.memory_limit_bytes
        if profile.peak_rss_mb is not None:
            memory = max(MIN_MODEL_MEMORY_MB, int(profile.peak_rss_mb - PROCESS_BASELINE_MB)) * MIB
        return cls(memory_limit_bytes=memory, max_interpreters=max(1, int(profile.threads)))


#: Resident memory of a serving process before a model is loaded (Python, numpy, LiteRT; measured
#: about 38 MB: benchmarks/results/device.md).
PROCESS_BASELINE_MB = 40
#: The least interpreter memory a profile's limits grant, however tight its RSS budget.
MIN_MODEL_MEMORY_MB = 8

DEFAULT_LIMITS = RuntimeLimits()


class InterpreterPoolTimeout(TimeoutError):
    """Every interpreter of the pool stayed busy for ``RuntimeLimits.pool_wait_s`` seconds."""


def tensor_bytes(interpreter: Any) -> int:
    """Sum of the sizes of all tensors of an interpreter (from their shapes, so it works before
    ``allocate_tensors``): an upper bound of its arena plus its constant buffers."""
    total = 0
    for detail in interpreter.get_tensor_details():
        count = 1
        for dim in detail["shape"]:
            count *= max(int(dim), 0)
        total += count * np.dtype(detail["dtype"]).itemsize
    return total
