"""``edge-rec build``: run the whole pipeline from a config file into a run directory."""

from __future__ import annotations

import json

import click

from edge_rec.commands.console import progress_to_stderr, require_training_stack
from edge_rec.commands.options import (
    config_preset_option,
    data_format_option,
    data_option,
    data_overrides,
    item_features_option,
    items_option,
    json_option,
    loss_weight_options,
    overwrite_option,
    quiet_option,
    refuse_non_empty,
    seed_option,
    skip_bad_lines_option,
)
from edge_rec.config import ConfigError, resolve_config

#: Exit status of a build whose bundle and report were written but whose quality gate failed.
GATE_FAILED_EXIT = 3


@click.command()
@click.option("--config", "config_path", type=click.Path(dir_okay=False), default=None,
              help="TOML config (defaults when omitted).")
@data_option()
@data_format_option()
@skip_bad_lines_option()
@item_features_option()
@items_option()
@click.option("--out", "run_dir", required=True, type=click.Path(file_okay=False),
              help="Run directory to write (bundle/, report.json, report.md, chart.png, models/, tflite/).")
@overwrite_option()
@config_preset_option()
@seed_option()
@click.option("--time-budget", default=None, metavar="DURATION",
              help="Wall-clock budget for the build, e.g. 20m, 1.5h, 900s (overrides the config's "
                   "time_budget); training stages share it and stop at epoch boundaries.")
@loss_weight_options
@quiet_option()
@json_option("the report")
def build(config_path, data_path, data_format, skip_bad_lines, item_features, titles, run_dir, overwrite, preset, seed,
          time_budget, loss_weights, quiet, as_json) -> None:
    """Train teacher and students, compress, convert, check parity, bundle and report.

    Every size the config does not set is derived from the log (the report lists them).
    Exit status: 0 when the build passed; 3 when the quality gate ([gate] max_ndcg_drop, relative
    NDCG@10 drop from the distilled float student to int8) failed — the bundle and the report are written, so CI can
    tell "built but not good enough" from an error; 1 for bad input, a non-empty --out without
    --overwrite, or when int8 parity falls below [convert] parity_threshold (no bundle is written
    then); 2 for usage errors.
    """
    from edge_rec import distributed

    try:
        distributed.check_environment()  # a bad TF_CONFIG fails here, before TensorFlow starts
    except distributed.TFConfigError as exc:
        raise click.ClickException(str(exc)) from None
    refuse_non_empty(run_dir, overwrite)
    try:
        flags = data_overrides(data_format=data_format, skip_bad_lines=skip_bad_lines, seed=seed,
                               item_features=item_features)
        if time_budget is not None:
            flags["time_budget"] = time_budget
        if loss_weights:
            flags["distill"] = dict(loss_weights)
        cfg = resolve_config(config_path, preset=preset, flags=flags)
    except ConfigError as exc:
        raise click.ClickException(str(exc)) from None
    require_training_stack("build")
    distributed.strategy()  # before any other TensorFlow work (collective ops start with it)
    from edge_rec.input_errors import INPUT_ERRORS
    from edge_rec.pipeline import run_build

    # on a TF_CONFIG cluster the chief writes the run directory, other workers a temporary one
    with distributed.output_dir(run_dir) as target, distributed.backups_in(run_dir):
        try:
            with progress_to_stderr(), distributed.peer_failures():
                # titles ({item_id: title} from --items) go to the bundle's items.tsv
                result = run_build(cfg, target, data_path=data_path, quiet=quiet, titles=titles)
        except INPUT_ERRORS as exc:
            raise click.ClickException(str(exc)) from None
        except distributed.PeerLostError as exc:
            raise click.ClickException(str(exc).replace("OUT/", f"{run_dir}/")) from None
        if as_json:
            click.echo(json.dumps(result.report.to_dict(), indent=2))
        else:
            click.echo((result.run_dir / "report.md").read_text(encoding="utf-8"))
        click.echo(f"bundle: {result.bundle_dir}", err=as_json)
        for kind, path in result.report_paths.items():
            click.echo(f"report ({kind}): {path}", err=as_json)
    if not result.gate.passed:
        click.echo(
            f"quality gate FAILED: NDCG@10 dropped {result.gate.relative_drop:.1%} from the distilled "
            f"{result.gate.reference} to int8 "
            f"(allowed {result.gate.max_ndcg_drop:.0%})",
            err=True,
        )
        raise SystemExit(GATE_FAILED_EXIT)
