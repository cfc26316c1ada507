"""edge-rec data commands (placeholder until implemented)."""

import click


@click.group()
def data() -> None:
    """Generate and inspect interaction logs."""
