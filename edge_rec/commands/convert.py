"""``edge-rec convert``: a saved student / QAT model (or a run directory) -> a verified bundle.

The export itself (convert -> parity -> bundle) is :func:`edge_rec.export.export_bundle`, the same
function ``edge-rec build`` uses. TensorFlow is imported only inside the command function.
"""

from __future__ import annotations

import dataclasses
import json
import logging
from pathlib import Path

import click

from converters.variants import DEFAULT_VARIANT, VARIANTS
from edge_rec.commands.console import progress_to_stderr, require_training_stack
from edge_rec.commands.options import (
    data_format_option,
    data_option,
    data_overrides,
    items_option,
    json_option,
    overwrite_option,
    quiet_option,
    refuse_non_empty,
    seed_option,
    skip_bad_lines_option,
)
from edge_rec.config import ConfigError, EdgeRecConfig, apply_overrides, config_from_dict
from edge_rec.run_directory import run_dir_stages

log = logging.getLogger(__name__)

def _resolve_model(model_path: Path, stage: str | None = None) -> tuple[Path, EdgeRecConfig]:
    """The saved model to convert (in a run directory: ``stage``, else the first of
    :func:`run_dir_stages` that was saved) and the config it was built with (defaults outside a run)."""
    if not model_path.exists():
        raise click.BadParameter(f"{model_path}: no such model file or directory", param_hint="MODEL")
    config_file = model_path / "config.json"
    cfg = EdgeRecConfig()
    if model_path.is_dir() and config_file.is_file():
        try:
            cfg = config_from_dict(json.loads(config_file.read_text(encoding="utf-8")), source=str(config_file))
        except json.JSONDecodeError as exc:
            raise ConfigError(f"{config_file}: not valid JSON ({exc})") from None
    if model_path.is_dir() and (model_path / "models").is_dir():
        candidates = (stage,) if stage else run_dir_stages(model_path)
        for name in candidates:
            stage_dir = model_path / "models" / name
            if stage_dir.is_dir() and any(stage_dir.iterdir()):
                return _saved_model_in(stage_dir), cfg
        saved = sorted(p.name for p in (model_path / "models").iterdir() if p.is_dir())
        raise click.BadParameter(
            f"{model_path}: run directory has no saved model under models/{{{','.join(candidates)}}}; "
            f"it has {', '.join(saved) or 'none'}",
            param_hint="MODEL",
        )
    if stage:
        raise click.BadParameter(f"--stage {stage}: only for a run directory; {model_path} is a model",
                                 param_hint="--stage")
    return _saved_model_in(model_path), cfg


def _saved_model_in(path: Path) -> Path:
    """``path`` itself (SavedModel dir, .h5, .keras), the serving ``model.*`` of a model directory,
    or the one model file inside a directory."""
    from edge_rec.model_store import find_saved_model

    if path.is_file() or (path / "saved_model.pb").is_file():
        return path
    try:
        return find_saved_model(path)
    except FileNotFoundError:
        pass
    candidates = sorted([*path.glob("*.keras"), *path.glob("*.h5"), *(p.parent for p in path.glob("*/saved_model.pb"))])
    if len(candidates) != 1:
        raise click.BadParameter(
            f"{path}: expected a SavedModel directory, a .keras / .h5 file or a directory holding "
            f"exactly one of them, found {len(candidates)}",
            param_hint="MODEL",
        )
    return candidates[0]


@click.command(name="convert")
@click.argument("model_path", metavar="MODEL", type=click.Path(path_type=Path))
@click.option("--out", "out_dir", required=True, type=click.Path(file_okay=False, path_type=Path),
              help="Bundle directory to write (model.tflite, manifest.json, items.tsv).")
@overwrite_option()
@click.option("--quantize", "variant", type=click.Choice(VARIANTS), default=DEFAULT_VARIANT, show_default=True,
              help="TFLite variant.")
@data_option("Interaction log the model was trained on (vocabulary, calibration, parity split): a "
             "file or a synthetic preset.", required=True)
@data_format_option()
@skip_bad_lines_option()
@items_option()
@click.option("--top-k", type=click.IntRange(min=1), default=None,
              help="Recommendations returned by the graph (default: [convert] top_k).")
