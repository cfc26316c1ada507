"""``make bench``: every benchmark, then one Markdown summary.

1. data loading (1M interactions),
2. the demo build (``runs/demo``; reused when its report exists, ``--rebuild`` to redo it),
3. compression sizes and ratios from the demo report,
4. distillation (teacher vs baseline vs distilled student; also on ``EDGE_REC_DATA``),
5. low-rank factorization of the demo student's output layer (size and quality),
6. the device runtime (overhead, cold start, peak RSS) on the demo bundle,
7. ``edge-rec benchmark`` of int8 / float32 / teacher TFLite side by side, with the raw loop,
8. the default build on the shared real log, 3 seeds, and the published protocol on it (no
   filters, every user validating), 3 seeds (skipped with a message without the log),
   and training throughput before/after (``--skip-throughput`` skips it),
9. scaling with catalog size (1k/10k/100k items: teacher epoch, RSS, full vs sampled softmax,
   1 vs 2 local workers, int8 runtime latency and memory; ``--skip-scale`` skips it),
10. item features: cold-item quality on MovieLens (3 seeds) and synthetic-tv, catalog patch
    times, bytes per item (``--skip-cold-items``),
11. on-device personalization replays (``--skip-personalization``).

Results: ``benchmarks/results/*.json`` and ``benchmarks/results/SUMMARY.md``.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from benchmarks.stamp import current_stamp, staleness_markdown, stamp_result  # noqa: E402
from device_runtime.atomic_file import write_text_atomic  # noqa: E402
from edge_rec.passes import TEACHER, TFLITE_INT8, tflite_stage  # noqa: E402
from edge_rec.report import BuildReport  # noqa: E402

RESULTS = REPO / "benchmarks" / "results"
RUN_DIR = REPO / "runs" / "demo"
EDGE_REC = Path(sys.executable).parent / "edge-rec"


def run(step: str, args: list[str], ok_codes: tuple[int, ...] = (0,)) -> float:
    """Run one benchmark step as a child process; fail loudly when it fails."""
    print(f"\n=== {step}: {' '.join(args)}", flush=True)
    start = time.perf_counter()
    proc = subprocess.run(args, cwd=REPO)
    seconds = time.perf_counter() - start
    if proc.returncode not in ok_codes:
        raise SystemExit(f"benchmark step {step!r} failed with exit status {proc.returncode}")
    print(f"=== {step}: {seconds:.0f} s", flush=True)
    return seconds


def compression_summary(report: BuildReport) -> tuple[dict, str]:
    """Sizes and ratios the compression issue asks for, read from the demo build report."""
    stages = report.stages
    int8 = stages[TFLITE_INT8].size_bytes
    student32 = stages[tflite_stage("float32")].size_bytes
    teacher32 = stages[TEACHER].size_bytes
    result = {
        "int8_over_student_float32": int8 / student32,
        "int8_over_teacher_float32": int8 / teacher32,
        "int8_ndcg_over_teacher": stages[TFLITE_INT8].ndcg / stages[TEACHER].ndcg,
        "goals": {"int8_over_student_float32": 0.3, "int8_over_teacher_float32": 1 / 20,
                  "int8_ndcg_over_teacher": 0.95},
        "sparsity_sizes": report.sections.get("compression", {}),
        "stages": {name: {"params": st.params, "size_bytes": st.size_bytes, "gzip_bytes": st.gzip_bytes,
                          "sparsity": st.sparsity} for name, st in stages.items()},
    }
    lines = [
        "## Compression (demo build)",
        "",
        "| measure | value | goal |",
        "|---|---:|---:|",
        f"| int8 size / student float32 size | {result['int8_over_student_float32']:.3f} | ≤ 0.300 |",
        f"| int8 size / teacher float32 size | {result['int8_over_teacher_float32']:.4f} | ≤ 0.0500 |",
        f"| int8 NDCG@10 / teacher NDCG@10 | {result['int8_ndcg_over_teacher']:.3f} | ≥ 0.950 |",
        "",
    ]
    sizes = report.sections.get("compression", {})
    if sizes:
        lines += ["| model | sparsity | size (bytes) | gzip (bytes) |", "|---|---:|---:|---:|"]
        for name, entry in sizes.items():
            lines.append(f"| {name} | {entry['sparsity']:.2f} | {entry['size_bytes']:,} | {entry['gzip_bytes']:,} |")
        lines.append("")
    return result, "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rebuild", action="store_true", help="rebuild runs/demo even if it exists")
    parser.add_argument("--summary-only", action="store_true",
                        help="rewrite SUMMARY.md (with each result file's staleness) without running anything")
    parser.add_argument("--skip-distill", action="store_true", help="skip the separate distillation run")
    parser.add_argument("--skip-real-log", action="store_true", help="skip the 3-seed real-log builds (~45 min)")
    parser.add_argument("--skip-weak-order", action="store_true", help="skip the 3-seed weak-order builds")
    parser.add_argument("--skip-scale", action="store_true", help="skip the catalog-size scaling benchmark")
    parser.add_argument("--skip-throughput", action="store_true", help="skip the training-throughput comparison")
    parser.add_argument("--skip-cold-items", action="store_true",
                        help="skip the item-features benchmark (MovieLens and synthetic builds, ~50 min)")
    parser.add_argument("--skip-personalization", action="store_true",
                        help="skip the personalization replays (two real-log builds, ~30 min)")
    args = parser.parse_args()
    RESULTS.mkdir(parents=True, exist_ok=True)
    py = sys.executable
    timings: dict[str, float] = {}
    stamp = current_stamp()
    if args.summary_only:
        write_summary(timings)
        return

    timings["data_loading"] = run("data loading", [py, "benchmarks/data_loading.py"])
    if args.rebuild or not (RUN_DIR / "report.json").exists():
        timings["demo_build"] = run(
            "demo build",
            [str(EDGE_REC), "build", "--config", "examples/tv/config.toml", "--out", str(RUN_DIR), "--quiet"],
            ok_codes=(0, 3),  # 3: the quality gate failed, but the bundle and report were written
        )
    report = BuildReport.load(RUN_DIR)
    compression, compression_md = compression_summary(report)
    write_text_atomic(RESULTS / "compression.json", json.dumps(compression, indent=2) + "\n")
    write_text_atomic(RESULTS / "compression.md", compression_md)
    if not args.skip_distill:
        timings["distill"] = run(
            "distillation", [py, "benchmarks/distill.py", "--quiet", "--from-report", str(RUN_DIR / "report.json")]
        )
    timings["lowrank"] = run("low-rank", [py, "benchmarks/lowrank.py", "--quiet"])
    timings["runtime"] = run("device runtime", [py, "benchmarks/runtime.py", str(RUN_DIR / "bundle")])
    timings["device"] = run("edge-rec benchmark", [py, "benchmarks/device.py"])
    timings["update"] = run("signed updates", [py, "benchmarks/update.py", "--bundle", str(RUN_DIR / "bundle")])
    if not args.skip_real_log:
        timings["real_log"] = run("real log", [py, "benchmarks/real_log.py"])
        timings["filters_off"] = run("real log, filters off", [py, "benchmarks/real_log.py", "--name", "filters_off"])
    if not args.skip_throughput:
        timings["throughput"] = run("training throughput", [py, "benchmarks/throughput.py"])
    if not args.skip_weak_order:
        timings["weak_order"] = run("weak-order log", [py, "benchmarks/real_log.py", "--data", "synthetic-bulk",
                                                       "--name", "weak_order"])
    if not args.skip_scale:
        timings["scale"] = run("scale", [py, "benchmarks/scale.py"])
    if not args.skip_cold_items:
        timings["cold_items"] = run("item features: cold items, patches", [py, "benchmarks/cold_items.py"])
    if not args.skip_personalization:
        for step in ("prepare", "build", "report"):
            timings[f"personalization_{step}"] = run(f"personalization {step}",
                                                     [py, "benchmarks/personalization.py", step])

    for name in ("compression", "data_loading", "distill", "lowrank", "runtime", "device", "real_log", "filters_off",
                 "throughput", "weak_order", "scale"):
        if name in timings or name == "compression":
            stamp_result(name, stamp)
    write_summary(timings)


def write_summary(timings: dict[str, float]) -> None:
    """``SUMMARY.md``: which result files are current or stale, the demo report, every result."""
    parts = ["# edge-rec benchmark summary", "", staleness_markdown(),
             f"Machine: 2 shared cores; generated {time.strftime('%Y-%m-%d %H:%M')}. "
             "Every number is a median or percentile over many runs after warm-up.", "",
             "## Demo build report", "",
             (RUN_DIR / "report.md").read_text() if (RUN_DIR / "report.md").exists() else "(no demo build)",
             (RESULTS / "compression.md").read_text() if (RESULTS / "compression.md").exists() else ""]
    for name in ("real_log", "filters_off", "throughput", "weak_order", "cold_items", "distill", "lowrank", "runtime",
                 "device", "data_loading", "scale"):
        md = RESULTS / f"{name}.md"
        if md.exists():
            parts += [md.read_text(), ""]
        else:
            parts += [f"## {name}", "", "```json", (RESULTS / f"{name}.json").read_text().strip(), "```", ""]
    if timings:
        parts += ["## Benchmark wall time (s)", "", "```json", json.dumps({k: round(v) for k, v in timings.items()}),
                  "```", ""]
    path = write_text_atomic(RESULTS / "SUMMARY.md", "\n".join(parts))
    print(f"\nsummary: {path}")


if __name__ == "__main__":
    main()
