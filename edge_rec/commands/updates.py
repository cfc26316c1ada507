"""``edge-rec update`` and ``edge-rec verify``: the device's side of signed updates. They import
only :mod:`device_runtime` (with the update extra, python-tuf), never TensorFlow."""

from __future__ import annotations

import json
from pathlib import Path

import click

trust_root_option = click.option(
    "--trust-root", type=click.Path(exists=True, dir_okay=False, path_type=Path), required=True,
    help="The repository's root.json of version 1, shipped with the device.")


@click.command("update")
@click.option("--repo-url", required=True, help="URL of the repository (holding metadata/ and targets/).")
@trust_root_option
@click.option("--dest", type=click.Path(file_okay=False, path_type=Path), required=True,
              help="Update folder: trusted metadata, installed bundles, DEST/current.")
@click.option("--profile", default=None, help="Device profile (default: the newest release for any).")
def update(repo_url: str, trust_root: Path, dest: Path, profile: str | None) -> None:
    """Install the newest signed release for this device at DEST/current (exit 0), or say in one
    line why not (exit 1). Prints one JSON object."""
    from device_runtime.updates import UpdateClient, UpdateError

    try:
        result = UpdateClient(repo_url, trust_root, dest, profile=profile).update()
    except UpdateError as exc:
        raise click.ClickException(f"{type(exc).__name__}: {exc}") from None
    click.echo(json.dumps(result.to_dict()))


@click.command("verify")
@click.argument("bundle", type=click.Path(exists=True, path_type=Path))
@trust_root_option
@click.option("--dest", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="Update folder whose trusted metadata to check against.")
@click.option("--repo-url", default=None,
              help="Refresh the signed metadata from this repository first (into --dest, or a "
                   "temporary folder).")
def verify(bundle: Path, trust_root: Path, dest: Path | None, repo_url: str | None) -> None:
    """Check that BUNDLE is intact and that a signed release lists it (exit 0, its release as
    JSON), or say why not (exit 1)."""
    import tempfile

    from device_runtime.bundle import BundleError
    from device_runtime.updates import DeviceTrust, UpdateClient, UpdateError

    if dest is None and repo_url is None:
        raise click.UsageError("give --dest (a device's update folder) or --repo-url (or both)")
    with tempfile.TemporaryDirectory(prefix="edge-rec-verify-") as scratch:
        folder = dest or Path(scratch)
        try:
            if repo_url is not None:
                UpdateClient(repo_url, trust_root, folder).refresh()
            release = DeviceTrust(folder, trust_root).verify_bundle(bundle)
        except (UpdateError, BundleError) as exc:
            raise click.ClickException(f"{type(exc).__name__}: {exc}") from None
    click.echo(json.dumps({"bundle": str(bundle), "target": release.target_path,
                           **release.to_custom()["edge_rec"]}))
