"""``edge-rec train-teacher`` and ``edge-rec distill``: train a model and save it with its metrics.

An output directory holds ``model.keras`` (the serving model: last position only, what is
converted and shipped), ``sequence_model.keras`` (the training form, every position; ``distill
--teacher`` and the compression stages start from it), ``config.json`` (the full configuration
used) and ``metrics.json`` (per-epoch loss terms and validation NDCG@10, test metrics,
parameters, training seconds). TensorFlow is imported only inside the commands.
"""

from __future__ import annotations

import json
import logging
import time
from pathlib import Path
from typing import Any

import click

from edge_rec.config import ConfigError, EdgeRecConfig, apply_overrides, config_to_dict, load_config

log = logging.getLogger(__name__)

SERVING_FILE = "model.keras"
SEQUENCE_FILE = "sequence_model.keras"


def _load_config(path: str | None, overrides: dict[str, Any]) -> EdgeRecConfig:
    try:
        cfg = load_config(path)
        return apply_overrides(cfg, overrides, source="command-line flags") if overrides else cfg
    except ConfigError as exc:
        raise click.ClickException(str(exc)) from None


def _prepare(cfg: EdgeRecConfig, data: str | None):
    """(dataset, split) from a preset name or an interaction file (``--data``), else ``[data]``."""
    from edge_rec.data import (
        PRESETS,
        DataFormatError,
        generate_synthetic,
        load_interactions,
        prepare_dataset,
    )

    source = data or cfg.data.source
    try:
        if source in PRESETS:
            interactions = generate_synthetic(
                source, seed=cfg.seed, users=cfg.data.synthetic_users, items=cfg.data.synthetic_items
            )
        else:
            if not Path(source).is_file():
                raise click.ClickException(
                    f"--data {source}: no such file; give an interaction log or one of {', '.join(PRESETS)}"
                )
            interactions = load_interactions(source, cfg.data.format, on_bad_line=cfg.data.on_bad_line)
        dataset = prepare_dataset(
            interactions,
            min_user_interactions=cfg.data.min_user_interactions,
            min_item_interactions=cfg.data.min_item_interactions,
        )
        return source, dataset, dataset.split()
    except (DataFormatError, ValueError) as exc:
        raise click.ClickException(str(exc)) from None


def _test_metrics(model, split, history_length: int) -> dict[str, float]:
    from device_runtime.metrics import evaluate_scores
    from edge_rec.distill.training import score_model

    test = split.eval_set("test", history_length)
    return evaluate_scores(score_model(model, test.histories), test.targets, test.seen, split.catalog_size)


def _save_run(out: str, *, serving, sequence, cfg: EdgeRecConfig, metrics: dict[str, Any]) -> Path:
    """Write the models, config.json and metrics.json into ``out``, each file renamed into place."""
    from device_runtime.atomic_file import write_text_atomic
    from edge_rec.model_store import save_model_pair

    out_dir = save_model_pair(out, serving=serving, sequence=sequence)
    write_text_atomic(out_dir / "config.json", json.dumps(config_to_dict(cfg), indent=2) + "\n")
    write_text_atomic(out_dir / "metrics.json", json.dumps(metrics, indent=2) + "\n")
    return out_dir


def _report(metrics: dict[str, Any], out_dir: Path, as_json: bool) -> None:
    if as_json:
        click.echo(json.dumps({"out": str(out_dir), **metrics}))
        return
    test = metrics["test"]
    click.echo(
        f"{metrics['stage']}: test NDCG@10 {test['ndcg@10']:.4f}, HR@10 {test['hr@10']:.4f}, "
        f"MRR {test['mrr']:.4f}; {metrics['params']:,} parameters; "
        f"{metrics['training_seconds']:.1f} s; saved to {out_dir}"
    )


def _metrics(stage: str, result, model, split, history_length: int, source: str, **extra) -> dict[str, Any]:
    return {
        "stage": stage,
        "data": source,
        "catalog_size": split.catalog_size,
        "history_length": history_length,
        "params": int(model.count_params()),
        "training_seconds": round(result.seconds, 3),
        "epochs_run": result.epochs_run,
        "best_epoch": result.best_epoch,
        "best_val_ndcg@10": result.best_val_ndcg,
        "history": result.history,
        "test": _test_metrics(model, split, history_length),
        **extra,
    }


_common = [
    click.option("--config", "config_path", type=click.Path(dir_okay=False), default=None,
                 help="TOML config (default: built-in defaults)."),
    click.option("--data", default=None,
                 help="Interaction log path or synthetic preset (default: the config's [data] source)."),
    click.option("--out", required=True, type=click.Path(file_okay=False), help="Output directory."),
    click.option("--epochs", type=click.IntRange(min=1), default=None, help="Override fit.epochs."),
    click.option("--quiet", is_flag=True, help="No progress bars."),
    click.option("--json", "as_json", is_flag=True, help="Print the metrics as one JSON object."),
]


