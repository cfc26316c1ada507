"""Device-runtime overhead, cold start and memory for one bundle; writes benchmarks/results/runtime.json.

    .venv/bin/python benchmarks/runtime.py [BUNDLE] [--runs 3000] [--warmup 300]

BUNDLE defaults to runs/demo/bundle, or to a tiny bundle built at first use (benchmarks/work/)
when the demo has not been built. This process never imports TensorFlow.

Measured, on one interpreter thread, after a warm-up:
- ``recommend()`` p50/p99 next to the raw interpreter (set_tensor + invoke + get_tensor, and
  invoke alone) on the same model, measured in interleaved blocks in the same process; the
  overhead ratio is recommend p50 / raw invoke p50 (goal <= 1.3x, issue 12); beside them the
  "python floor": the least Python any recommend() must run around invoke (id mapping, input
  write, output read, 10 plain tuples), which bounds what optimising recommend() can reach;
- cold start in fresh subprocesses (import + load + first recommendation; goal <= 80 ms wall) with
  the child's CPU time beside it (wall time on a shared machine includes waiting for a core), and
  the child's peak RSS (``VmHWM``, device_runtime.benchmarking.process_memory; goal <= 40 MB), median of
  several children;
- concurrent throughput of the interpreter pool versus one interpreter behind a lock.
"""

from __future__ import annotations

import argparse
import json
import platform
import random
import statistics
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from device_runtime.atomic_file import write_text_atomic  # noqa: E402
from device_runtime.benchmarking.engine import measure_throughput, time_calls  # noqa: E402
from device_runtime.benchmarking.latency_stats import summarize_ns  # noqa: E402
from device_runtime.bundle_schema import FIRST_ITEM_INDEX  # noqa: E402
from device_runtime.interpreter import create_interpreter, read_signatures  # noqa: E402
from device_runtime.recommender import Recommender  # noqa: E402

DEFAULT_BUNDLE = REPO / "runs" / "demo" / "bundle"
TINY_BUNDLE = REPO / "benchmarks" / "work" / "tiny_bundle"
RESULTS = REPO / "benchmarks" / "results" / "runtime.json"
# issue 12: recommend() p50 <= 1.3x raw invoke p50; cold start <= 80 ms; peak RSS <= 40 MB
GOALS = {"overhead_ratio_vs_invoke_max": 1.3, "cold_start_ms_max": 80, "peak_rss_mb_max": 40}

COLD_START_CHILD = r"""
import sys, time
t0 = time.perf_counter()
c0 = time.process_time()
import json  # device_runtime imports it anyway
from device_runtime.recommender import Recommender
t_import = time.perf_counter()
rec = Recommender.load(sys.argv[1])
t_load = time.perf_counter()
rec.recommend(json.loads(sys.argv[2]), k=10)
t_first = time.perf_counter()
c_first = time.process_time()
from device_runtime.benchmarking.process_memory import peak_rss_mb
print(json.dumps({
    "import_ms": (t_import - t0) * 1e3, "load_ms": (t_load - t_import) * 1e3,
    "first_recommendation_ms": (t_first - t_load) * 1e3, "total_ms": (t_first - t0) * 1e3,
    "total_cpu_ms": (c_first - c0) * 1e3, "peak_rss_mb": peak_rss_mb(),
    "tensorflow_imported": any(m.split(".")[0] in ("tensorflow", "tf_keras") for m in sys.modules),
}))
"""


def resolve_bundle(arg: str | None) -> Path:
    if arg:
        return Path(arg)
    if DEFAULT_BUNDLE.exists():
        return DEFAULT_BUNDLE
    if not (TINY_BUNDLE / "manifest.json").exists():
        print(f"{DEFAULT_BUNDLE} not found; building a tiny bundle in {TINY_BUNDLE} (TensorFlow "
              "runs in a child process)", file=sys.stderr)
        subprocess.run([sys.executable, str(REPO / "tests" / "tiny_bundle.py"), str(TINY_BUNDLE)],
                       check=True, cwd=REPO, stdout=subprocess.DEVNULL)
    return TINY_BUNDLE


