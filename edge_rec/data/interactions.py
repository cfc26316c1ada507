"""The in-memory interaction log every loader and generator produces, and its CSV writer."""

from __future__ import annotations

import csv
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np


@dataclass(frozen=True, eq=False)
class InteractionLog:
    """One row per interaction: who (``users``), what (``items``) and when (``timestamps``).

    ``users`` and ``items`` are arrays of strings (external ids), ``timestamps`` int64 Unix
    seconds; all three have the same length. ``source`` describes where the log came from
    (path and format, or synthetic preset and seed), ``skipped_lines`` counts malformed lines
    skipped by the loader, ``titles`` maps item id to a display title when known.
    """

    users: np.ndarray
    items: np.ndarray
    timestamps: np.ndarray
    source: str
    skipped_lines: int = 0
    titles: dict[str, str] | None = None

    def __post_init__(self) -> None:
        users = np.asarray(self.users).astype(str, copy=False)
        items = np.asarray(self.items).astype(str, copy=False)
        timestamps = np.asarray(self.timestamps, dtype=np.int64)
        if not (users.ndim == items.ndim == timestamps.ndim == 1):
            raise ValueError("users, items and timestamps must be 1-D arrays")
        if not (len(users) == len(items) == len(timestamps)):
            raise ValueError(
                f"users ({len(users)}), items ({len(items)}) and timestamps "
                f"({len(timestamps)}) must have the same length"
            )
        object.__setattr__(self, "users", users)
        object.__setattr__(self, "items", items)
        object.__setattr__(self, "timestamps", timestamps)

    def __len__(self) -> int:
        """Number of interactions."""
        return int(self.users.shape[0])


def write_interactions_csv(log: InteractionLog, path: str | Path) -> Path:
    """Write ``log`` as CSV with header ``user_id,item_id,timestamp`` (plus ``title`` if known).

    The file is written to a temporary name in the same directory and renamed, so an
    interrupted write never leaves a partial file under ``path``. Returns the path written.
    ``load_interactions(path)`` reads it back (format ``csv``, auto-detected).
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    with_titles = bool(log.titles)
    try:
        with tmp.open("w", encoding="utf-8", newline="") as handle:
            writer = csv.writer(handle, lineterminator="\n")
            header = ["user_id", "item_id", "timestamp"] + (["title"] if with_titles else [])
            writer.writerow(header)
            timestamps = log.timestamps.tolist()
            if with_titles:
                titles = log.titles or {}
                writer.writerows(
                    (u, i, t, titles.get(i, ""))
                    for u, i, t in zip(log.users.tolist(), log.items.tolist(), timestamps)
                )
            else:
                writer.writerows(zip(log.users.tolist(), log.items.tolist(), timestamps))
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return path