def _with_common(func):
    for option in reversed(_common):
        func = option(func)
    return func


@click.command(name="train-teacher")
@_with_common
def train_teacher(config_path, data, out, epochs, quiet, as_json) -> None:
    """Train the sequential teacher (next-item cross-entropy at every position) and save it."""
    overrides = {"teacher": {"fit": {"epochs": epochs}}} if epochs else {}
    cfg = _load_config(config_path, overrides)
    from converters.legacy_keras import set_global_seed
    from edge_rec.distill.training import train_sequence_model
    from edge_rec.models import build_teacher

    source, _, split = _prepare(cfg, data)
    length, catalog = cfg.data.history_length, split.catalog_size
    set_global_seed(cfg.seed)
    sequence = build_teacher(cfg.teacher, catalog, length, sequence=True)
    started = time.perf_counter()
    result = train_sequence_model(
        sequence, None, split, fit=cfg.teacher.fit, history_length=length, quiet=quiet
    )
    serving = build_teacher(cfg.teacher, catalog, length, sequence=False)
    serving.set_weights(sequence.get_weights())
    metrics = _metrics("teacher", result, serving, split, length, source,
                       total_seconds=round(time.perf_counter() - started, 3))
    out_dir = _save_run(out, serving=serving, sequence=sequence, cfg=cfg, metrics=metrics)
    _report(metrics, out_dir, as_json)


@click.command(name="distill")
@_with_common
@click.option("--teacher", "teacher_dir", type=click.Path(file_okay=False), default=None,
              help="Directory written by train-teacher.")
@click.option("--no-teacher", is_flag=True, help="Train the student alone (same code path, alpha=1).")
@click.option("--alpha", type=float, default=None, help="Weight of the cross-entropy term.")
@click.option("--temperature", type=float, default=None, help="Softmax temperature of the KD term.")
@click.option("--beta", type=float, default=None, help="Weight of the hidden-state hint term.")
@click.option("--gamma", type=float, default=None, help="Weight of the ranking-distillation term.")
def distill(config_path, data, out, epochs, quiet, as_json, teacher_dir, no_teacher, alpha,
            temperature, beta, gamma) -> None:
    """Train the int8-friendly student, distilled from a trained teacher (or alone with --no-teacher)."""
    if no_teacher == (teacher_dir is not None):
        raise click.UsageError("give exactly one of --teacher DIR or --no-teacher")
    flags = {"alpha": alpha, "temperature": temperature, "beta": beta, "gamma": gamma}
    overrides: dict[str, Any] = {"distill": {k: v for k, v in flags.items() if v is not None}}
    if no_teacher:
        overrides["distill"].update(alpha=1.0, beta=0.0, gamma=0.0)
    if epochs:
        overrides["student"] = {"fit": {"epochs": epochs}}
    cfg = _load_config(config_path, overrides)
    from converters.legacy_keras import keras, set_global_seed
    from edge_rec.distill.training import train_sequence_model
    from edge_rec.models import CUSTOM_OBJECTS, build_student, student_serving_model
    from edge_rec.models.warm_start import warm_start_student

    source, _, split = _prepare(cfg, data)
    length, catalog = cfg.data.history_length, split.catalog_size
    teacher = None
    if teacher_dir is not None:
        path = Path(teacher_dir) / SEQUENCE_FILE
        if not path.is_file():
            raise click.ClickException(f"--teacher {teacher_dir}: no {SEQUENCE_FILE}; run edge-rec train-teacher first")
        teacher = keras.models.load_model(path, custom_objects=CUSTOM_OBJECTS, compile=False)
        shape = (int(teacher.inputs[0].shape[-1]), int(teacher.outputs[0].shape[-1]))
        if shape != (length, catalog):
            raise click.ClickException(
                f"--teacher {teacher_dir}: trained for history length {shape[0]} and {shape[1]} items, "
                f"but this data/config has {length} and {catalog}; use the same data and config"
            )
    set_global_seed(cfg.seed)
    sequence = build_student(cfg.student, catalog, length, sequence=True)
    if cfg.student.warm_start and teacher is not None:
        warm_start_student(sequence, teacher)
    result = train_sequence_model(
        sequence, teacher, split, fit=cfg.student.fit, distill=cfg.distill, history_length=length, quiet=quiet
    )
    serving = student_serving_model(sequence, cfg.student, catalog, length)
    stage = "student_baseline" if teacher is None else "student"
    metrics = _metrics(stage, result, serving, split, length, source,
                       teacher=str(teacher_dir) if teacher_dir else None,
                       teacher_params=int(teacher.count_params()) if teacher is not None else None)
    out_dir = _save_run(out, serving=serving, sequence=sequence, cfg=cfg, metrics=metrics)
    _report(metrics, out_dir, as_json)