def measure_latency(rec: Recommender, histories: list[list[str]], runs: int, warmup: int) -> dict:
    bundle = rec.bundle
    interpreter = create_interpreter(bundle.model_bytes, num_threads=1)
    signature = read_signatures(interpreter)["serving_default"]  # holds no runner
    in_index = signature.inputs["history"][2]
    out_ids = signature.outputs["top_ids"][2]
    out_scores = signature.outputs["top_scores"][2]
    index_of = {item_id: i for i, item_id in enumerate(bundle.item_ids)}
    L = rec.history_length
    rows = []
    for history in histories:
        row = np.zeros((1, L), dtype=np.int32)
        tail = [index_of[h] for h in history][-L:]
        row[0, L - len(tail):] = tail
        rows.append(row)

    # the least Python any recommend() can run around invoke: map the last L ids with a dict, write
    # them into the input tensor in place, invoke, read the top 10 and build 10 plain tuples (no
    # argument checks, no exclusion, no popularity fill, no result objects)
    floor_interpreter = create_interpreter(bundle.model_bytes, num_threads=1)
    floor_input, floor_ids, floor_scores = (floor_interpreter.tensor(i) for i in (in_index, out_ids, out_scores))
    floor_invoke = floor_interpreter.invoke
    get, item_ids = index_of.get, tuple(bundle.item_ids)  # plain tuple: the floor keeps Python objects

    def python_floor(history):
        tail = list(map(get, history[-L:]))
        view = floor_input()
        view[0, :L - len(tail)] = 0
        view[0, L - len(tail):] = tail
        del view
        floor_invoke()
        ids = floor_ids()[0, :10].tolist()
        scores = floor_scores()[0, :10].tolist()
        return [(item_ids[i], score, rank) for i, score, rank in zip(ids, scores, range(1, 11), strict=True)]

    def raw_full(row):
        interpreter.set_tensor(in_index, row)
        interpreter.invoke()
        interpreter.get_tensor(out_ids)
        interpreter.get_tensor(out_scores)

    for i in range(warmup):
        rec.recommend(histories[i % len(histories)], k=10)
        raw_full(rows[i % len(rows)])
        python_floor(histories[i % len(histories)])
    samples: dict[str, list[int]] = {"recommend": [], "python_floor": [], "raw_set_invoke_get": [],
                                     "raw_invoke": []}
    block = 100
    for start in range(0, runs, block):  # interleaved blocks: machine noise hits all of them alike
        count = min(block, runs - start)
        chunk = [histories[i % len(histories)] for i in range(start, start + count)]
        row_chunk = [rows[i % len(rows)] for i in range(start, start + count)]
        samples["recommend"] += time_calls(lambda h: rec.recommend(h, k=10), chunk, runs=count).tolist()
        samples["python_floor"] += time_calls(python_floor, chunk, runs=count).tolist()
        samples["raw_set_invoke_get"] += time_calls(raw_full, row_chunk, runs=count).tolist()
        samples["raw_invoke"] += time_calls(lambda _: interpreter.invoke(), row_chunk, runs=count,
                                            prepare=lambda row: interpreter.set_tensor(in_index, row)).tolist()
    stats = {name: summarize_ns(values).to_dict() for name, values in samples.items()}
    stats["overhead_ratio_vs_set_invoke_get"] = stats["recommend"]["p50"] / stats["raw_set_invoke_get"]["p50"]
    stats["overhead_ratio_vs_invoke"] = stats["recommend"]["p50"] / stats["raw_invoke"]["p50"]
    stats["python_floor_ratio_vs_invoke"] = stats["python_floor"]["p50"] / stats["raw_invoke"]["p50"]
    return stats


def measure_cold_start(bundle: Path, history: list[str], repeats: int) -> dict:
    children = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        out = subprocess.run([sys.executable, "-c", COLD_START_CHILD, str(bundle), json.dumps(history)],
                             capture_output=True, text=True, check=True, cwd=REPO,
                             env={"PYTHONPATH": str(REPO), "PATH": "/usr/bin:/bin"})
        child = json.loads(out.stdout.strip().splitlines()[-1])
        child["process_wall_ms"] = (time.perf_counter() - t0) * 1e3
        children.append(child)
    keys = ("import_ms", "load_ms", "first_recommendation_ms", "total_ms", "total_cpu_ms",
            "process_wall_ms", "peak_rss_mb")
    summary = {key: statistics.median(c[key] for c in children) for key in keys}
    summary["max_peak_rss_mb"] = max(c["peak_rss_mb"] for c in children)
    summary["repeats"] = repeats
    summary["tensorflow_imported"] = any(c["tensorflow_imported"] for c in children)
    return summary


