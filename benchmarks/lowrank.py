"""What low-rank factorization of the output layer does to size and quality (issue 4, item 3).

Starts from the demo run's distilled student and teacher (``runs/demo``), replaces the student's
hidden x catalog output layer by two layers of rank r (truncated SVD) for each r given, measures
the SVD error, fine-tunes with distillation (the ``[lowrank]`` fit of the run's config), and
reports parameters, float32 / int8 TFLite sizes and NDCG@10 before and after fine-tuning, next to
the unfactorized student. Writes ``benchmarks/results/lowrank.json`` and ``lowrank.md``.

    .venv/bin/python benchmarks/lowrank.py [--ranks 4,8] [--quiet]      (after `make demo`)
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from device_runtime.atomic_file import write_text_atomic  # noqa: E402
from edge_rec import stages  # noqa: E402
from edge_rec.compress.lowrank import factorize_output_layer, low_rank_report  # noqa: E402
from edge_rec.config import LowRankConfig, config_from_dict  # noqa: E402
from edge_rec.model_store import find_saved_model, load_saved_model  # noqa: E402

RUN_DIR = Path(os.environ.get("EDGE_REC_DEMO_DIR", REPO / "runs" / "demo"))
RESULTS = REPO / "benchmarks" / "results"


def _trained(name: str) -> stages.TrainedModel:
    directory = RUN_DIR / "models" / name
    return stages.TrainedModel(
        name,
        load_saved_model(find_saved_model(directory, sequence=True)),
        load_saved_model(find_saved_model(directory)),
        None,
        0.0,
    )


def _row(trained: stages.TrainedModel, data, cfg, *, seed: int) -> dict:
    float32 = stages.convert(trained, "float32", data, cfg.convert, seed=seed)
    int8 = stages.convert(trained, "int8", data, cfg.convert, seed=seed)
    return {
        "params": trained.params,
        "float32_bytes": len(float32),
        "int8_bytes": len(int8),
        "int8_gzip_bytes": stages.gzip_size(int8),
        "ndcg@10": stages.evaluate_keras(trained.serving_model, data)["ndcg@10"],
        "int8_ndcg@10": stages.ranking_metrics(stages.rank_tflite(int8, data), data)["ndcg@10"],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--ranks", default="4,8", help="comma-separated ranks")
    parser.add_argument("--quiet", action="store_true")
    args = parser.parse_args()
    cfg = config_from_dict(json.loads((RUN_DIR / "config.json").read_text()), source=str(RUN_DIR / "config.json"))
    data = stages.prepare_data(cfg.data, seed=cfg.seed)
    teacher, student = _trained("teacher"), _trained("student")
    rows = {"student": {"rank": None, **_row(student, data, cfg, seed=cfg.seed)}}
    for rank in (int(r) for r in args.ranks.split(",")):
        svd = low_rank_report(student.serving_model, factorize_output_layer(student.serving_model, rank))
        before_ft = stages.TrainedModel(
            "lowrank", factorize_output_layer(student.sequence_model, rank),
            factorize_output_layer(student.serving_model, rank), None, 0.0,
        )
        tuned = stages.low_rank(
            data, student, teacher, LowRankConfig(enabled=True, rank=rank, fit=cfg.lowrank.fit),
            cfg.distill, seed=cfg.seed, quiet=args.quiet,
        )
        rows[f"lowrank_r{rank}"] = {
            "rank": rank,
            "relative_error": svd.relative_error,
            "energy_kept": svd.energy_kept,
            "ndcg@10_before_finetune": stages.evaluate_keras(before_ft.serving_model, data)["ndcg@10"],
            "finetune_seconds": round(tuned.seconds, 1),
            **_row(tuned, data, cfg, seed=cfg.seed),
        }
    RESULTS.mkdir(parents=True, exist_ok=True)
    write_text_atomic(RESULTS / "lowrank.json", json.dumps({"run_dir": str(RUN_DIR), "rows": rows}, indent=2) + "\n")
    lines = [
        "## Low-rank output layer (demo student)",
        "",
        "| model | rank | params | float32 | int8 | int8 gzip | SVD rel. error | NDCG@10 before FT | NDCG@10 | int8 NDCG@10 |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for name, r in rows.items():
        lines.append(
            f"| {name} | {r['rank'] or '—'} | {r['params']:,} | {r['float32_bytes']:,} | {r['int8_bytes']:,} | "
            f"{r['int8_gzip_bytes']:,} | {r.get('relative_error', 0):.3f} | "
            f"{r.get('ndcg@10_before_finetune', r['ndcg@10']):.4f} | {r['ndcg@10']:.4f} | {r['int8_ndcg@10']:.4f} |"
        )
    write_text_atomic(RESULTS / "lowrank.md", "\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
