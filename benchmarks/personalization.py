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
    python benchmarks/personalization.py replay      # print one log's replay summary
    python benchmarks/personalization.py report      # all replays, costs on both interpreters:
                                                     # results/personalization.{json,md}

The logs live in ``../shared/data`` (team-internal, never committed); a log that is missing is
skipped and said so.
"""

from __future__ import annotations

import argparse
import csv
import json
import math
import os
import subprocess
import sys
import time
from collections import defaultdict
from collections.abc import Callable
from pathlib import Path

import numpy as np

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


GROUPS = (("< 10", 0, 10), ("10-50", 10, 51), ("> 50", 51, 10**9))


def tuning_half(user: str) -> bool:
    """The MovieLens users the default ``PersonalizationConfig`` was chosen on (a fixed half, by
    hash); results are also reported on the other half."""
    import hashlib

    return int(hashlib.sha256(user.encode("utf-8")).hexdigest(), 16) % 2 == 0


def _group(length: int) -> str:
    return next(name for name, low, high in GROUPS if low <= length < high)


def _gain(ranked: list[str], target: str) -> tuple[float, float]:
    """(NDCG@10, HR@10) of one ranked list for one target."""
    if target in ranked:
        return 1.0 / math.log2(ranked.index(target) + 2), 1.0
    return 0.0, 0.0


def replay_log(bundle: Path, replay_path: Path, state_dir: Path, config: dict, *, dislikes: bool = False,
               keep: Callable[[str], bool] = lambda user: True, record: int = 0) -> dict:
    """Replay every kept user's held-out events in order: recommend before each (without and with
    the user's head), then give the event as feedback. Returns per-user sums and, for the first
    ``record`` users, every personalized top-10 (to compare interpreters)."""
    from device_runtime.personalization import PersonalizationConfig
    from device_runtime.recommender import Recommender

    rec = Recommender.load(bundle, state_dir=state_dir, personalization=PersonalizationConfig(**config))
    known = set(rec.bundle.item_ids[2:])
    users: list[dict] = []
    recorded: list[list[str]] = []
    with replay_path.open(encoding="utf-8") as handle:
        for line in handle:
            row = json.loads(line)
            user = row["user"]
            if not keep(user):
                continue
            history = list(row["history"])
            sums = {"user": user, "group": _group(len(history)), "events": len(row["events"]),
                    "targets": 0, "ndcg_base": 0.0, "ndcg_personal": 0.0, "hr_base": 0.0, "hr_personal": 0.0}
            for item, rating in row["events"]:
                kind = "dislike" if dislikes and rating <= DISLIKE_MAX_RATING else "play"
                if kind == "play" and item in known:
                    base = rec.recommend(history, k=10).item_ids
                    mine = rec.recommend(history, k=10, user=user).item_ids
                    for name, ranked in (("base", base), ("personal", mine)):
                        ndcg, hit = _gain(ranked, item)
                        sums[f"ndcg_{name}"] += ndcg
                        sums[f"hr_{name}"] += hit
                    sums["targets"] += 1
                    if len(users) < record:
                        recorded.append(mine)
                rec.feedback(user, item, kind)
                history.append(item)
            if sums["targets"]:
                users.append(sums)
    return {"users": users, "recorded": recorded}


def summarize(users: list[dict]) -> dict:
    """Paired ratios (personal / base) of per-user mean NDCG@10 and HR@10, overall, by history
    length group, and for users with more than 10 replayed events."""
    from edge_rec.paired_bootstrap import paired_ratio

    def block(rows: list[dict]) -> dict:
        if not rows or not any(r["ndcg_base"] for r in rows):
            return {"users": len(rows)}
        out = {"users": len(rows), "events": sum(r["targets"] for r in rows)}
        for metric in ("ndcg", "hr"):
            base = np.array([r[f"{metric}_base"] / r["targets"] for r in rows])
            mine = np.array([r[f"{metric}_personal"] / r["targets"] for r in rows])
            ratio = paired_ratio(mine, base, names=("personal", "base"), metric=metric)
            out[metric] = {"base": round(float(base.mean()), 5), "personal": round(float(mine.mean()), 5),
                           "ratio": round(ratio.ratio, 4), "low": round(ratio.low, 4), "high": round(ratio.high, 4)}
        return out

    return {"all": block(users),
            "groups": {name: block([u for u in users if u["group"] == name]) for name, _, _ in GROUPS},
            "replay > 10 events": block([u for u in users if u["events"] > 10])}


def costs(bundle: Path, replay_path: Path, state_dir: Path, users: int = 1000, events: int = 20) -> dict:
    """Per-event update latency (feedback, saved), recommend latency with a user's head over
    without, state bytes per user, and this process's RSS with ``users`` heads in memory."""
    import resource

    from device_runtime.recommender import Recommender

    rec = Recommender.load(bundle, state_dir=state_dir)
    rows = []
    with replay_path.open(encoding="utf-8") as handle:
        for line in handle:
            rows.append(json.loads(line))
            if len(rows) == users:
                break
    while len(rows) < users:  # short logs: the same users again, under other names
        rows += [dict(r, user=f"{r['user']}#{len(rows)}") for r in rows[:users - len(rows)]]
    update_ns = []
    for row in rows:
        for item, _ in (row["events"] * events)[:events]:
            started = time.perf_counter_ns()
            rec.feedback(row["user"], item, "play")
            update_ns.append(time.perf_counter_ns() - started)
    plain_ns, personal_ns = [], []
    for _ in range(3):
        for row in rows[:300]:
            history = row["history"]
            started = time.perf_counter_ns()
            rec.recommend(history, k=10)
            middle = time.perf_counter_ns()
            rec.recommend(history, k=10, user=row["user"])
            plain_ns.append(middle - started)
            personal_ns.append(time.perf_counter_ns() - middle)
    sizes = [p.stat().st_size for p in state_dir.iterdir()]
    rss_kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss

    def pct(values: list[int], q: float) -> float:
        return round(float(np.percentile(values, q)) / 1000, 1)

    return {"python": sys.version.split()[0], "backend": rec.backend, "users": len(rows),
            "events_per_user": events,
            "update_us": {"p50": pct(update_ns, 50), "p99": pct(update_ns, 99)},
            "recommend_us": {"without": pct(plain_ns, 50), "with": pct(personal_ns, 50),
                             "ratio_p50": round(float(np.percentile(personal_ns, 50) / np.percentile(plain_ns, 50)), 3)},
            "state_bytes": {"mean": round(float(np.mean(sizes))), "max": int(max(sizes))},
            "cached_heads": rec.info()["personalization"]["cached_users"],
            "peak_rss_mib": round(rss_kib / 1024, 1)}


