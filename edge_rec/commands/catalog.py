"""``edge-rec catalog patch``: a new bundle whose catalog adds items from their features and drops
retired ones, without retraining (:mod:`edge_rec.catalog_patch`)."""

from __future__ import annotations

import json
from pathlib import Path

import click

from edge_rec.commands.console import progress_to_stderr, require_training_stack
from edge_rec.commands.options import (
    data_format_option,
    data_option,
    json_option,
    overwrite_option,
    quiet_option,
    refuse_non_empty,
)


@click.group(name="catalog")
def catalog_group() -> None:
    """Change a built bundle's catalog without retraining."""


@catalog_group.command(name="patch")
@click.argument("run_dir", type=click.Path(file_okay=False, path_type=Path))
@click.option("--add", "add", type=click.Path(dir_okay=False), default=None,
              help="CSV of new items with the build's feature columns (item_id, genres, title, ...).")
@click.option("--retire", "retire", type=click.Path(dir_okay=False), default=None,
              help="File of item ids to drop, one per line ('#' comments allowed).")
@click.option("--out", "out_dir", required=True, type=click.Path(file_okay=False, path_type=Path),
              help="Bundle directory to write.")
@click.option("--bias-quantile", type=click.FloatRange(0.0, 1.0), default=None,
              help="A new item's output bias: this quantile of the catalog's (default: the run's "
                   "[features] new_item_bias_quantile, 0.5); higher ranks new items higher.")
@overwrite_option()
@data_option("The log the build trained on (calibration and parity); default: the run's recorded source.")
@data_format_option()
@quiet_option()
@json_option("the result as one JSON object")
def patch(run_dir, add, retire, out_dir, bias_quantile, overwrite, data_path, data_format, quiet, as_json) -> None:
    """Write a bundle of RUN_DIR's model (a build with --item-features) whose catalog adds the items
    of --add, represented by their features, and drops those of --retire. The patched model is
    converted to int8, checked for parity and verified like any export; its manifest records the
    base bundle's digest and the items added and retired."""
    refuse_non_empty(out_dir, overwrite)
    require_training_stack("catalog patch")
    from edge_rec.catalog_patch import patch_catalog
    from edge_rec.input_errors import INPUT_ERRORS

    try:
        with progress_to_stderr():
            result = patch_catalog(run_dir, out_dir, add=add, retire=retire, data_path=data_path,
                                   data_format=data_format, bias_quantile=bias_quantile)
    except INPUT_ERRORS as exc:
        raise click.ClickException(str(exc)) from None
    summary = {"bundle": str(result.bundle_dir), "items_added": len(result.added),
               "items_retired": len(result.retired), "catalog_before": result.catalog_before,
               "catalog_after": result.catalog_after, "parity_top10_overlap": result.parity_top10_overlap,
               "seconds": round(result.seconds, 2)}
    if as_json:
        click.echo(json.dumps(summary, indent=2))
    else:
        click.echo(f"bundle: {result.bundle_dir} ({result.catalog_before} items + {len(result.added)} new - "
                   f"{len(result.retired)} retired = {result.catalog_after}; parity top-10 overlap "
                   f"{result.parity_top10_overlap:.3f}; {result.seconds:.1f} s)")
