"""``edge-rec train-teacher`` and ``edge-rec distill``: train a model and save it with its metrics.

An output directory holds ``model.keras`` (the serving model: last position only, what is
converted and shipped), ``sequence_model.keras`` (the training form, every position; ``distill
--teacher`` and the compression stages start from it), ``config.json`` (the full configuration
used) and ``metrics.json`` (per-epoch loss terms and validation NDCG@10, test metrics,
parameters, training seconds). TensorFlow is imported only inside the commands.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import time
from pathlib import Path
from typing import Any

import click

from edge_rec.commands.console import progress_to_stderr, require_training_stack
from edge_rec.commands.options import (
    config_preset_option,
    data_format_option,
    data_option,
    data_overrides,
    item_features_option,
    json_option,
    loss_weight_options,
    quiet_option,
    seed_option,
    skip_bad_lines_option,
)
from edge_rec.config import (
    ConfigError,
    DataConfig,
    DistillConfig,
    EdgeRecConfig,
    config_to_dict,
    resolve_config,
)
from edge_rec.passes import STUDENT, STUDENT_BASELINE, TEACHER

log = logging.getLogger(__name__)


def _merge(base: dict[str, Any], extra: dict[str, Any]) -> dict[str, Any]:
    out = dict(base)
    for key, value in extra.items():
        out[key] = _merge(out[key], value) if isinstance(value, dict) and isinstance(out.get(key), dict) else value
    return out


def _cluster_strategy(command: str):
    """Validate ``TF_CONFIG`` (before TensorFlow starts), then import the training stack and
    create the tf.distribute strategy before any other TensorFlow work."""
    from edge_rec import distributed

    try:
        distributed.check_environment()
    except distributed.TFConfigError as exc:
        raise click.ClickException(str(exc)) from None
    require_training_stack(command)
    return distributed.strategy()


def _load_config(path: str | None, preset: str | None, overrides: dict[str, Any]) -> EdgeRecConfig:
    try:
        return resolve_config(path, preset=preset, flags=overrides)
    except ConfigError as exc:
        raise click.ClickException(str(exc)) from None


def _prepare(cfg: EdgeRecConfig, data: str | None):
    """``(sized config, prepared data, seconds it took)`` of ``--data`` (a preset name or an
    interaction file), else ``[data]``; sizes the config leaves unset are derived from the log,
    as in ``build``."""
    from edge_rec import stages
    from edge_rec.input_errors import INPUT_ERRORS

    start = time.perf_counter()
    try:
        cfg, prepared, _choices = stages.prepare_sized_data(cfg, path=data)
        return cfg, prepared, time.perf_counter() - start
    except (*INPUT_ERRORS, ValueError) as exc:
        raise click.ClickException(str(exc)) from None


def _check_same_validation_users(teacher_dir: str | Path, share: float) -> None:
    """Refuse a teacher that trained on validation targets of this run: its validation share
    (from its config.json; the default before the share existed) must be this run's."""
    recorded = Path(teacher_dir) / "config.json"
    before = DataConfig().validation_share
    teacher_share = (json.loads(recorded.read_text()).get("data", {}).get("validation_share", before)
                     if recorded.exists() else share)
    if teacher_share != share:
        raise click.ClickException(
            f"--teacher {teacher_dir}: trained with data.validation_share = {teacher_share}, but this run "
            f"has {share}: the teacher would have learned second-to-last items this run validates on; "
            "use the same data and config"
        )


def _save_run(out: str, *, serving, sequence, cfg: EdgeRecConfig, metrics: dict[str, Any],
              item_encoder: Any = None) -> Path:
    """Write the models (and a student's feature encoder table), config.json and metrics.json
    into ``out``, each file renamed into place (on a non-chief worker of a TF_CONFIG cluster: into
    a temporary directory, then discarded)."""
    from device_runtime.atomic_file import write_text_atomic
    from edge_rec.distributed import output_dir
    from edge_rec.model_store import save_model_pair
    from edge_rec.models.item_encoder import save_item_encoder

    with output_dir(out) as target:
        out_dir = save_model_pair(target, serving=serving, sequence=sequence)
        if item_encoder is not None:
            save_item_encoder(out_dir, item_encoder)
        write_text_atomic(out_dir / "config.json", json.dumps(config_to_dict(cfg), indent=2) + "\n")
        write_text_atomic(out_dir / "metrics.json", json.dumps(metrics, indent=2) + "\n")
    return Path(out)


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


def _metrics(trained, data, data_seconds: float, **extra) -> dict[str, Any]:
    """metrics.json: training history, best validation NDCG@10, test metrics, params, and the
    seconds spent loading and preparing the log, training (validation included) and validating."""
    from edge_rec import distributed, stages

    result = trained.train
    return {
        "stage": trained.name,
        "data": data.source,
        "catalog_size": data.catalog_size,
        "history_length": data.history_length,
        "params": trained.params,
        "data_seconds": round(data_seconds, 3),
        "training_seconds": round(result.seconds, 3),
        "validation_seconds": round(result.validation_seconds, 3),
        "epochs_run": result.epochs_run,
        "best_epoch": result.best_epoch,
        "best_val_ndcg@10": result.best_val_ndcg,
        "history": result.history,
        "test": stages.evaluate_keras(trained.serving_model, data),
        **distributed.summary(),
        **extra,
    }


