"""Latency summaries: percentiles, max, mean and standard deviation of timed calls, in µs.

Percentiles use linear interpolation between the closest ranks (the same definition as
``numpy.percentile``'s default), so p50 of an even number of samples is the mean of the two middle
samples and p99 of 20 samples lies between the two slowest.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass

import numpy as np

PERCENTILES = (50, 90, 99)


@dataclass(frozen=True)
class LatencyStats:
    """Summary of ``count`` timed calls, every field in microseconds (``std`` is the population std)."""

    p50: float
    p90: float
    p99: float
    max: float
    mean: float
    std: float
    count: int

    def to_dict(self) -> dict[str, float | int]:
        """The fields as a JSON-ready dict (``p50``, ``p90``, ``p99``, ``max``, ``mean``, ``std``, ``count``)."""
        return asdict(self)


def percentile(sorted_values: Sequence[float], q: float) -> float:
    """The ``q``-th percentile (0..100) of ascending ``sorted_values`` by linear interpolation.

    Rank ``r = q/100 * (n-1)``; the result is ``v[floor(r)] + (r - floor(r)) * (v[ceil(r)] - v[floor(r)])``.
    Raises ``ValueError`` for an empty sequence or ``q`` outside 0..100.
    """
    n = len(sorted_values)
    if n == 0:
        raise ValueError("percentile of no samples: time at least one call")
    if not 0 <= q <= 100:
        raise ValueError(f"percentile q must be within 0..100, got {q}")
    rank = q / 100.0 * (n - 1)
    low = int(np.floor(rank))
    high = min(low + 1, n - 1)
    fraction = rank - low
    return float(sorted_values[low] + fraction * (sorted_values[high] - sorted_values[low]))


def summarize_ns(samples_ns: Sequence[int] | np.ndarray) -> LatencyStats:
    """Summarize durations given in nanoseconds (``time.perf_counter_ns`` deltas) as µs statistics."""
    return summarize_us(np.asarray(samples_ns, dtype=np.float64) / 1000.0)


def summarize_us(samples_us: Sequence[float] | np.ndarray) -> LatencyStats:
    """Summarize durations given in microseconds. Raises ``ValueError`` when there are none."""
    values = np.sort(np.asarray(samples_us, dtype=np.float64).ravel())
    if values.size == 0:
        raise ValueError("no latency samples to summarize: use --runs 1 or more")
    if not np.all(np.isfinite(values)) or values[0] < 0:
        raise ValueError("latency samples must be finite and non-negative")
    p50, p90, p99 = (percentile(values, q) for q in PERCENTILES)
    return LatencyStats(
        p50=p50,
        p90=p90,
        p99=p99,
        max=float(values[-1]),
        mean=float(values.mean()),
        std=float(values.std()),
        count=int(values.size),
    )
