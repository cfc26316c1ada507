"""``edge-rec config show``: the resolved config and which layer set each value."""

from __future__ import annotations

import json

import click

from edge_rec.commands.options import (
    config_preset_option,
    data_format_option,
    data_option,
    json_option,
)


@click.group("config")
def config_group() -> None:
    """Inspect configuration."""


@config_group.command("show")
@click.option("--config", "config_path", type=click.Path(dir_okay=False), default=None,
              help="TOML config (defaults when omitted).")
@config_preset_option()
@data_option("Interaction log (or synthetic preset) whose shape sizes what the config leaves unset.")
@data_format_option()
@json_option("the resolved config with each value's layer")
def show(config_path, preset, data_path, data_format, as_json) -> None:
    """Print the config a build would use, each key with the layer that set it.

    Layers, lowest first: default < log (sizes derived from --data) < file (--config) < preset
    (--preset) < flag. Without --data, the sizes the log would derive are shown as defaults.
    """
    from edge_rec.config import config_provenance, resolve_config
    from edge_rec.input_errors import DATA_INPUT_ERRORS

    try:
        cfg = resolve_config(config_path, preset=preset,
                             flags={"data": {"format": data_format}} if data_format else None)
        if data_path is not None:
            from edge_rec.data.prepared import prepare_sized_data

            cfg, _data, _choices = prepare_sized_data(cfg, path=data_path, data_format=data_format)
    except DATA_INPUT_ERRORS as exc:
        raise click.ClickException(str(exc)) from None
    entries = config_provenance(cfg)
    if as_json:
        click.echo(json.dumps(entries, indent=2))
        return
    width = max(len(key) + len(json.dumps(entry["value"])) for key, entry in entries.items()) + 3
    for key, entry in entries.items():
        click.echo(f"{key} = {json.dumps(entry['value'])}".ljust(width) + f"  # {entry['layer']}")
