"""Scaling: teacher training and the device runtime against catalog size; 1 vs 2 local workers.

    .venv/bin/python benchmarks/scale.py [--catalogs 1000 10000 100000] [--users 4000]
                                         [--full-max 100000] [--runs 2000] [--large-log]
                                         [--softmax-pair LOG [--pair-epochs 5 7]]
                                         [--skip-training] [--skip-workers] [--skip-device]

Writes ``benchmarks/results/scale.json``, ``scale.md`` and ``scale.png`` (when matplotlib is
installed). Every measurement runs in a fresh child process; peak RSS is the child's
``ru_maxrss`` from ``os.wait4`` (training) or the child's own ``getrusage`` (serving).

1. A seeded synthetic log per catalog size: ``--users`` users with 30 interactions each; each
   next item is a near neighbour of the previous one (a learnable sequence) or a Zipf(1.1) draw,
   and every item occurs at least once, so the catalog after filtering is the size asked for.
2. ``edge-rec train-teacher`` for one epoch (SASRec, hidden 32, 1 block, history 20, batch 64,
   ``min_item_interactions = 1``) with ``[softmax] mode = "full"`` and ``"sampled"`` (1024
   shared negatives): training seconds (the epoch plus its validation ranking, from
   metrics.json), process wall time, peak RSS, test NDCG@10 (full ranking). Full softmax is
   skipped above ``--full-max`` items.
3. The smallest catalog, full softmax, once more on 2 local workers (``TF_CONFIG`` on
   127.0.0.1): a correctness run with the time it took, beside the 1-process run.
4. ``--large-log``: a seeded log of 10M interactions (100,000 users x 100, 100,000 items) written
   as in 1, then the same one-epoch teacher (sampled softmax) on it: seconds to load and prepare
   the log, to train the epoch and to validate it (from metrics.json), and the peak RSS (goal:
   <= 8 GB). The examples stream from a tf.data pipeline, so memory is the log plus a few batches.
5. ``--softmax-pair LOG`` (a real CSV log, e.g. the shared Amazon video-games log): the default
   teacher (no config but ``[softmax] mode``, sizes from the log, seed 0) trained with the full and
   the sampled softmax *at the same time* (same CPU contention), each for the epochs of
   ``--pair-epochs FULL SAMPLED``, chosen so both take about the same wall time; test NDCG@10,
   epochs and seconds of each, and the ratio sampled/full.
6. The device side: an untrained int8 bundle per catalog size (the demo student: embedding 15,
   hidden 16, position pooling, history 50, top-K 100): model and items.tsv sizes,
   ``Recommender.recommend`` p50/p99 on one thread next to the raw interpreter invoke (median of 3
   fresh processes each), items.tsv parse time, cold start (import + load + first recommendation) and the peak RSS of a fresh
   serving process that never imports TensorFlow (goals: p99 <= 1 ms, RSS <= 64 MB at 100k).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import socket
import statistics
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from device_runtime.atomic_file import write_text_atomic  # noqa: E402

WORK = REPO / "benchmarks" / "work" / "scale"
RESULTS = REPO / "benchmarks" / "results"
GOALS = {"recommend_p99_ms_max": 1.0, "serving_peak_rss_mb_max": 64}
HISTORY_PER_USER = 30
CHILD_TIMEOUT = 3600

TEACHER_CONFIG = """seed = 0
[data]
history_length = 20
min_user_interactions = 5
min_item_interactions = 1
[teacher]
hidden = 32
blocks = 1
heads = 2
fit = {{ epochs = 1, batch_size = 64 }}
[softmax]
mode = "{mode}"
negatives = 1024
"""

#: The --large-log step: issue 14's 10M-interaction log and its peak-RSS goal for one teacher epoch.
LARGE_LOG = {"users": 100_000, "items": 100_000, "per_user": 100}
LARGE_LOG_RSS_GOAL_MB = 8 * 1024

#: The --softmax-pair step: the defaults a user gets (sizes from the log), only the softmax set.
PAIR_CONFIG = """seed = 0
[softmax]
mode = "{mode}"
"""
PAIR_MODES = ("full", "sampled")

#: Builds an untrained demo-shaped int8 bundle with a given number of items (ids ``show-i``).
BUNDLE_BUILDER = REPO / "benchmarks" / "demo_shaped_bundle.py"

COLD_START_CHILD = r"""
import sys, time
t0 = time.perf_counter()
import json, resource
from device_runtime.recommender import Recommender
t_import = time.perf_counter()
rec = Recommender.load(sys.argv[1], num_threads=1)
t_load = time.perf_counter()
rec.recommend(json.loads(sys.argv[2]), k=10)
t_first = time.perf_counter()
print(json.dumps({
    "import_ms": (t_import - t0) * 1e3, "load_ms": (t_load - t_import) * 1e3,
    "first_recommendation_ms": (t_first - t_load) * 1e3, "cold_start_ms": (t_first - t0) * 1e3,
    "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
    "tensorflow_imported": any(m.split(".")[0] in ("tensorflow", "tf_keras") for m in sys.modules),
}))
"""

LATENCY_CHILD = r"""
import sys, time, json, random, resource, statistics
from pathlib import Path
from device_runtime.bundle import ITEMS_FILE, parse_items_tsv
from device_runtime.benchmarking.engine import time_calls
from device_runtime.benchmarking.latency_stats import summarize_ns
from device_runtime.recommender import Recommender
bundle, runs = sys.argv[1], int(sys.argv[2])
rec = Recommender.load(bundle, num_threads=1)
ids = rec.bundle.item_ids[2:]
catalog = len(ids) + 2
raw = (Path(bundle) / ITEMS_FILE).read_bytes()
parse = summarize_ns(time_calls(lambda _: parse_items_tsv(raw, catalog), [None], runs=5))
rng = random.Random(0)
histories = [[rng.choice(ids) for _ in range(50)] for _ in range(200)]
stats = summarize_ns(time_calls(lambda h: rec.recommend(h, k=10), histories, runs=runs, warmup=len(histories)))
print(json.dumps({"recommend_p50_ms": stats.p50 / 1e3, "recommend_p99_ms": stats.p99 / 1e3, "recommend_mean_ms":
                  stats.mean / 1e3, "runs": runs,
                  "items_tsv_parse_ms": parse.p50 / 1e3,
                  "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}))
"""

RAW_INVOKE_CHILD = r"""
import sys, time, json
import numpy as np
from device_runtime.benchmarking.engine import time_calls
from device_runtime.benchmarking.latency_stats import summarize_ns
from device_runtime.interpreter import create_interpreter
model, runs = sys.argv[1], int(sys.argv[2])
interpreter = create_interpreter(open(model, "rb").read(), num_threads=1)
interpreter.allocate_tensors()
detail = interpreter.get_input_details()[0]
rng = np.random.default_rng(0)
inputs = [rng.integers(2, 1000, size=detail["shape"]).astype(detail["dtype"]) for _ in range(200)]
stats = summarize_ns(time_calls(lambda _: interpreter.invoke(), inputs, runs=runs, warmup=len(inputs),
                                prepare=lambda x: interpreter.set_tensor(detail["index"], x)))
print(json.dumps({"invoke_p50_ms": stats.p50 / 1e3, "invoke_p99_ms": stats.p99 / 1e3}))
"""


def child_env(extra: dict[str, str] | None = None) -> dict[str, str]:
    env = dict(os.environ, PYTHONPATH=str(REPO))
    env.pop("TF_CONFIG", None)
    env.update(extra or {})
    return env


def run_measured(args: list[str], *, env: dict[str, str], log: Path) -> dict:
    """Run a child to completion (bounded); its wall time, exit status and peak RSS (os.wait4)."""
    start = time.perf_counter()
    with log.open("w") as handle:
        proc = subprocess.Popen(args, env=env, cwd=REPO, stdout=handle, stderr=subprocess.STDOUT)
        deadline = start + CHILD_TIMEOUT
        while True:
            pid, status, usage = os.wait4(proc.pid, os.WNOHANG)
            if pid:
                break
            if time.perf_counter() > deadline:
                proc.kill()
                pid, status, usage = os.wait4(proc.pid, 0)
                break
            time.sleep(0.2)
    proc.returncode = os.waitstatus_to_exitcode(status)
    return {"exit": proc.returncode, "wall_s": round(time.perf_counter() - start, 2),
            "peak_rss_mb": round(usage.ru_maxrss / 1024, 1)}


def python_json(code: str, *args: str) -> dict:
    out = subprocess.run([sys.executable, "-c", code, *args], capture_output=True, text=True, check=True,
                         cwd=REPO, env={"PYTHONPATH": str(REPO), "PATH": "/usr/bin:/bin"},
                         timeout=CHILD_TIMEOUT)
    return json.loads(out.stdout.strip().splitlines()[-1])


# ---------------------------------------------------------------- the synthetic log


def write_log(path: Path, catalog: int, users: int, *, per_user: int = HISTORY_PER_USER, seed: int = 0) -> dict:
    """A seeded CSV log: ``users`` x ``per_user`` interactions over ``catalog`` items, every item at least once."""
    rng = np.random.default_rng(seed)
    total = users * per_user
    if total < catalog:
        raise SystemExit(f"--users {users}: {total} interactions cannot cover {catalog} items")
    ranks = np.arange(1, catalog + 1, dtype=np.float64)
    popularity = ranks ** -1.1
    popularity /= popularity.sum()
    items = np.empty((users, per_user), np.int64)
    items[:, 0] = rng.choice(catalog, size=users, p=popularity)
    jumps = rng.choice(catalog, size=(users, per_user), p=popularity)
    near = rng.random((users, per_user)) < 0.6
    steps = rng.integers(1, 4, size=(users, per_user))
    for t in range(1, per_user):
        items[:, t] = np.where(near[:, t], (items[:, t - 1] + steps[:, t]) % catalog, jumps[:, t])
    # every item at least once: overwrite some interactions (not the first of a user) with the missing items
    missing = np.setdiff1d(np.arange(catalog), items)
    slots = rng.choice(users * (per_user - 1), size=len(missing), replace=False)
    flat = items[:, 1:].reshape(-1)
    flat[slots] = missing
    items[:, 1:] = flat.reshape(users, per_user - 1)
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", encoding="utf-8") as handle:
        handle.write("user_id,item_id,timestamp\n")
        for user in range(users):
            for t in range(per_user):
                handle.write(f"u{user},i{items[user, t]},{1_600_000_000 + t * 60}\n")
    return {"users": users, "interactions": total, "distinct_items": int(len(np.unique(items)))}


# ---------------------------------------------------------------- training


def train_teacher(log_path: Path, catalog: int | None, mode: str, out: Path, *, tf_config: str | None = None,
                  config_text: str = TEACHER_CONFIG, extra_args: tuple[str, ...] = ()) -> dict:
    """``edge-rec train-teacher`` in a measured child (``config_text`` formatted with ``mode``): exit,
    wall time, peak RSS and what its metrics.json says (seconds to load, train and validate, quality)."""
    config = WORK / f"{out.name}.toml"
    config.write_text(config_text.format(mode=mode))
    args = [sys.executable, "-m", "edge_rec.cli", "train-teacher", "--config", str(config), "--data",
            str(log_path), "--out", str(out), "--quiet", "--json", *extra_args]
    env = child_env({"TF_CONFIG": tf_config} if tf_config else None)
    measured = run_measured(args, env=env, log=out.with_suffix(".log"))
    record = {"catalog": catalog, "softmax": mode, **measured}
    metrics_file = out / "metrics.json"
    if measured["exit"] == 0 and metrics_file.exists():
        metrics = json.loads(metrics_file.read_text())
        record.update(
            catalog_size=metrics["catalog_size"], params=metrics["params"],
            training_seconds=metrics["training_seconds"], test_ndcg10=metrics["test"]["ndcg@10"],
            test_hr10=metrics["test"]["hr@10"], strategy=metrics.get("strategy"),
            num_workers=metrics.get("num_workers"), epochs_run=metrics["epochs_run"],
            data_seconds=metrics.get("data_seconds"), validation_seconds=metrics.get("validation_seconds"),
        )
    print(f"  train {catalog} items {mode}: {record}", flush=True)
    return record


def free_ports(count: int) -> list[int]:
    sockets = [socket.socket() for _ in range(count)]
    for s in sockets:
        s.bind(("127.0.0.1", 0))
    ports = [s.getsockname()[1] for s in sockets]
    for s in sockets:
        s.close()
    return ports


def two_workers(log_path: Path, catalog: int, out: Path) -> dict:
    """The same 1-epoch teacher on 2 local worker processes; the chief's metrics and the time."""
    addresses = [f"127.0.0.1:{port}" for port in free_ports(2)]
    config = WORK / "teacher-full.toml"
    config.write_text(TEACHER_CONFIG.format(mode="full"))
    args = [sys.executable, "-m", "edge_rec.cli", "train-teacher", "--config", str(config), "--data",
            str(log_path), "--out", str(out), "--quiet", "--json"]
    start = time.perf_counter()
    procs = []
    for index in range(2):
        tf_config = json.dumps({"cluster": {"worker": addresses}, "task": {"type": "worker", "index": index}})
        log = (out.parent / f"{out.name}-worker{index}.log").open("w")
        procs.append((subprocess.Popen(args, env=child_env({"TF_CONFIG": tf_config, "EDGE_REC_PEER_TIMEOUT": "300"}),
                                       cwd=REPO, stdout=log, stderr=subprocess.STDOUT), log))
    codes = []
    for proc, log in procs:
        try:
            codes.append(proc.wait(timeout=CHILD_TIMEOUT))
        except subprocess.TimeoutExpired:
            proc.kill()
            codes.append(proc.wait())
        log.close()
    record = {"catalog": catalog, "softmax": "full", "workers": 2, "exit": codes,
              "wall_s": round(time.perf_counter() - start, 2)}
    if all(code == 0 for code in codes):
        metrics = json.loads((out / "metrics.json").read_text())
        record.update(training_seconds=metrics["training_seconds"], test_ndcg10=metrics["test"]["ndcg@10"],
                      strategy=metrics["strategy"], num_workers=metrics["num_workers"])
    print(f"  2 workers: {record}", flush=True)
    return record


def large_log() -> dict:
    """The --large-log step: write the 10M-interaction log once, then one measured teacher epoch on it."""
    log_path = WORK / f"log-{LARGE_LOG['users']}x{LARGE_LOG['per_user']}-{LARGE_LOG['items']}.csv"
    start = time.perf_counter()
    written = write_log(log_path, LARGE_LOG["items"], LARGE_LOG["users"], per_user=LARGE_LOG["per_user"])
    write_s = round(time.perf_counter() - start, 1)
    out = WORK / "teacher-large-sampled"
    shutil.rmtree(out, ignore_errors=True)
    record = train_teacher(log_path, LARGE_LOG["items"], "sampled", out)
    record.update(log=written, log_mb=round(log_path.stat().st_size / 2**20, 1), write_log_s=write_s,
                  rss_goal_mb=LARGE_LOG_RSS_GOAL_MB)
    if record["exit"] == 0:
        record["epoch_seconds"] = round(record["training_seconds"] - record["validation_seconds"], 3)
    return record


def softmax_pair(log_path: Path, epochs: dict[str, int]) -> dict:
    """The --softmax-pair step: the default teacher with the full and the sampled softmax, both
    children started together (each sees the other and the same other jobs on the cores)."""
    def run(mode: str) -> dict:
        out = WORK / f"pair-{mode}"
        shutil.rmtree(out, ignore_errors=True)
        return train_teacher(log_path, None, mode, out, config_text=PAIR_CONFIG,
                             extra_args=("--data-format", "csv", "--seed", "0", "--epochs", str(epochs[mode])))

    with ThreadPoolExecutor(len(PAIR_MODES)) as pool:
        runs = dict(zip(PAIR_MODES, pool.map(run, PAIR_MODES), strict=True))
    record: dict = {"log": str(log_path), "epochs": epochs, "runs": runs}
    if all(r["exit"] == 0 for r in runs.values()):
        full, sampled = runs["full"], runs["sampled"]
        record.update(ndcg_ratio_sampled_over_full=round(sampled["test_ndcg10"] / full["test_ndcg10"], 4),
                      training_seconds_ratio=round(sampled["training_seconds"] / full["training_seconds"], 3))
    return record


# ---------------------------------------------------------------- device side


def device_side(catalog: int, runs: int) -> dict:
    bundle = WORK / f"bundle-{catalog}"
    if not (bundle / "manifest.json").exists():
        build = run_measured([sys.executable, str(BUNDLE_BUILDER), str(bundle), str(catalog)],
                             env=child_env(), log=WORK / f"bundle-{catalog}.log")
        if build["exit"] != 0:
            raise SystemExit(f"building the {catalog}-item bundle failed; see {WORK / f'bundle-{catalog}.log'}")
    history = [f"show-{i}" for i in range(0, min(catalog, 50))]
    cold = [python_json(COLD_START_CHILD, str(bundle), json.dumps(history)) for _ in range(5)]
    # three fresh processes each (interleaved); the median of their percentiles, so one burst of
    # another job on the shared cores does not decide the p99
    latencies, raws = [], []
    for _ in range(3):
        latencies.append(python_json(LATENCY_CHILD, str(bundle), str(runs)))
        raws.append(python_json(RAW_INVOKE_CHILD, str(bundle / "model.tflite"), str(runs)))
    latency = {key: statistics.median(x[key] for x in latencies) for key in latencies[0]}
    raw = {key: statistics.median(x[key] for x in raws) for key in raws[0]}
    record = {
        "catalog": catalog,
        "model_bytes": (bundle / "model.tflite").stat().st_size,
        "items_tsv_bytes": (bundle / "items.tsv").stat().st_size,
        **{key: round(value, 4) for key, value in latency.items() if key != "peak_rss_mb"},
        **{key: round(value, 4) for key, value in raw.items()},
        "cold_start_ms": round(statistics.median(c["cold_start_ms"] for c in cold), 1),
        "cold_start_load_ms": round(statistics.median(c["load_ms"] for c in cold), 1),
        "serving_peak_rss_mb": round(statistics.median(c["peak_rss_mb"] for c in cold), 1),
        "latency_process_peak_rss_mb": round(latency["peak_rss_mb"], 1),
        "tensorflow_imported": any(c["tensorflow_imported"] for c in cold),
        "recommend_p99_ms_each_process": [round(x["recommend_p99_ms"], 4) for x in latencies],
    }
    print(f"  device {catalog} items: {record}", flush=True)
    return record


# ---------------------------------------------------------------- report


def markdown(result: dict) -> str:
    lines = ["# Scaling with catalog size", "", result["what"], ""]
    lines += ["## Teacher, one epoch (SASRec hidden 32, 1 block, history 20, batch 64)", "",
              "| items | logits (after filtering) | softmax | training s (epoch + validation) | process wall s | "
              "peak RSS MB | test NDCG@10 |",
              "|---:|---:|---|---:|---:|---:|---:|"]
    for r in result["training"]:
        if r["exit"] != 0:
            lines.append(f"| {r['catalog']:,} | | {r['softmax']} | failed (exit {r['exit']}) | {r['wall_s']} | "
                         f"{r['peak_rss_mb']} | |")
            continue
        lines.append(f"| {r['catalog']:,} | {r['catalog_size']:,} | {r['softmax']} | {r['training_seconds']:.1f} | "
                     f"{r['wall_s']:.1f} | "
                     f"{r['peak_rss_mb']:.0f} | {r['test_ndcg10']:.4f} |")
    for skipped in result.get("skipped", []):
        lines.append(f"| {skipped['catalog']:,} | | {skipped['softmax']} | skipped: {skipped['reason']} | | | |")
    for catalog in sorted({r["catalog"] for r in result["training"]}):
        pair = {r["softmax"]: r for r in result["training"] if r["catalog"] == catalog and r["exit"] == 0}
        if {"full", "sampled"} <= set(pair):
            full, sampled = pair["full"], pair["sampled"]
            lines.append(
                f"\n{catalog:,} items: sampled/full training time {sampled['training_seconds'] / full['training_seconds']:.2f}x, "
                f"test NDCG@10 sampled/full {sampled['test_ndcg10'] / full['test_ndcg10']:.3f}, "
                f"peak RSS sampled/full {sampled['peak_rss_mb'] / full['peak_rss_mb']:.2f}x."
            )
    workers = result.get("workers")
    if workers:
        one, two = workers["one"], workers["two"]
        lines += ["", f"## 1 vs 2 local workers ({one['catalog']:,} items, full softmax, 1 epoch, same global batch)", "",
                  "| workers | exit | wall s | training s | test NDCG@10 | strategy |", "|---:|---|---:|---:|---:|---|"]
        for n, r in ((1, one), (2, two)):
            lines.append(f"| {n} | {r['exit']} | {r['wall_s']:.1f} | {r.get('training_seconds', float('nan')):.1f} | "
                         f"{r.get('test_ndcg10', float('nan')):.4f} | {r.get('strategy')} |")
        lines += ["", "Two workers on the same 2 cores only check that the cluster trains correctly; "
                  "they are not expected to be faster than one process here."]
    lines += large_log_markdown(result.get("large_log"))
    lines += softmax_pair_markdown(result.get("softmax_pair"))
    lines += ["", "## Device side: untrained int8 bundle (embedding 15, hidden 16, history 50, top-K 100), one thread", "",
              "| items | model KB | items.tsv KB | recommend p50 ms | p99 ms | raw invoke p50 ms | p99 ms | "
              "items.tsv parse ms | cold start ms | serving peak RSS MB |",
              "|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for r in result["device"]:
        lines.append(f"| {r['catalog']:,} | {r['model_bytes'] / 1024:.0f} | {r['items_tsv_bytes'] / 1024:.0f} | "
                     f"{r['recommend_p50_ms']:.3f} | {r['recommend_p99_ms']:.3f} | {r['invoke_p50_ms']:.3f} | "
                     f"{r['invoke_p99_ms']:.3f} | "
                     f"{r['items_tsv_parse_ms']:.1f} | {r['cold_start_ms']:.0f} | {r['serving_peak_rss_mb']:.1f} |")
    lines += ["", f"Goals at 100k items: recommend p99 <= {GOALS['recommend_p99_ms_max']} ms, serving peak RSS "
              f"<= {GOALS['serving_peak_rss_mb_max']} MB. recommend() and the raw invoke are timed in separate "
              "fresh processes; when both p99s are high together, the tail is the shared machine (other jobs "
              "on the 2 cores), not the runtime. Cold start = import + load (hash check, items.tsv) + first "
              "recommendation, median of 5 fresh processes; RSS = their ru_maxrss.", ""]
    return "\n".join(lines)


def large_log_markdown(r: dict | None) -> list[str]:
    """The --large-log section (empty when that step never ran); a ``note`` added to its record by
    hand (what else shared the machine) is printed under the table, as in the --softmax-pair one."""
    if not r:
        return []
    log = r["log"]
    lines = ["", f"## {log['interactions']:,} interactions: one teacher epoch (the teacher above, sampled softmax)", "",
             f"{log['users']:,} users x {log['interactions'] // log['users']} interactions over "
             f"{log['distinct_items']:,} items (CSV, {r['log_mb']:,.0f} MB, written in {r['write_log_s']:.0f} s); "
             "one `edge-rec train-teacher` child process."]
    if r["exit"] != 0:
        return lines + ["", f"Failed: exit {r['exit']} after {r['wall_s']:.0f} s, peak RSS {r['peak_rss_mb']:.0f} MB."]
    goal = "meets" if r["peak_rss_mb"] <= r["rss_goal_mb"] else "misses"
    return lines + [
        "", "| logits | load + prepare s | epoch s | validation s | process wall s | peak RSS MB | test NDCG@10 |",
        "|---:|---:|---:|---:|---:|---:|---:|",
        f"| {r['catalog_size']:,} | {r['data_seconds']:.1f} | {r['epoch_seconds']:.1f} | {r['validation_seconds']:.1f} | "
        f"{r['wall_s']:.0f} | {r['peak_rss_mb']:.0f} | {r['test_ndcg10']:.4f} |",
        "", f"Peak RSS {r['peak_rss_mb'] / 1024:.2f} GB {goal} the goal of <= {r['rss_goal_mb'] / 1024:.0f} GB. "
        "Validation ranks the whole catalog for every user; the process wall time also holds the imports, "
        "the test ranking and saving the model.", *(["", r["note"]] if r.get("note") else [])]


def softmax_pair_markdown(r: dict | None) -> list[str]:
    """The --softmax-pair section (empty when that step never ran)."""
    if not r:
        return []
    lines = ["", "## Full vs sampled softmax at equal wall time (real log, default teacher)", "",
             f"`edge-rec train-teacher --data {Path(r['log']).name} --data-format csv --seed 0 --epochs N` with "
             "no config but `[softmax] mode`, both processes started together so they share the cores; "
             "the epoch counts were chosen so both take about the same wall time.", "",
             "| softmax | epochs | training s (validation included) | of which validation s | process wall s | "
             "peak RSS MB | test NDCG@10 | HR@10 |",
             "|---|---:|---:|---:|---:|---:|---:|---:|"]
    for mode, run in r["runs"].items():
        if run["exit"] != 0:
            lines.append(f"| {mode} | {r['epochs'][mode]} | failed (exit {run['exit']}) | | {run['wall_s']:.0f} | | | |")
            continue
        lines.append(f"| {mode} | {run['epochs_run']} | {run['training_seconds']:.0f} | {run['validation_seconds']:.0f} | "
                     f"{run['wall_s']:.0f} | {run['peak_rss_mb']:.0f} | {run['test_ndcg10']:.4f} | {run['test_hr10']:.4f} |")
    if "ndcg_ratio_sampled_over_full" in r:
        lines += ["", f"Test NDCG@10 sampled/full: {r['ndcg_ratio_sampled_over_full']:.3f} (goal: >= 0.97) at "
                  f"{r['training_seconds_ratio']:.2f}x the training seconds; one seed, one run each."]
    return lines + (["", r["note"]] if r.get("note") else [])


def chart(result: dict, path: Path) -> bool:
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return False
    fig, axes = plt.subplots(1, 3, figsize=(14, 4))
    for mode in ("full", "sampled"):
        rows = [r for r in result["training"] if r["softmax"] == mode and r["exit"] == 0]
        if rows:
            axes[0].plot([r["catalog"] for r in rows], [r["training_seconds"] for r in rows], "o-", label=mode)
            axes[1].plot([r["catalog"] for r in rows], [r["peak_rss_mb"] for r in rows], "o-", label=mode)
    device = result["device"]
    axes[2].plot([r["catalog"] for r in device], [r["recommend_p50_ms"] for r in device], "o-", label="p50")
    axes[2].plot([r["catalog"] for r in device], [r["recommend_p99_ms"] for r in device], "o-", label="p99")
    titles = ("teacher epoch + validation (s)", "teacher peak RSS (MB)", "recommend() latency (ms), int8")
    for ax, title in zip(axes, titles, strict=True):
        ax.set_xscale("log")
        ax.set_xlabel("catalog items")
        ax.set_title(title)
        ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return True


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--catalogs", type=int, nargs="+", default=[1000, 10000, 100000])
    parser.add_argument("--users", type=int, default=4000)
    parser.add_argument("--full-max", type=int, default=100000, help="skip full softmax above this many items")
    parser.add_argument("--runs", type=int, default=2000, help="timed recommend() calls per catalog")
    parser.add_argument("--skip-training", action="store_true",
                        help="device side only; training results of an earlier scale.json are kept")
    parser.add_argument("--skip-workers", action="store_true")
    parser.add_argument("--skip-device", action="store_true",
                        help="no device side; device results of an earlier scale.json are kept")
    parser.add_argument("--large-log", action="store_true",
                        help="also one teacher epoch on a 10M-interaction log (100k users, 100k items)")
    parser.add_argument("--softmax-pair", type=Path, default=None, metavar="LOG",
                        help="also the default teacher, full vs sampled softmax, run together on this CSV log")
    parser.add_argument("--pair-epochs", type=int, nargs=2, default=[5, 7], metavar=("FULL", "SAMPLED"),
                        help="epochs of each run of --softmax-pair (about equal wall time on 2 cores)")
    args = parser.parse_args()
    WORK.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    result: dict = {
        "what": (f"Synthetic seeded logs ({args.users} users x {HISTORY_PER_USER} interactions, next item a near "
                 "neighbour or a Zipf(1.1) draw, every item present); every number from a fresh child process; "
                 f"{os.cpu_count()} cores shared with other jobs, so times are indicative (one run each)."),
        "machine": {"python": platform.python_version(), "cpus": os.cpu_count(), "platform": platform.platform()},
        "training": [], "skipped": [], "device": [], "goals": GOALS,
    }
    earlier = json.loads((RESULTS / "scale.json").read_text()) if (RESULTS / "scale.json").exists() else {}
    kept = [*(("what", "training", "skipped", "workers", "logs") if args.skip_training else ()),
            *(("device",) if args.skip_device else ()), *(("large_log",) if not args.large_log else ()),
            *(("softmax_pair",) if args.softmax_pair is None else ())]
    result.update({key: earlier[key] for key in kept if key in earlier})
    def save() -> None:  # after every step, so an interrupted run still leaves its numbers
        result["seconds"] = round(time.perf_counter() - started, 1)
        RESULTS.mkdir(parents=True, exist_ok=True)
        write_text_atomic(RESULTS / "scale.json", json.dumps(result, indent=2) + "\n")
        write_text_atomic(RESULTS / "scale.md", markdown(result))

    for catalog in () if args.skip_device else args.catalogs:  # the device side first: it is quick
        result["device"].append(device_side(catalog, args.runs))
        save()
    if args.large_log:
        result["large_log"] = large_log()
        print(f"  large log: {result['large_log']}", flush=True)
        save()
    if args.softmax_pair is not None:
        result["softmax_pair"] = softmax_pair(args.softmax_pair, dict(zip(PAIR_MODES, args.pair_epochs, strict=True)))
        save()
    logs = {}
    if not args.skip_training:
        for catalog in args.catalogs:
            log_path = WORK / f"log-{catalog}.csv"
            result.setdefault("logs", {})[str(catalog)] = write_log(log_path, catalog, args.users)
            logs[catalog] = log_path
            for mode in ("sampled", "full"):
                if mode == "full" and catalog > args.full_max:
                    result["skipped"].append({"catalog": catalog, "softmax": mode, "reason": f"--full-max {args.full_max}"})
                    continue
                result["training"].append(train_teacher(log_path, catalog, mode, WORK / f"teacher-{catalog}-{mode}"))
                save()
        if not args.skip_workers:
            smallest = min(args.catalogs)
            one = next(r for r in result["training"] if r["catalog"] == smallest and r["softmax"] == "full")
            result["workers"] = {"one": one, "two": two_workers(logs[smallest], smallest, WORK / f"teacher-{smallest}-2w")}
    save()
    if chart(result, RESULTS / "scale.png"):
        print(f"chart: {RESULTS / 'scale.png'}")
    print(markdown(result))


if __name__ == "__main__":
    main()
