"""edge-rec build commands (placeholder until implemented)."""

import click


@click.command(name="build")
def build() -> None:
    """Not implemented yet."""
    raise click.ClickException("not implemented yet")
