"""edge-rec device commands (placeholder until implemented)."""

import click


@click.command(name="inspect")
def inspect() -> None:
    """Not implemented yet."""
    raise click.ClickException("not implemented yet")


@click.command(name="recommend")
def recommend() -> None:
    """Not implemented yet."""
    raise click.ClickException("not implemented yet")


@click.command(name="serve")
def serve() -> None:
    """Not implemented yet."""
    raise click.ClickException("not implemented yet")