def child(step: str, name: str, seed: int, python: str, **options) -> dict:
    """Run ``step`` of this script for log ``name`` in a child of ``python``; its JSON answer."""
    env = dict(os.environ, PYTHONPATH=str(REPO))
    done = subprocess.run([python, str(Path(__file__)), step, "--logs", name, "--seed", str(seed),
                           "--options", json.dumps(options)], capture_output=True, text=True, env=env,
                          timeout=3600)
    if done.returncode != 0:
        raise RuntimeError(f"{python} {step} {name}: {done.stderr[-2000:]}")
    return json.loads(done.stdout)


DEVICE_PYTHON = REPO / ".venv-device" / "bin" / "python"


def _table(title: str, summary: dict) -> list[str]:
    lines = [f"### {title}", "", "| users | replayed events (targets) | NDCG@10 without -> with | ratio [95 % CI] | HR@10 ratio [95 % CI] |",
             "|---|---:|---|---|---|"]
    for label, block in [("all", summary["all"]), *summary["groups"].items(),
                         ("more than 10 replayed events", summary["replay > 10 events"])]:
        if "ndcg" not in block:
            lines.append(f"| {label} ({block['users']} users) | - | - | - | - |")
            continue
        n, h = block["ndcg"], block["hr"]
        lines.append(f"| {label} ({block['users']}) | {block['events']:,} | {n['base']:.4f} -> {n['personal']:.4f} "
                     f"| {n['ratio']:.3f} [{n['low']:.3f}, {n['high']:.3f}] | {h['ratio']:.3f} [{h['low']:.3f}, {h['high']:.3f}] |")
    return lines + [""]