@click.option("--parity-threshold", type=click.FloatRange(0.0, 1.0), default=None,
              help="Minimum mean top-10 overlap with the Keras model (default: [convert] parity_threshold, 0.8).")
@click.option("--sparsity-encoding", is_flag=True, help="Store pruned weights with TFLite's sparse encoding.")
@click.option("--stage", default=None, metavar="NAME",
              help="In a run directory, the stage to convert (e.g. lowrank); default: qat, else pruned, "
                   "else the shipped student.")
@seed_option()
@quiet_option()
@json_option("the result as one JSON object")
def convert(model_path, out_dir, overwrite, variant, data_path, data_format, skip_bad_lines, titles,
            top_k, parity_threshold, sparsity_encoding, stage, seed, quiet, as_json) -> None:
    """Convert MODEL (a saved student or QAT model, or a run directory) to a verified bundle.

    The TFLite model is run on the test split of --data and compared with the Keras model; the
    command fails without writing a bundle when the top-10 overlap is below the threshold.
    """
    refuse_non_empty(out_dir, overwrite)
    require_training_stack("convert")
    from converters.tflite import serving_catalog_size
    from edge_rec import stages
    from edge_rec.data.titles import titles_by_index
    from edge_rec.export import export_bundle
    from edge_rec.input_errors import INPUT_ERRORS
    from edge_rec.model_store import load_saved_model, serving_form, went_through_qat

    try:
        saved, cfg = _resolve_model(model_path, stage)
        cfg = apply_overrides(cfg, data_overrides(data_format=data_format, skip_bad_lines=skip_bad_lines,
                                                  seed=seed), source="command-line flags")
        convert_flags = {"sparsity_encoding": sparsity_encoding or cfg.convert.sparsity_encoding}
        if top_k is not None:
            convert_flags["top_k"] = top_k
        if parity_threshold is not None:
            convert_flags["parity_threshold"] = parity_threshold
        convert_cfg = dataclasses.replace(cfg.convert, **convert_flags)
        log.info("loading %s", saved)
        try:
            model = serving_form(load_saved_model(saved))
        except (OSError, ValueError, TypeError) as exc:
            raise click.ClickException(f"{saved}: cannot load a Keras model ({exc})") from None
        history_length = int(model.inputs[0].shape[1])
        data = dataclasses.replace(
            stages.prepare_data(cfg.data, seed=cfg.seed, path=data_path),
            history_length=history_length,
        )
        catalog_size = serving_catalog_size(model, history_length)
        if catalog_size != data.catalog_size:
            raise click.ClickException(
                f"{saved}: the model scores {catalog_size} items but {data_path} gives a vocabulary of "
                f"{data.catalog_size}; pass the log the model was trained on with the same "
                "[data] min_user_interactions / min_item_interactions"
            )
        if titles is not None:
            titles = titles_by_index(data.dataset.vocab.ids, titles, data.dataset.vocab.titles)
        with progress_to_stderr():
            exported = export_bundle(
                model, data, out_dir, convert_cfg=convert_cfg, seed=cfg.seed, variant=variant,
                qat=went_through_qat(model), titles=titles, build_info={"model": str(saved)},
            )
    except INPUT_ERRORS as exc:
        raise click.ClickException(str(exc)) from None
    parity = exported.parity
    result = {
        "bundle": str(exported.bundle_dir),
        "variant": variant,
        "size_bytes": len(exported.tflite),
        "top_k": exported.top_k,
        "parity": {"top10_overlap": parity.top10_overlap, "keras_ndcg@10": parity.keras_ndcg,
                   "tflite_ndcg@10": parity.tflite_ndcg, "users": parity.users},
        "metrics": exported.metrics,
    }
    if as_json:
        click.echo(json.dumps(result, indent=2))
    else:
        click.echo(f"bundle: {exported.bundle_dir} ({variant}, {len(exported.tflite)} bytes, top-{exported.top_k})")
        click.echo(f"parity: top-10 overlap {parity.top10_overlap:.3f}, NDCG@10 Keras "
                   f"{parity.keras_ndcg:.4f} vs TFLite {parity.tflite_ndcg:.4f} on {parity.users} users")
        click.echo(f"served: NDCG@10 {exported.metrics['ndcg@10']:.4f}, HR@10 {exported.metrics['hr@10']:.4f} "
                   "(the graph's top-K minus seen items, filled from popularity: what the bundle serves)")
