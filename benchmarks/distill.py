"""What distillation buys: teacher, baseline student (alone, α=1) and distilled student.

Trains the three models with the configuration's sizes, seeds and epochs on ``synthetic-tv``
(and on the interaction file named by ``EDGE_REC_DATA`` when set, e.g. a MovieLens ``u.data``),
evaluates them and the popularity baseline on the same leave-last-out test split with the
shared metrics, and writes ``benchmarks/results/distill.json`` and ``distill.md`` (HR@10,
NDCG@10, MRR, parameters, training seconds). The baseline and the distilled student share the
code path, seed and epochs; only the teacher's terms differ.

    .venv/bin/python benchmarks/distill.py [--config CFG] [--quiet]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from converters.legacy_keras import set_global_seed, tf  # noqa: E402
from device_runtime.atomic_file import write_text_atomic  # noqa: E402
from device_runtime.metrics import evaluate_scores  # noqa: E402
from edge_rec.config import (  # noqa: E402
    DistillConfig,
    EdgeRecConfig,
    apply_overrides,
    config_to_dict,
    load_config,
)  # noqa: E402
from edge_rec.data import generate_synthetic, load_interactions, prepare_dataset  # noqa: E402
from edge_rec.distill.training import score_model, train_sequence_model  # noqa: E402
from edge_rec.models import build_student, build_teacher, student_serving_model  # noqa: E402
from edge_rec.models.warm_start import warm_start_student  # noqa: E402

RESULTS = REPO / "benchmarks" / "results"
KEYS = ("hr@10", "ndcg@10", "mrr")

#: Sizes proposed as the defaults of edge_rec/config.py (applied when --config is not given):
#: teacher and both students train in about 4-5 minutes on 2 cores.
PROPOSED_DEFAULTS = {
    "teacher": {"hidden": 128, "blocks": 2, "heads": 2, "dropout": 0.2,
                "fit": {"epochs": 8, "batch_size": 64, "learning_rate": 3e-3, "patience": 2}},
    "student": {"embedding_dim": 16, "hidden": [12], "pooling": "position", "dropout": 0.1,
                "warm_start": True,
                "fit": {"epochs": 8, "batch_size": 16, "learning_rate": 1e-2, "patience": 2}},
    "distill": {"alpha": 0.3, "temperature": 1.0, "beta": 0.0, "gamma": 0.0},
}


def _evaluate(scores: np.ndarray, test, catalog: int) -> dict[str, float]:
    metrics = evaluate_scores(scores, test.targets, test.seen, catalog)
    return {k: round(float(metrics[k]), 4) for k in KEYS}


def run_dataset(name: str, source: str, cfg: EdgeRecConfig, *, quiet: bool) -> dict:
    """Train and evaluate popularity, teacher, baseline student and distilled student on one log."""
    if source.startswith("synthetic-"):
        log = generate_synthetic(source, seed=cfg.seed, users=cfg.data.synthetic_users,
                                 items=cfg.data.synthetic_items)
    else:
        log = load_interactions(source, cfg.data.format, on_bad_line="skip")
    dataset = prepare_dataset(log, min_user_interactions=cfg.data.min_user_interactions,
                              min_item_interactions=cfg.data.min_item_interactions)
    split = dataset.split()
    length, catalog = cfg.data.history_length, split.catalog_size
    test = split.eval_set("test", length)
    rows: dict[str, dict] = {}
    popularity = np.broadcast_to(split.popularity().astype(np.float32), (len(test), catalog))
    rows["popularity"] = {**_evaluate(popularity, test, catalog), "params": 0, "seconds": 0.0}

    set_global_seed(cfg.seed)
    teacher = build_teacher(cfg.teacher, catalog, length)
    result = train_sequence_model(teacher, None, split, fit=cfg.teacher.fit, history_length=length, quiet=quiet)
    rows["teacher"] = {**_evaluate(score_model(teacher, test.histories), test, catalog),
                       "params": int(teacher.count_params()), "seconds": round(result.seconds, 1),
                       "epochs": result.epochs_run}

    for label, use_teacher in (("student_baseline", False), ("student_distilled", True)):
        set_global_seed(cfg.seed)
        student = build_student(cfg.student, catalog, length)
        if use_teacher and cfg.student.warm_start:
            warm_start_student(student, teacher)
        distill = cfg.distill if use_teacher else DistillConfig(alpha=1.0, beta=0.0, gamma=0.0)
        result = train_sequence_model(student, teacher if use_teacher else None, split,
                                      fit=cfg.student.fit, distill=distill, history_length=length,
                                      quiet=quiet)
        serving = student_serving_model(student, cfg.student, catalog, length)
        rows[label] = {**_evaluate(score_model(serving, test.histories), test, catalog),
                       "params": int(serving.count_params()), "seconds": round(result.seconds, 1),
                       "epochs": result.epochs_run}
        print(f"{name} {label}: {rows[label]}", flush=True)
    print(f"{name} teacher: {rows['teacher']}  popularity: {rows['popularity']}", flush=True)
    teacher_row, base, dist = rows["teacher"], rows["student_baseline"], rows["student_distilled"]
    checks = {
        "teacher_over_popularity": round(teacher_row["ndcg@10"] / max(rows["popularity"]["ndcg@10"], 1e-9), 2),
        "student_params_over_teacher": round(dist["params"] / teacher_row["params"], 3),
        "distilled_over_baseline": round(dist["ndcg@10"] / max(base["ndcg@10"], 1e-9), 3),
        "distilled_over_teacher": round(dist["ndcg@10"] / max(teacher_row["ndcg@10"], 1e-9), 3),
    }
    return {"source": source, "users": len(dataset.user_ids), "catalog_size": catalog,
            "history_length": length, "models": rows, "ratios": checks}


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
    parser.add_argument("--config", default=None, help="TOML config (default: built-in defaults)")
    parser.add_argument("--quiet", action="store_true", help="no progress bars")
    args = parser.parse_args()
    cfg = load_config(args.config)
    if args.config is None:
        cfg = apply_overrides(cfg, PROPOSED_DEFAULTS, source="benchmarks/distill.py")
    sources = {"synthetic-tv": "synthetic-tv"}
    if os.environ.get("EDGE_REC_DATA"):
        sources[Path(os.environ["EDGE_REC_DATA"]).name] = os.environ["EDGE_REC_DATA"]
    started = time.perf_counter()
    datasets = {name: run_dataset(name, src, cfg, quiet=args.quiet) for name, src in sources.items()}
    results = {"benchmark": "distill", "tensorflow": tf.__version__, "python": platform.python_version(),
               "cpus": os.cpu_count(), "seed": cfg.seed, "config": config_to_dict(cfg),
               "total_seconds": round(time.perf_counter() - started, 1), "datasets": datasets}
    RESULTS.mkdir(parents=True, exist_ok=True)
    write_text_atomic(RESULTS / "distill.json", json.dumps(results, indent=2) + "\n")
    write_text_atomic(RESULTS / "distill.md", _markdown(results))
    print(_markdown(results))


if __name__ == "__main__":
    main()
