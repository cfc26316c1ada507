"""Is model A better than model B on the same users? A ratio of means with a paired bootstrap.

Two models evaluated on the same test users give two per-user gain vectors (e.g. NDCG@10). Their
ratio of means says how much better A is; resampling *users* (the same resample for both
models, so the pairing is kept) gives the 95 % percentile interval of that ratio. A gain whose
interval contains 1 is not a gain.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

#: Bootstrap resamples per comparison; enough for a stable 95 % percentile interval.
DEFAULT_RESAMPLES = 1000


@dataclass(frozen=True)
class PairedRatio:
    """``mean(A) / mean(B)`` over the same users with its paired bootstrap interval."""

    numerator: str
    denominator: str
    metric: str
    ratio: float
    low: float
    high: float
    users: int
    resamples: int

    @property
    def verdict(self) -> str:
        """``"better"`` when the whole interval is above 1, ``"worse"`` below 1, else ``"same"``."""
        if self.low > 1.0:
            return "better"
        if self.high < 1.0:
            return "worse"
        return "same"


def paired_ratio(
    numerator: np.ndarray,
    denominator: np.ndarray,
    *,
    names: tuple[str, str] = ("A", "B"),
    metric: str = "ndcg@10",
    resamples: int = DEFAULT_RESAMPLES,
    level: float = 0.95,
    seed: int = 0,
) -> PairedRatio:
    """Ratio of the means of two per-user gain vectors and its paired percentile interval.

    Both vectors hold one value per user, same users in the same order. A resample whose
    denominator mean is 0 is dropped (the ratio is undefined there). Raises ``ValueError`` for
    vectors of different lengths, no users, or a denominator that is 0 for every user.
    """
    a = np.asarray(numerator, dtype=np.float64).ravel()
    b = np.asarray(denominator, dtype=np.float64).ravel()
    if a.shape != b.shape:
        raise ValueError(f"paired_ratio: {a.size} and {b.size} users; a paired comparison needs the same users")
    if a.size == 0:
        raise ValueError("paired_ratio: no users")
    if not b.any():
        raise ValueError(f"paired_ratio: {names[1]} scores 0 for every user; the ratio is undefined")
    if not 0.0 < level < 1.0:
        raise ValueError(f"level: expected a number in (0, 1), got {level}")
    rng = np.random.default_rng(seed)
    n = a.size
    ratios = []
    chunk = max(1, min(resamples, 4_000_000 // n))
    for start in range(0, resamples, chunk):
        rows = min(chunk, resamples - start)
        picks = rng.integers(0, n, size=(rows, n), dtype=np.int32 if n < 2**31 else np.int64)
        sum_b = b[picks].sum(axis=1)
        keep = sum_b > 0
        ratios.append(a[picks[keep]].sum(axis=1) / sum_b[keep])
    ratios = np.concatenate(ratios)
    tail = (1.0 - level) / 2.0
    low, high = np.quantile(ratios, [tail, 1.0 - tail])
    return PairedRatio(
        numerator=names[0],
        denominator=names[1],
        metric=metric,
        ratio=float(a.mean() / b.mean()),
        low=float(low),
        high=float(high),
        users=int(n),
        resamples=int(ratios.size),
    )
