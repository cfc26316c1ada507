"""Training throughput: positions per second of the teacher and the student, before and after.

Measures, on the shared real log (``../shared/data/amazon-video-games.csv``, default filters,
history length 20, the sizes the sizing rule picks), how fast one training epoch runs for:

- the **teacher** (SASRec, width 64, 2 blocks, dropout 0.5, 1,024 sampled negatives) and
- the **student** (embedding 32, hidden [24], 1,024 sampled negatives),

each on the **baseline** tree (a ``git worktree`` of ``--baseline``, default the commit before
the throughput work) with its batch size, and on **this** tree with the same batch size (batches
cut to their longest row, the default), with length buckets (``fit.length_buckets``, off by
default: it costs quality) and with buckets at a larger batch. Every configuration runs in its own fresh process, rounds
interleaved (baseline, this, baseline, this, ...) so that a noisy neighbour hits both alike; an
epoch's time is the median over the epochs after the first (which traces the graphs).

Beside it, the machine's matmul rate (float32, 2048 x 2048, and the teacher's own 10,240 x 64 x
64 shape) and each model's floating-point work per epoch (the matmuls of the slots it computes:
attention projections, attention, feed-forward and the sampled output layer, forward and
backward = 3 x forward), so each epoch time is also given as a multiple of its FLOP bound.

Results: ``benchmarks/results/throughput.{json,md}``, stamped with the commit and date. Without
the shared log the benchmark says so and exits 0.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
LOG = REPO.parent / "shared" / "data" / "amazon-video-games.csv"
WORK = REPO / "benchmarks" / "work" / "throughput"
RESULTS = REPO / "benchmarks" / "results"
#: The last commit before the training-throughput work (bucketed batches, broadcast logQ).
BASELINE = "c2680a3"
HISTORY = 20
NEGATIVES = 1024
#: model -> (baseline batch size, this tree's default batch size), as the sizing rules set them
BATCHES = {"teacher": (128, 512), "student": (64, 256)}


def _child(tree: Path, model: str, batch: int, epochs: int, bucketed: bool = False) -> dict:
    """One configuration's epochs, in this process, with the code of ``tree``."""
    sys.path.insert(0, str(tree))
    from edge_rec.config import DataConfig, DistillConfig, StudentConfig, TeacherConfig
    from edge_rec.distill.distiller import Distiller
    from edge_rec.distill.negative_sampler import NegativeSampler
    from edge_rec.distill.training_input import sequence_batches
    from edge_rec.keras_shim import keras, set_global_seed
    from edge_rec.models import build_student, build_teacher
    from edge_rec.stages import prepare_data

    data = prepare_data(DataConfig(source=str(LOG), format="csv", history_length=HISTORY), seed=0)
    split = data.split
    set_global_seed(0)
    if model == "teacher":
        net = build_teacher(TeacherConfig(hidden=64, blocks=2, heads=2, dropout=0.5), split.catalog_size,
                            HISTORY, sequence=True)
    else:
        net = build_student(StudentConfig(embedding_dim=32, hidden=(24,)), split.catalog_size, HISTORY,
                            sequence=True)
    distiller = Distiller(net, None, DistillConfig().without_teacher(),
                          sampler=NegativeSampler(split.popularity(), NEGATIVES))
    distiller.compile(optimizer=keras.optimizers.Adam(1e-3))
    windows = split.training_windows(HISTORY)
    batches = sequence_batches(windows, HISTORY, batch, seed=0, **({"bucketed": True} if bucketed else {}))
    slots = sum(int(x.shape[0]) * int(x.shape[1]) for x, _ in batches)
    positions = sum(len(w) - 1 for w in windows)
    seconds: list[float] = []

    class Clock(keras.callbacks.Callback):
        def on_epoch_begin(self, epoch, logs=None):
            self.start = time.perf_counter()

        def on_epoch_end(self, epoch, logs=None):
            seconds.append(time.perf_counter() - self.start)

    distiller.fit(batches, epochs=epochs, verbose=0, callbacks=[Clock()])
    return {"positions": positions, "slots": slots, "epoch_seconds": seconds,
            "catalog": split.catalog_size, "windows": len(windows)}


def _matmul_rates() -> dict:
    """float32 matmul GFLOP/s: a large square one and the teacher's projection shape."""
    from edge_rec.keras_shim import tf

    def rate(m: int, k: int, n: int, repeats: int) -> float:
        a, b = tf.random.normal((m, k)), tf.random.normal((k, n))
        run = tf.function(lambda: tf.matmul(a, b))
        run()
        start = time.perf_counter()
        for _ in range(repeats):
            run()
        return 2.0 * m * k * n * repeats / (time.perf_counter() - start) / 1e9

    return {"square_2048": max(rate(2048, 2048, 2048, 10) for _ in range(3)),
            "teacher_10240x64x64": max(rate(10240, 64, 64, 200) for _ in range(3))}


def teacher_flops(slots: int, positions: int, hidden: int = 64, blocks: int = 2, width: int = HISTORY) -> float:
    """Forward + backward FLOPs of a teacher epoch: per computed slot and block, the Q/K/V/O
    projections (4 H^2), the feed-forward (2 H^2) and attention over at most ``width`` keys
    (2 width H); per real position the sampled output layer ((1 + S) x H); backward = 2 x forward."""
    body = slots * blocks * (6 * hidden * hidden + 2 * width * hidden)
    output = positions * (1 + NEGATIVES) * hidden
    return 3 * 2.0 * (body + output)


def student_flops(slots: int, positions: int) -> float:
    """Forward + backward FLOPs of a student epoch: the causal pooling (width x E per slot), the
    hidden layer (E x H per slot) and the sampled output ((1 + S) x H per real position)."""
    return 3 * 2.0 * (slots * (HISTORY * 32 + 32 * 24) + positions * (1 + NEGATIVES) * 24)


