"""edge-rec convert commands (placeholder until implemented)."""

import click


@click.command(name="convert")
def convert() -> None:
    """Not implemented yet."""
    raise click.ClickException("not implemented yet")
