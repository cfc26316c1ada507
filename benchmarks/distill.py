"""What distillation buys: teacher, baseline student (alone, α=1) and distilled student.

Trains the three models with the configuration's sizes, seeds and epochs on ``synthetic-tv``
(and on the interaction file named by ``EDGE_REC_DATA`` when set, e.g. a MovieLens ``u.data``),
evaluates them and the popularity baseline on the same leave-last-out test split with the
shared metrics, and writes ``benchmarks/results/distill.json`` and ``distill.md`` (HR@10,
NDCG@10, MRR, parameters, training seconds). The baseline and the distilled student share the
code path, seed and epochs; only the teacher's terms differ.

    .venv/bin/python benchmarks/distill.py [--config CFG] [--from-report RUN_DIR/report.json] [--quiet]

``make bench`` passes ``--from-report runs/demo/report.json``: the demo build trains exactly these
three models with the demo config, so the synthetic-tv table is read from it rather than trained twice.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from device_runtime.atomic_file import write_text_atomic  # noqa: E402
from edge_rec import stages  # noqa: E402
from edge_rec.config import EdgeRecConfig, config_to_dict, load_config  # noqa: E402
from edge_rec.keras_shim import tf  # noqa: E402

RESULTS = REPO / "benchmarks" / "results"
DEMO_CONFIG = REPO / "examples" / "tv" / "config.toml"
KEYS = ("hr@10", "ndcg@10", "mrr")


def _row(metrics: dict, params: int, seconds: float, epochs: int | None = None) -> dict:
    row = {k: round(float(metrics[k]), 4) for k in KEYS}
    row.update(params=params, seconds=round(seconds, 1))
    if epochs is not None:
        row["epochs"] = epochs
    return row


def _ratios(rows: dict) -> dict:
    teacher, base, dist = rows["teacher"], rows["student_baseline"], rows["student_distilled"]
    return {
        "teacher_over_popularity": round(teacher["ndcg@10"] / max(rows["popularity"]["ndcg@10"], 1e-9), 2),
        "student_params_over_teacher": round(dist["params"] / teacher["params"], 3),
        "distilled_over_baseline": round(dist["ndcg@10"] / max(base["ndcg@10"], 1e-9), 3),
        "distilled_over_teacher": round(dist["ndcg@10"] / max(teacher["ndcg@10"], 1e-9), 3),
    }


def run_dataset(source: str, cfg: EdgeRecConfig, *, quiet: bool) -> dict:
    """Train and evaluate popularity, teacher, baseline student and distilled student on one log.

    The same pipeline stages ``edge-rec build`` runs: the baseline is the student trained alone
    (α = 1) with the same seed, architecture and epochs as the distilled one.
    """
    data = stages.prepare_data(cfg.data, seed=cfg.seed, path=source)
    rows = {"popularity": _row(stages.ranking_metrics(stages.rank_popularity(data), data), 0, 0.0)}
    teacher = stages.train_teacher(data, cfg.teacher, seed=cfg.seed, quiet=quiet)
    rows["teacher"] = _row(stages.evaluate_keras(teacher.serving_model, data), teacher.params,
                           teacher.train.seconds, teacher.train.epochs_run)
    for label, guide in (("student_baseline", None), ("student_distilled", teacher)):
        student = stages.train_student(data, guide, cfg.student, cfg.distill, seed=cfg.seed, name=label, quiet=quiet)
        rows[label] = _row(stages.evaluate_keras(student.serving_model, data), student.params,
                           student.train.seconds, student.train.epochs_run)
        print(f"{source} {label}: {rows[label]}", flush=True)
    summary = data.summary()
    return {"source": source, "users": summary["users"], "catalog_size": data.catalog_size,
            "history_length": data.history_length, "models": rows, "ratios": _ratios(rows)}


def from_build_report(report_path: Path) -> dict:
    """The same table read from an ``edge-rec build`` report (the demo trains exactly these models)."""
    from device_runtime.bundle_schema import FIRST_ITEM_INDEX
    from edge_rec.passes import POPULARITY, STUDENT, STUDENT_BASELINE, TEACHER
    from edge_rec.report import BuildReport

    report = BuildReport.load(report_path)
    names = {"popularity": POPULARITY, "teacher": TEACHER, "student_baseline": STUDENT_BASELINE,
             "student_distilled": STUDENT}
    rows = {}
    for label, stage in names.items():
        entry = report.stages[stage]
        rows[label] = _row(entry.metrics, entry.params or 0, entry.seconds or 0.0, entry.get("epochs_run"))
    ds = report.dataset
    return {"source": f"{ds.get('source')} (from {report_path})", "users": ds["users"],
            "catalog_size": ds["items"] + FIRST_ITEM_INDEX, "history_length": ds.get("history_length"),
            "models": rows, "ratios": _ratios(rows)}


def _markdown(results: dict) -> str:
    lines = ["# Distillation benchmark", "",
             f"TensorFlow {results['tensorflow']}, {results['cpus']} CPUs; seed {results['seed']}.", ""]
    for name, res in results["datasets"].items():
        lines += [f"## {name} ({res['users']} users, {res['catalog_size'] - 2} items, L={res['history_length']})", "",
                  "| model | HR@10 | NDCG@10 | MRR | params | train s |", "|---|---|---|---|---|---|"]
        for label, row in res["models"].items():
            lines.append(f"| {label} | {row['hr@10']:.4f} | {row['ndcg@10']:.4f} | {row['mrr']:.4f} | "
                         f"{row['params']:,} | {row['seconds']:.1f} |")
        lines += ["", "Ratios: " + ", ".join(f"{k} = {v}" for k, v in res["ratios"].items()), ""]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", default=str(DEMO_CONFIG), help="TOML config (default: the demo's)")
    parser.add_argument("--from-report", type=Path, default=None,
                        help="take the synthetic-tv rows from this build report instead of training again")
    parser.add_argument("--quiet", action="store_true", help="no progress bars")
    args = parser.parse_args()
    cfg = load_config(args.config)
    started = time.perf_counter()
    datasets = {}
    if args.from_report is not None:
        datasets["synthetic-tv"] = from_build_report(args.from_report)
    else:
        datasets["synthetic-tv"] = run_dataset("synthetic-tv", cfg, quiet=args.quiet)
    if os.environ.get("EDGE_REC_DATA"):
        path = os.environ["EDGE_REC_DATA"]
        datasets[Path(path).name] = run_dataset(path, cfg, quiet=args.quiet)
    results = {"benchmark": "distill", "tensorflow": tf.__version__, "python": platform.python_version(),
               "cpus": os.cpu_count(), "seed": cfg.seed, "config": config_to_dict(cfg),
               "total_seconds": round(time.perf_counter() - started, 1), "datasets": datasets}
    RESULTS.mkdir(parents=True, exist_ok=True)
    write_text_atomic(RESULTS / "distill.json", json.dumps(results, indent=2) + "\n")
    write_text_atomic(RESULTS / "distill.md", _markdown(results))
    print(_markdown(results))


if __name__ == "__main__":
    main()