def report(seed: int) -> int:
    """Every replay, the costs on both interpreters and their agreement; writes the results."""
    import tempfile

    from benchmarks.stamp import RESULTS, stamp_result

    results: dict = {"benchmark": "personalization", "seed": seed, "logs": {}, "costs": [], "agreement": {}}
    pythons = [sys.executable] + ([str(DEVICE_PYTHON)] if DEVICE_PYTHON.exists() else [])
    for name in LOGS:
        folder = WORK / name
        bundle = folder / f"run-seed{seed}" / "bundle"
        if not bundle.is_dir():
            print(f"{name}: no bundle at {bundle} (run prepare and build); skipped", file=sys.stderr)
            continue
        scenarios = {"plays": False} if name == "amazon" else {"plays": False, "dislikes (ratings <= 2)": True}
        entry = {}
        for label, dislikes in scenarios.items():
            with tempfile.TemporaryDirectory() as state:
                replayed = replay_log(bundle, folder / "replay.jsonl", Path(state), {}, dislikes=dislikes)
            entry[label] = summarize(replayed["users"])
            if name == "movielens" and not dislikes:  # the defaults were tuned on the other half
                entry[f"{label}, held-out half of the users"] = summarize(
                    [u for u in replayed["users"] if not tuning_half(u["user"])])
        results["logs"][name] = entry
        for python in pythons:
            results["costs"].append({"log": name, **child("costs", name, seed, python)})
        if len(pythons) == 2:
            lists = [child("record", name, seed, python, users=100)["recorded"] for python in pythons]
            overlaps = [len(set(a) & set(b)) / max(len(a), 1) for a, b in zip(*lists, strict=True)]
            results["agreement"][name] = {"events": len(overlaps), "mean_top10_overlap": round(float(np.mean(overlaps)), 4),
                                          "min_top10_overlap": round(float(np.min(overlaps)), 2)}
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "personalization.json").write_text(json.dumps(results, indent=2) + "\n")
    lines = ["# On-device personalization, replayed on real logs", "",
             "Each user's newest 20 % of events (at least 2) are held out; the bundle is built on the rest "
             f"(`edge-rec build`, seed {seed}, default config); each held-out event is recommended for "
             "(top-10, history = everything before it) without and with the user's head, then given as "
             "feedback. Ratios are personal / without over users (per-user mean), paired bootstrap 95 % "
             "intervals. Default `PersonalizationConfig`, chosen among 15 settings on half of the "
             "MovieLens users (`tuning_half`); the other half is reported separately.", ""]
    for name, entry in results["logs"].items():
        for label, summary in entry.items():
            lines += _table(f"{name}: {label}", summary)
    lines += ["## Costs", "", "| log | python | backend | update p50 / p99 | recommend without -> with (p50) | ratio | state bytes mean / max | heads cached | peak RSS |",
              "|---|---|---|---|---|---:|---|---:|---:|"]
    for row in results["costs"]:
        lines.append(f"| {row['log']} | {row['python']} | {row['backend']} | {row['update_us']['p50']} / {row['update_us']['p99']} µs "
                     f"| {row['recommend_us']['without']} -> {row['recommend_us']['with']} µs | {row['recommend_us']['ratio_p50']} "
                     f"| {row['state_bytes']['mean']} / {row['state_bytes']['max']} | {row['cached_heads']} | {row['peak_rss_mib']} MiB |")
    lines += ["", "## The two interpreters after the same events", ""]
    for name, row in results["agreement"].items():
        lines.append(f"- {name}: {row['events']} personalized top-10s of the first 100 users, mean overlap "
                     f"{row['mean_top10_overlap']}, minimum {row['min_top10_overlap']} (ai-edge-litert on this "
                     "venv's Python vs tflite-runtime 2.14 on Python 3.9).")
    (RESULTS / "personalization.md").write_text("\n".join(lines) + "\n")
    stamp_result("personalization")
    print(RESULTS / "personalization.md")
    return 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("step", choices=("prepare", "build", "replay", "costs", "record", "report"))
    parser.add_argument("--logs", nargs="+", default=list(LOGS), choices=list(LOGS))
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--config", default="{}", help="PersonalizationConfig fields as JSON")
    parser.add_argument("--dislikes", action="store_true")
    parser.add_argument("--options", default="{}", help="JSON options of the costs / record steps")
    args = parser.parse_args()
    if args.step == "report":
        return report(args.seed)
    for name in args.logs:
        if args.step == "prepare":
            prepare(name)
        elif args.step == "build":
            build(name, args.seed)
        else:
            import tempfile

            folder = WORK / name
            bundle, replay_path = folder / f"run-seed{args.seed}" / "bundle", folder / "replay.jsonl"
            options = json.loads(args.options)
            with tempfile.TemporaryDirectory() as state:
                if args.step == "costs":
                    print(json.dumps(costs(bundle, replay_path, Path(state), **options)))
                elif args.step == "record":  # the first N users' personalized top-10s
                    first = set()
                    with replay_path.open(encoding="utf-8") as handle:
                        for line in handle:
                            first.add(json.loads(line)["user"])
                            if len(first) == options.get("users", 100):
                                break
                    result = replay_log(bundle, replay_path, Path(state), {}, keep=first.__contains__,
                                        record=len(first))
                    print(json.dumps({"recorded": result["recorded"]}))
                else:
                    result = replay_log(bundle, replay_path, Path(state), json.loads(args.config),
                                        dislikes=args.dislikes)
                    print(json.dumps({name: summarize(result["users"])}, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
