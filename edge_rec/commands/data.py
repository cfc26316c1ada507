"""``edge-rec data``: generate synthetic interaction logs and inspect any log.

numpy only: these commands never import TensorFlow.
"""

from __future__ import annotations

import json
import logging

import click

from edge_rec.commands.options import (
    data_format_option,
    delimiter_option,
    json_option,
    skip_bad_lines_option,
)
from edge_rec.data import (
    PRESETS,
    DataFormatError,
    compute_statistics,
    generate_synthetic,
    load_interactions,
    write_interactions_csv,
)

log = logging.getLogger(__name__)


@click.group()
def data() -> None:
    """Generate and inspect interaction logs."""


@data.command()
@click.option("--preset", type=click.Choice(PRESETS), default="synthetic-tv", show_default=True,
              help="Synthetic domain to simulate.")
@click.option("--out", "out", type=click.Path(dir_okay=False), required=True,
              help="CSV file to write (user_id,item_id,timestamp,title).")
@click.option("--seed", type=int, default=0, show_default=True, help="Random seed.")
@click.option("--users", type=click.IntRange(min=1), default=None,
              help="Number of users (default: the preset's).")
@click.option("--items", type=click.IntRange(min=20), default=None,
              help="Catalog size (default: the preset's).")
@json_option("the log statistics as one JSON object")
def generate(preset: str, out: str, seed: int, users: int | None, items: int | None,
             as_json: bool) -> None:
    """Write a seeded synthetic interaction log to OUT as CSV."""
    try:
        interactions = generate_synthetic(preset, seed=seed, users=users, items=items)
        path = write_interactions_csv(interactions, out)
    except (ValueError, OSError) as exc:
        raise click.ClickException(str(exc)) from None
    stats = compute_statistics(interactions)
    if as_json:
        click.echo(json.dumps({"path": str(path), **stats.to_dict()}))
    else:
        click.echo(
            f"wrote {stats.interactions:,} interactions ({stats.users:,} users, "
            f"{stats.items:,} items) to {path}"
        )


@data.command()
@click.argument("path", type=click.Path(dir_okay=False))
@data_format_option("auto", "--format")
@json_option("the statistics as one JSON object")
@skip_bad_lines_option()
@click.option("--user-col", default="user_id", show_default=True, help="csv: user id column.")
@click.option("--item-col", default="item_id", show_default=True, help="csv: item id column.")
@click.option("--time-col", default="timestamp", show_default=True, help="csv: timestamp column.")
@delimiter_option()
def inspect(path: str, data_format: str, as_json: bool, skip_bad_lines: bool, user_col: str,
            item_col: str, time_col: str, delimiter: str) -> None:
    """Print users, items, interactions, density, history lengths and popularity of PATH."""
    try:
        interactions = load_interactions(
            path,
            data_format,
            on_bad_line="skip" if skip_bad_lines else "error",
            user_col=user_col,
            item_col=item_col,
            time_col=time_col,
            delimiter=delimiter,
        )
        stats = compute_statistics(interactions)
    except (DataFormatError, ValueError, OSError) as exc:
        raise click.ClickException(str(exc)) from None
    if interactions.skipped_lines:
        log.warning("%s: skipped %d malformed line(s)", path, interactions.skipped_lines)
    if as_json:
        click.echo(json.dumps(stats.to_dict()))
    else:
        click.echo(stats.describe())
