"""edge-rec benchmark commands (placeholder until implemented)."""

import click


@click.command(name="benchmark")
def benchmark() -> None:
    """Not implemented yet."""
    raise click.ClickException("not implemented yet")