def _run_child(tree: Path, model: str, batch: int, epochs: int, bucketed: bool) -> dict:
    args = [sys.executable, __file__, "--child", str(tree), model, str(batch), str(epochs), str(int(bucketed))]
    print(f"=== {tree.name} {model} batch {batch}{' bucketed' if bucketed else ''}", file=sys.stderr, flush=True)
    proc = subprocess.run(args, cwd=REPO, capture_output=True, text=True)
    if proc.returncode != 0:
        raise SystemExit(f"throughput child failed ({' '.join(args)}):\n{proc.stderr[-2000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def _worktree(rev: str) -> Path:
    path = WORK / f"baseline-{rev}"
    if not path.exists():
        WORK.mkdir(parents=True, exist_ok=True)
        subprocess.run(["git", "worktree", "add", "--detach", str(path), rev], cwd=REPO, check=True,
                       capture_output=True)
    return path


def _commit() -> str:
    from benchmarks.stamp import current_stamp

    return current_stamp()["commit"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--baseline", default=BASELINE, help="the commit to compare with")
    parser.add_argument("--epochs", type=int, default=4, help="epochs per run (the first is a warm-up)")
    parser.add_argument("--rounds", type=int, default=2, help="interleaved runs of each configuration")
    parser.add_argument("--child", nargs=5, metavar=("TREE", "MODEL", "BATCH", "EPOCHS", "BUCKETED"),
                        help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        tree, model, batch, epochs, bucketed = args.child
        print(json.dumps(_child(Path(tree), model, int(batch), int(epochs), bucketed == "1")))
        return
    if not LOG.exists():
        print(f"throughput: {LOG} not found (the shared real log is not committed); skipped")
        return
    sys.path.insert(0, str(REPO))
    from device_runtime.atomic_file import write_text_atomic

    baseline = _worktree(args.baseline)
    configs = []
    for model, (old_batch, new_batch) in BATCHES.items():
        configs += [(model, "baseline", baseline, old_batch, False), (model, "this tree", REPO, old_batch, False),
                    (model, "this tree, length buckets", REPO, old_batch, True)]
        if new_batch != old_batch:
            configs.append((model, "this tree, length buckets", REPO, new_batch, True))
    runs: dict[tuple, list[dict]] = {}
    for _ in range(args.rounds):
        for model, label, tree, batch, bucketed in configs:
            runs.setdefault((model, label, batch), []).append(_run_child(tree, model, batch, args.epochs, bucketed))
    rates = _matmul_rates()
    rows = []
    for (model, label, batch), measured in runs.items():
        epochs = [s for run in measured for s in run["epoch_seconds"][1:]]
        epoch = statistics.median(epochs)
        first = measured[0]
        flops = (teacher_flops if model == "teacher" else student_flops)(first["slots"], first["positions"])
        rows.append({
            "model": model, "code": label, "batch_size": batch, "epoch_seconds_median": round(epoch, 2),
            "epoch_seconds": [round(s, 2) for s in epochs], "positions": first["positions"],
            "slots_computed": first["slots"], "positions_per_second": round(first["positions"] / epoch),
            "gflop_per_epoch": round(flops / 1e9, 1),
            "flop_bound_seconds": round(flops / (rates["square_2048"] * 1e9), 2),
            "times_flop_bound": round(epoch / (flops / (rates["square_2048"] * 1e9)), 1),
        })
    for row in rows:
        reference = next(r for r in rows if r["model"] == row["model"] and r["code"] == "baseline")
        row["speedup_vs_baseline"] = round(reference["epoch_seconds_median"] / row["epoch_seconds_median"], 2)
    result = {"commit": _commit(), "baseline_commit": args.baseline, "date": time.strftime("%Y-%m-%d %H:%M"),
              "log": LOG.name, "history_length": HISTORY, "negatives": NEGATIVES,
              "matmul_gflops": {k: round(v, 1) for k, v in rates.items()}, "rows": rows}
    RESULTS.mkdir(parents=True, exist_ok=True)
    write_text_atomic(RESULTS / "throughput.json", json.dumps(result, indent=2) + "\n")
    lines = [
        "## Training throughput",
        "",
        f"Commit {result['commit']} against {args.baseline}, {result['date']}; shared real log "
        f"(default filters), history {HISTORY}, {NEGATIVES} sampled negatives; {args.rounds} interleaved "
        f"fresh processes per configuration, median of epochs 2-{args.epochs} of each. Machine matmul rate: "
        f"{rates['square_2048']:.0f} GFLOP/s (2048²), {rates['teacher_10240x64x64']:.0f} GFLOP/s "
        "(10,240 x 64 x 64, the teacher's projection shape).",
        "",
        "| model | code | batch | slots computed | positions/s | epoch (s) | GFLOP/epoch | × FLOP bound | speed-up |",
        "|---|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in rows:
        lines.append(f"| {r['model']} | {r['code']} | {r['batch_size']} | {r['slots_computed']:,} | "
                     f"{r['positions_per_second']:,} | {r['epoch_seconds_median']:.2f} | {r['gflop_per_epoch']:.0f} | "
                     f"{r['times_flop_bound']:.1f} | {r['speedup_vs_baseline']:.2f}x |")
    lines += ["", "Slots computed: batch rows x columns over an epoch (the baseline pads every row to the "
              "history length; this tree cuts each batch to its longest row, rows grouped by length). "
              "× FLOP bound: the epoch's time over the time its matmul work takes at the 2048² rate.", ""]
    write_text_atomic(RESULTS / "throughput.md", "\n".join(lines))
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
