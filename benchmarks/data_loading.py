"""Time loading 1,000,000 interactions (CSV and MovieLens u.data) and building sequences.

Writes ``benchmarks/results/data_loading.json`` with the median of 3 runs (after one warm-up
read of each file) of ``load_interactions`` and of ``prepare_dataset``, plus the time to
generate the default ``synthetic-tv`` log. Goal: loading 1M interactions in under 10 s.

    .venv/bin/python benchmarks/data_loading.py [--interactions N] [--repeats R]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from device_runtime.bundle_schema import real_item_count  # noqa: E402
from edge_rec.data import generate_synthetic, load_interactions, prepare_dataset  # noqa: E402

RESULTS = REPO / "benchmarks" / "results" / "data_loading.json"


def _write_files(directory: Path, n: int, seed: int) -> dict[str, Path]:
    """A Zipf-popular random log of ``n`` rows as generic CSV and as MovieLens u.data."""
    rng = np.random.default_rng(seed)
    users = rng.integers(1, n // 50 + 1, size=n)
    items = np.minimum(rng.zipf(1.3, size=n), 20_000)
    ratings = rng.integers(1, 6, size=n)
    stamps = 1_600_000_000 + rng.integers(0, 30_000_000, size=n)
    csv_path = directory / "interactions.csv"
    udata_path = directory / "u.data"
    rows = np.column_stack([users, items, stamps])
    np.savetxt(csv_path, rows, fmt="%d", delimiter=",", header="user_id,item_id,timestamp", comments="")
    np.savetxt(udata_path, np.column_stack([users, items, ratings, stamps]), fmt="%d", delimiter="\t")
    return {"csv": csv_path, "movielens-100k": udata_path}


def _median_seconds(fn, repeats: int) -> tuple[float, list[float], object]:
    times, result = [], None
    for _ in range(repeats):
        start = time.perf_counter()
        result = fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times), times, result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--interactions", type=int, default=1_000_000)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    report: dict = {
        "benchmark": "data_loading",
        "interactions": args.interactions,
        "repeats": args.repeats,
        "statistic": "median seconds",
        "python": platform.python_version(),
        "numpy": np.__version__,
        "cpus": os.cpu_count(),
        "goal": "load 1,000,000 interactions in < 10 s",
        "formats": {},
    }
    with tempfile.TemporaryDirectory() as tmp:
        files = _write_files(Path(tmp), args.interactions, seed=0)
        for fmt, path in files.items():
            load_interactions(path, fmt)  # warm-up (page cache, imports)
            load_s, load_runs, log = _median_seconds(lambda p=path, f=fmt: load_interactions(p, f), args.repeats)
            auto_s, _, _ = _median_seconds(lambda p=path: load_interactions(p), args.repeats)
            prep_s, prep_runs, ds = _median_seconds(lambda lg=log: prepare_dataset(lg), args.repeats)
            report["formats"][fmt] = {
                "file_mb": round(path.stat().st_size / 1e6, 1),
                "load_seconds": round(load_s, 3),
                "load_auto_seconds": round(auto_s, 3),
                "load_runs": [round(t, 3) for t in load_runs],
                "prepare_seconds": round(prep_s, 3),
                "prepare_runs": [round(t, 3) for t in prep_runs],
                "load_plus_prepare_seconds": round(load_s + prep_s, 3),
                "users_after_filtering": len(ds.user_ids),
                "items_after_filtering": real_item_count(ds.vocab.size),
                "meets_goal": load_s < 10.0,
            }
            print(f"{fmt:>15}: load {load_s:.2f}s (auto {auto_s:.2f}s), prepare {prep_s:.2f}s", flush=True)
    gen_s, gen_runs, tv = _median_seconds(lambda: generate_synthetic("synthetic-tv", seed=0), args.repeats)
    report["synthetic_tv_default"] = {
        "seconds": round(gen_s, 3),
        "runs": [round(t, 3) for t in gen_runs],
        "interactions": len(tv),
    }
    print(f"synthetic-tv default ({len(tv):,} interactions): {gen_s:.2f}s")
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    tmp_out = RESULTS.with_name(RESULTS.name + ".tmp")
    tmp_out.write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
    os.replace(tmp_out, RESULTS)
    print(f"wrote {RESULTS}")


if __name__ == "__main__":
    main()
