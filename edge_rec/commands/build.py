"""``edge-rec build``: run the whole pipeline from a config file into a run directory."""

from __future__ import annotations

import json

import click

from edge_rec.config import ConfigError, apply_overrides, load_config

#: Exit status of a build whose bundle and report were written but whose quality gate failed.
GATE_FAILED_EXIT = 3


@click.command()
@click.option("--config", "config_path", type=click.Path(dir_okay=False), default=None,
              help="TOML config (defaults when omitted).")
@click.option("--data", "data_path", default=None,
              help="Interaction log to train on (overrides [data] source; a preset name or a path).")
@click.option("--data-format", default=None,
              help="movielens-100k, movielens-1m, movielens-latest, csv or auto.")
@click.option("--skip-bad-lines", is_flag=True,
              help="Skip and count malformed lines of --data instead of stopping ([data] on_bad_line).")
@click.option("--out", "run_dir", required=True, type=click.Path(file_okay=False),
              help="Run directory to write (bundle/, report.json, report.md, chart.png, models/, tflite/).")
@click.option("--profile", default=None, help="A [profile.NAME] of the config, or the built-in 'quick'.")
@click.option("--quiet", is_flag=True, help="No Keras progress bars.")
@click.option("--json", "as_json", is_flag=True, help="Print the report as JSON on stdout.")
def build(config_path, data_path, data_format, skip_bad_lines, run_dir, profile, quiet, as_json) -> None:
    """Train teacher and students, compress, convert, check parity, bundle and report.

    Exit status: 0 when the build passed; 3 when the quality gate ([gate] max_ndcg_drop, relative
    NDCG@10 drop from teacher to int8) failed — the bundle and the report are written, so CI can
    tell "built but not good enough" from an error; 1 for bad input or when int8 parity falls
    below [convert] parity_threshold (no bundle is written then); 2 for usage errors.
    """
    try:
        cfg = load_config(config_path, profile=profile)
        if skip_bad_lines:
            cfg = apply_overrides(cfg, {"data": {"on_bad_line": "skip"}}, source="--skip-bad-lines")
    except ConfigError as exc:
        raise click.ClickException(str(exc)) from None
    from edge_rec.input_errors import INPUT_ERRORS
    from edge_rec.pipeline import run_build

    try:
        result = run_build(cfg, run_dir, data_path=data_path, data_format=data_format, quiet=quiet)
    except INPUT_ERRORS as exc:
        raise click.ClickException(str(exc)) from None
    if as_json:
        click.echo(json.dumps(result.report, indent=2))
    else:
        click.echo((result.run_dir / "report.md").read_text(encoding="utf-8"))
    click.echo(f"bundle: {result.bundle_dir}", err=as_json)
    for kind, path in result.report_paths.items():
        click.echo(f"report ({kind}): {path}", err=as_json)
    if not result.gate.passed:
        click.echo(
            f"quality gate FAILED: NDCG@10 dropped {result.gate.relative_drop:.1%} from teacher to int8 "
            f"(allowed {result.gate.max_ndcg_drop:.0%})",
            err=True,
        )
        raise SystemExit(GATE_FAILED_EXIT)
