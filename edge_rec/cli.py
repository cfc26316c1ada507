"""The ``edge-rec`` command line.

Every command lives in one module under :mod:`edge_rec.commands`; this file only groups them.
Device-side commands (``inspect``, ``recommend``, ``serve``, ``benchmark``, ``data``, ``update``,
``verify``) never import TensorFlow, so they run with ``pip install 'edge-rec[device]'`` (plus
``[update]`` for the last two); ``keys`` and ``publish`` need ``[publish]``.
"""

from __future__ import annotations

import logging

import click

from converters.tensorflow_env import set_verbose
from edge_rec import __version__
from edge_rec.commands import (
    benchmark,
    build,
    catalog,
    config,
    convert,
    data,
    device,
    signing,
    training,
    updates,
)
from edge_rec.commands.console import ConsoleHandler


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="edge-rec")
@click.option("-v", "--verbose", is_flag=True,
              help="Log debug messages, and TensorFlow's own logs and warnings, to stderr.")
def main(verbose: bool) -> None:
    """edge-rec: distill, compress and ship recommendation models to speakers and TVs."""
    if verbose:
        set_verbose(True)  # read when TensorFlow is first imported (converters.tensorflow_env)
    logging.basicConfig(
        level=logging.DEBUG if verbose else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        datefmt="%H:%M:%S",
        handlers=[ConsoleHandler()],  # stderr; a log line never shares a progress bar's line
    )


main.add_command(data.data)
main.add_command(training.train_teacher)
main.add_command(training.distill)
main.add_command(convert.convert)
main.add_command(catalog.catalog_group)
main.add_command(build.build)
main.add_command(config.config_group)
main.add_command(device.inspect)
main.add_command(device.recommend)
main.add_command(device.serve)
main.add_command(benchmark.benchmark)
main.add_command(signing.keys_group)
main.add_command(signing.publish)
main.add_command(updates.update)
main.add_command(updates.verify)


if __name__ == "__main__":  # pragma: no cover
    main()