_common = [
    click.option("--config", "config_path", type=click.Path(dir_okay=False), default=None,
                 help="TOML config (default: built-in defaults)."),
    config_preset_option(),
    data_option(),
    data_format_option(),
    skip_bad_lines_option(),
    item_features_option(),
    click.option("--out", required=True, type=click.Path(file_okay=False), help="Output directory."),
    click.option("--epochs", type=click.IntRange(min=1), default=None, help="Override fit.epochs."),
    seed_option(),
    quiet_option(),
    json_option("the metrics as one JSON object"),
]


def _with_common(func):
    for option in reversed(_common):
        func = option(func)
    return func


@click.command(name="train-teacher")
@_with_common
def train_teacher(config_path, preset, data_path, data_format, skip_bad_lines, item_features, out, epochs, seed,
                  quiet, as_json) -> None:
    """Train the sequential teacher (next-item cross-entropy at every position) and save it."""
    overrides = data_overrides(data_format=data_format, skip_bad_lines=skip_bad_lines, seed=seed,
                               item_features=item_features)
    if epochs:
        overrides["teacher"] = {"fit": {"epochs": epochs}}
    cfg = _load_config(config_path, preset, overrides)
    _cluster_strategy("train-teacher")
    from edge_rec import stages
    from edge_rec.distributed import PeerLostError, backups_in, peer_failures

    cfg, data, data_seconds = _prepare(cfg, data_path)
    try:
        with progress_to_stderr(), backups_in(out), peer_failures():
            trained = stages.train_teacher(data, cfg.teacher, seed=cfg.seed, quiet=quiet, softmax=cfg.softmax)
    except PeerLostError as exc:
        raise click.ClickException(str(exc).replace("OUT/", f"{out}/")) from None
    metrics = _metrics(trained, data, data_seconds, **stages.averaged_teacher_summary(trained, seed=cfg.seed))
    out_dir = _save_run(out, serving=trained.serving_model, sequence=trained.sequence_model,
                        cfg=cfg, metrics=metrics)
    _report(metrics, out_dir, as_json)


@click.command(name="distill")
@_with_common
@click.option("--teacher", "teacher_dir", type=click.Path(file_okay=False), default=None,
              help="Directory written by train-teacher.")
@click.option("--no-teacher", is_flag=True, help="Train the student alone (same code path, cross-entropy only).")
@click.option("--temperature", type=float, default=None, help="Softmax temperature of the KD term.")
@loss_weight_options
def distill(config_path, preset, data_path, data_format, skip_bad_lines, item_features, out, epochs, seed, quiet,
            as_json,
            teacher_dir, no_teacher, temperature, loss_weights) -> None:
    """Train the int8-friendly student, distilled from a trained teacher (or alone with --no-teacher)."""
    if no_teacher == (teacher_dir is not None):
        raise click.UsageError("give exactly one of --teacher DIR or --no-teacher")
    overrides: dict[str, Any] = {"distill": dict(loss_weights)}
    if temperature is not None:
        overrides["distill"]["temperature"] = temperature
    if no_teacher:
        overrides["distill"].update({key: value for key, value in dataclasses.asdict(
            DistillConfig().without_teacher()).items() if key.endswith("_weight")})
    if epochs:
        overrides["student"] = {"fit": {"epochs": epochs}}
    overrides = _merge(overrides, data_overrides(data_format=data_format, skip_bad_lines=skip_bad_lines,
                                                 seed=seed, item_features=item_features))
    cfg = _load_config(config_path, preset, overrides)
    _cluster_strategy("distill")
    from edge_rec import stages
    from edge_rec.distributed import PeerLostError, backups_in, peer_failures, training_scope
    from edge_rec.model_store import find_saved_model, load_saved_model
    from edge_rec.models.history_length import history_length_of

    cfg, data, data_seconds = _prepare(cfg, data_path)
    teacher = None
    if teacher_dir is not None:
        try:
            with training_scope():  # the Distiller holding it is built in the same scope
                sequence = load_saved_model(find_saved_model(teacher_dir, sequence=True))
        except (FileNotFoundError, OSError, ValueError) as exc:
            raise click.ClickException(
                f"--teacher {teacher_dir}: {exc}; run edge-rec train-teacher --out {teacher_dir} first"
            ) from None
        shape = (history_length_of(sequence) or data.history_length, int(sequence.outputs[0].shape[-1]))
        if shape != (data.history_length, data.catalog_size):
            raise click.ClickException(
                f"--teacher {teacher_dir}: trained for history length {shape[0]} and {shape[1]} items, "
                f"but this data/config has {data.history_length} and {data.catalog_size}; "
                "use the same data and config"
            )
        _check_same_validation_users(teacher_dir, cfg.data.validation_share)
        teacher = stages.TrainedModel(TEACHER, sequence, sequence, None, 0.0)
    name = STUDENT_BASELINE if teacher is None else STUDENT
    try:
        with progress_to_stderr(), backups_in(out), peer_failures():
            trained = stages.train_student(
                data, teacher, cfg.student, cfg.distill, seed=cfg.seed, name=name, quiet=quiet,
                softmax=cfg.softmax,
            )
    except PeerLostError as exc:
        raise click.ClickException(str(exc).replace("OUT/", f"{out}/")) from None
    metrics = _metrics(trained, data, data_seconds, teacher=str(teacher_dir) if teacher_dir else None,
                       teacher_params=int(teacher.sequence_model.count_params()) if teacher else None)
    out_dir = _save_run(out, serving=trained.serving_model, sequence=trained.sequence_model,
                        cfg=cfg, metrics=metrics, item_encoder=trained.item_encoder)
    _report(metrics, out_dir, as_json)
