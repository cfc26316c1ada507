"""On-device personalization, replayed on real logs: does a user's head, learning on the device
from that user's events, improve the next recommendation?

For each log: every user's newest 20 % of events (at least 2; users with 5+ events) are held out;
``edge-rec build`` trains on the rest. Then, per user in time order, the device recommends before
each held-out event (history = everything before it) and takes the event as feedback after it,
once with personalization (a fresh ``state_dir``) and once without. NDCG@10 / HR@10 over the events
whose target is in the bundle's catalog, paired bootstrap 95 % intervals of the ratio, split by
the user's history length at the start of the replay (< 10, 10-50, > 50 items).

The dislike scenario (MovieLens) replays ratings <= 2 as ``dislike`` feedback (never as targets)
and the others as plays.

    python benchmarks/personalization.py prepare     # split the logs (benchmarks/work/personalization)
    python benchmarks/personalization.py build       # one build per log (minutes each)
    python benchmarks/personalization.py replay      # results/personalization.{json,md}

The logs live in ``../shared/data`` (team-internal, never committed); a log that is missing is
skipped and said so.
"""

from __future__ import annotations

import argparse
import csv
import json
import math
import subprocess
import sys
from collections import defaultdict
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

DATA = REPO.parent / "shared" / "data"
WORK = REPO / "benchmarks" / "work" / "personalization"
EDGE_REC = Path(sys.executable).parent / "edge-rec"
HELD_OUT_SHARE = 0.2
MIN_HELD_OUT = 2
MIN_EVENTS = 5
DISLIKE_MAX_RATING = 2.0

#: name -> (source file, reader, build time budget)
LOGS = {
    "movielens": (DATA / "movielens-latest-small" / "ratings.csv", "movielens", "10m"),
    "amazon": (DATA / "amazon-video-games.csv", "amazon", "15m"),
}


def read_events(path: Path, kind: str) -> dict[str, list[tuple[str, float, float]]]:
    """user -> [(item, timestamp, rating)] in file order (rating 5.0 when the log has none)."""
    events: dict[str, list[tuple[str, float, float]]] = defaultdict(list)
    with path.open(newline="", encoding="utf-8") as handle:
        for row in csv.DictReader(handle):
            if kind == "movielens":
                events[row["userId"]].append((row["movieId"], float(row["timestamp"]), float(row["rating"])))
            else:
                events[row["user_id"]].append((row["item_id"], float(row["timestamp"]), 5.0))
    return events


def prepare(name: str) -> Path | None:
    """Write ``WORK/name/train.csv`` (what the build sees) and ``replay.jsonl`` (per user: the
    training history and the held-out events in time order)."""
    source, kind, _ = LOGS[name]
    if not source.exists():
        print(f"{name}: {source} not found; skipped", file=sys.stderr)
        return None
    folder = WORK / name
    folder.mkdir(parents=True, exist_ok=True)
    events = read_events(source, kind)
    with (folder / "train.csv").open("w", newline="", encoding="utf-8") as train, \
            (folder / "replay.jsonl").open("w", encoding="utf-8") as replay:
        writer = csv.writer(train)
        writer.writerow(["user_id", "item_id", "timestamp"])
        for user, rows in events.items():
            rows = sorted(rows, key=lambda row: row[1])  # stable: file order breaks ties
            held = max(MIN_HELD_OUT, math.ceil(HELD_OUT_SHARE * len(rows))) if len(rows) >= MIN_EVENTS else 0
            kept = rows[:len(rows) - held]
            for item, stamp, _ in kept:
                writer.writerow([user, item, int(stamp)])
            if held:
                replay.write(json.dumps({"user": user, "history": [item for item, _, _ in kept],
                                         "events": [[item, rating] for item, _, rating in rows[len(kept):]]}) + "\n")
    print(f"{name}: {folder}", file=sys.stderr)
    return folder


def build(name: str, seed: int) -> None:
    """``edge-rec build`` on the training part, default config (the sizes a user gets)."""
    folder = WORK / name
    budget = LOGS[name][2]
    run_dir = folder / f"run-seed{seed}"
    subprocess.run([str(EDGE_REC), "build", "--data", str(folder / "train.csv"), "--data-format", "csv",
                    "--seed", str(seed), "--time-budget", budget, "--out", str(run_dir), "--overwrite"],
                   check=False)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("step", choices=("prepare", "build", "replay"))
    parser.add_argument("--logs", nargs="+", default=list(LOGS), choices=list(LOGS))
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    for name in args.logs:
        if args.step == "prepare":
            prepare(name)
        elif args.step == "build":
            build(name, args.seed)
    return 0


if __name__ == "__main__":
    sys.exit(main())
