"""A smart-speaker app that embeds the edge-rec runtime: "play something like this" on the device.

The listening history stays on the device in a small JSON file (written atomically). Each play is
appended and the next tracks are asked for right away, as the speaker would do between songs::

    python examples/smart_speaker/speaker_app.py --play 1021 --play 1007    # record plays
    python examples/smart_speaker/speaker_app.py --autoplay 5               # let it DJ 5 tracks
    python examples/smart_speaker/speaker_app.py --forget                   # clear the history

Needs only ``pip install 'edge-rec[device]'`` (numpy + ai-edge-litert); no TensorFlow.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))  # run from a source checkout

from device_runtime.atomic_file import write_text_atomic  # noqa: E402
from device_runtime.bundle import BundleError  # noqa: E402
from device_runtime.recommender import Recommender  # noqa: E402

MAX_STORED_PLAYS = 500  # the device keeps a bounded history


class ListeningHistory:
    """The on-device play history: a JSON list of item ids, oldest first, bounded in length."""

    def __init__(self, path: Path) -> None:
        self.path = path
        try:
            plays = json.loads(path.read_text()) if path.exists() else []
        except (OSError, ValueError):
            print(f"warning: {path} is unreadable; starting a fresh history", file=sys.stderr)
            plays = []
        self.plays: list[str] = [str(p) for p in plays if isinstance(p, (str, int))]

    def add(self, item_id: str) -> None:
        """Record one play and persist the history."""
        self.plays = (self.plays + [str(item_id)])[-MAX_STORED_PLAYS:]
        write_text_atomic(self.path, json.dumps(self.plays))

    def clear(self) -> None:
        """Forget everything."""
        self.plays = []
        write_text_atomic(self.path, "[]")


def up_next(recommender: Recommender, history: ListeningHistory, count: int) -> list[str]:
    """Ask the runtime for the next tracks and print them; returns their ids."""
    result = recommender.recommend(history.plays, k=count)
    why = {"model": "because you listened to recent tracks",
           "popularity": "popular right now (no history yet)",
           "model+popularity": "for you, topped up with popular tracks"}[result.source]
    print(f"up next ({why}):")
    for item in result:
        print(f"  {item.rank}. {item.title or item.item_id}  [{item.item_id}]")
    return result.item_ids


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--bundle", default="runs/demo/bundle", help="bundle directory or .tar.gz")
    parser.add_argument("--history-file", type=Path, default=Path.home() / ".edge_rec_speaker.json",
                        help="where the device keeps the listening history")
    parser.add_argument("--play", action="append", default=[], metavar="ITEM_ID",
                        help="record a play (repeatable) and show what comes next")
    parser.add_argument("--autoplay", type=int, default=0, metavar="N",
                        help="play the top recommendation N times in a row")
    parser.add_argument("--next", type=int, default=5, help="how many tracks to show")
    parser.add_argument("--forget", action="store_true", help="clear the stored history")
    args = parser.parse_args()

    try:
        recommender = Recommender.load(args.bundle)
    except (BundleError, OSError, ValueError) as exc:
        print(f"cannot load the bundle: {exc}\n(build one with `make demo`)", file=sys.stderr)
        return 1
    history = ListeningHistory(args.history_file)
    if args.forget:
        history.clear()
    for item_id in args.play:
        history.add(item_id)
        print(f"played {item_id}")
    upcoming = up_next(recommender, history, args.next)
    for _ in range(args.autoplay):
        history.add(upcoming[0])
        print(f"\nplaying {upcoming[0]}")
        upcoming = up_next(recommender, history, args.next)
    print(f"\n{len(history.plays)} plays stored in {history.path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
