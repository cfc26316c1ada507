"""Summary statistics of an interaction log: what ``edge-rec data inspect`` prints."""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import numpy as np

from edge_rec.data.factorize import factorize
from edge_rec.data.interactions import InteractionLog


@dataclass(frozen=True)
class LogStatistics:
    """Size, sparsity, per-user history lengths and popularity concentration of a log.

    ``density`` = interactions / (users * items). ``length_p10/p50/p90/max`` are percentiles
    of interactions per user. ``top1pct_share`` is the share of interactions on the most
    popular 1% of items (at least one item). Times are Unix seconds.
    """

    source: str
    users: int
    items: int
    interactions: int
    density: float
    length_p10: float
    length_p50: float
    length_p90: float
    length_max: int
    top1pct_items: int
    top1pct_share: float
    first_timestamp: int
    last_timestamp: int
    skipped_lines: int

    def to_dict(self) -> dict:
        """A JSON-ready dict of every field."""
        return asdict(self)

    def describe(self) -> str:
        """A short human-readable multi-line report."""
        span_days = (self.last_timestamp - self.first_timestamp) / 86_400
        lines = [
            f"source:        {self.source}",
            f"users:         {self.users:,}",
            f"items:         {self.items:,}",
            f"interactions:  {self.interactions:,}",
            f"density:       {self.density:.4%}",
            "per-user interactions: "
            f"p10 {self.length_p10:g}, p50 {self.length_p50:g}, p90 {self.length_p90:g}, "
            f"max {self.length_max}",
            f"popularity:    top 1% of items ({self.top1pct_items}) get "
            f"{self.top1pct_share:.1%} of interactions",
            f"time span:     {span_days:.1f} days",
        ]
        if self.skipped_lines:
            lines.append(f"skipped lines: {self.skipped_lines}")
        return "\n".join(lines)


def compute_statistics(log: InteractionLog) -> LogStatistics:
    """Compute :class:`LogStatistics` of ``log`` (raw, before any minimum-count filtering)."""
    if len(log) == 0:
        raise ValueError(f"{log.source}: the log has no interactions")
    per_user = np.bincount(factorize(log.users)[1])
    per_item = np.bincount(factorize(log.items)[1])
    n_users, n_items, n = len(per_user), len(per_item), len(log)
    p10, p50, p90 = np.percentile(per_user, [10, 50, 90])
    top = max(1, math.ceil(0.01 * n_items))
    top_share = float(np.sort(per_item)[::-1][:top].sum() / n)
    return LogStatistics(
        source=log.source,
        users=int(n_users),
        items=int(n_items),
        interactions=int(n),
        density=float(n / (n_users * n_items)),
        length_p10=float(p10),
        length_p50=float(p50),
        length_p90=float(p90),
        length_max=int(per_user.max()),
        top1pct_items=int(top),
        top1pct_share=top_share,
        first_timestamp=int(log.timestamps.min()),
        last_timestamp=int(log.timestamps.max()),
        skipped_lines=int(log.skipped_lines),
    )