def measure_concurrency(rec: Recommender, histories: list[list[str]], threads: int, per_thread: int) -> dict:
    lock = threading.Lock()

    def pool_call(h):
        rec.recommend(h, k=10)

    def locked_call(h):
        with lock:
            rec.recommend(h, k=10)

    def throughput(call) -> float:
        return measure_throughput([call] * threads, histories, requests=threads * per_thread)

    results = {"pool": [], "lock": []}
    for _ in range(3):  # alternate, take the median
        results["pool"].append(throughput(pool_call))
        results["lock"].append(throughput(locked_call))
    pool, locked = statistics.median(results["pool"]), statistics.median(results["lock"])
    return {"threads": threads, "requests_per_thread": per_thread, "pool_rps": pool,
            "lock_rps": locked, "pool_over_lock": pool / locked}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("bundle", nargs="?", help="bundle directory or .tar.gz")
    parser.add_argument("--runs", type=int, default=3000)
    parser.add_argument("--warmup", type=int, default=300)
    parser.add_argument("--cold-starts", type=int, default=5)
    parser.add_argument("--threads", type=int, default=4)
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args()

    bundle_path = resolve_bundle(args.bundle)
    rec = Recommender.load(bundle_path, num_threads=1)
    rng = random.Random(0)
    items = list(rec.bundle.item_ids[FIRST_ITEM_INDEX:])
    L = rec.history_length
    histories = [[rng.choice(items) for _ in range(rng.randint(1, 2 * L))] for _ in range(512)]

    result = {
        "bundle": str(bundle_path),
        "info": {k: v for k, v in rec.info().items() if k not in ("metrics", "build")},
        "machine": {"python": platform.python_version(), "platform": platform.platform(),
                    "processor": platform.machine()},
        "latency_us": measure_latency(rec, histories, args.runs, args.warmup),
        "cold_start": measure_cold_start(bundle_path, histories[0], args.cold_starts),
        "concurrency": measure_concurrency(rec, histories, args.threads, 500),
        "goals": GOALS,
    }
    lat, cold = result["latency_us"], result["cold_start"]
    result["goals_met"] = {
        "overhead_ratio": lat["overhead_ratio_vs_invoke"] <= GOALS["overhead_ratio_vs_invoke_max"],
        "cold_start": cold["total_ms"] <= GOALS["cold_start_ms_max"],
        "peak_rss": cold["peak_rss_mb"] <= GOALS["peak_rss_mb_max"],
    }
    write_text_atomic(args.out, json.dumps(result, indent=2) + "\n")
    print(f"bundle            {bundle_path}")
    print(f"recommend()       p50 {lat['recommend']['p50']:8.1f} us   p99 {lat['recommend']['p99']:8.1f} us")
    print(f"raw set+invoke+get p50 {lat['raw_set_invoke_get']['p50']:7.1f} us   invoke only p50 "
          f"{lat['raw_invoke']['p50']:.1f} us")
    print(f"python floor      p50 {lat['python_floor']['p50']:8.1f} us   ({lat['python_floor_ratio_vs_invoke']:.2f}x "
          "invoke: map ids, write input, invoke, read and tuple the top 10; nothing else)")
    print(f"overhead ratio    {lat['overhead_ratio_vs_invoke']:.2f}x (vs invoke), "
          f"{lat['overhead_ratio_vs_set_invoke_get']:.2f}x (vs set+invoke+get)   goal <= "
          f"{GOALS['overhead_ratio_vs_invoke_max']}x vs invoke")
    print(f"cold start        {cold['total_ms']:.1f} ms in-process (import {cold['import_ms']:.1f}, load "
          f"{cold['load_ms']:.1f}, first {cold['first_recommendation_ms']:.1f}; CPU "
          f"{cold['total_cpu_ms']:.1f} ms); whole child process {cold['process_wall_ms']:.1f} ms   "
          f"goal <= {GOALS['cold_start_ms_max']} ms")
    print(f"peak RSS          {cold['peak_rss_mb']:.1f} MB (child VmHWM, median)   goal <= "
          f"{GOALS['peak_rss_mb_max']} MB")
    conc = result["concurrency"]
    print(f"{conc['threads']} threads       pool {conc['pool_rps']:.0f} req/s, lock {conc['lock_rps']:.0f} "
          f"req/s ({conc['pool_over_lock']:.2f}x)")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
