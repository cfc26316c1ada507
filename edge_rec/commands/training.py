"""edge-rec training commands (placeholder until implemented)."""

import click


@click.command(name="train-teacher")
def train_teacher() -> None:
    """Not implemented yet."""
    raise click.ClickException("not implemented yet")


@click.command(name="distill")
def distill() -> None:
    """Not implemented yet."""
    raise click.ClickException("not implemented yet")
