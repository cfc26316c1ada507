"""``edge-rec keys`` (init, rotate, revoke) and ``edge-rec publish``: the publisher's side of
signed updates. They need the publish extra (python-tuf and cryptography), not TensorFlow."""

from __future__ import annotations

import json
from pathlib import Path

import click

config_file_option = click.option(
    "--config", "config_path", type=click.Path(dir_okay=False), default=None,
    help="TOML config whose [signing] section sets thresholds and expiries (defaults when omitted).")
keys_option = click.option("--keys", "keys_dir", type=click.Path(file_okay=False, path_type=Path),
                           required=True, help="Folder of the private keys (KEYS/<role>/<keyid>.pem).")
repo_option = click.option("--repo", "repo_dir", type=click.Path(file_okay=False, path_type=Path),
                           required=True, help="Folder of the TUF repository (metadata/ and targets/).")


def _signing_config(config_path: str | None):
    from edge_rec.config import ConfigError, resolve_config

    try:
        return resolve_config(config_path).signing
    except ConfigError as exc:
        raise click.ClickException(str(exc)) from None


def _run(operation, *args, **kwargs):
    """Call a signing operation; its :class:`SigningError` becomes a one-line CLI error."""
    from edge_rec.signing import SigningError

    try:
        return operation(*args, **kwargs)
    except (SigningError, OSError) as exc:
        raise click.ClickException(str(exc)) from None


@click.group("keys")
def keys_group() -> None:
    """Make and rotate the keys of a signed update repository (TUF)."""


@keys_group.command("init")
@keys_option
@repo_option
@config_file_option
def keys_init(keys_dir: Path, repo_dir: Path, config_path: str | None) -> None:
    """Make root, targets, snapshot and timestamp keys and the repository's first signed metadata.

    Prints the trust root (REPO/metadata/1.root.json) to ship with every device. Then move
    KEYS/root offline: it is needed only to rotate keys.
    """
    from edge_rec.signing import init_repository

    change = _run(init_repository, repo_dir, keys_dir, _signing_config(config_path))
    click.echo(json.dumps(change.to_dict(), indent=2))
    click.echo(f"trust root for devices: {change.trust_root}\n"
               f"keep {keys_dir / 'root'} offline (for example on an encrypted USB key in a safe): "
               "it signs only key changes (`edge-rec keys rotate`); the other roles' keys stay "
               "where `edge-rec publish` runs", err=True)


@keys_group.command("rotate")
@click.argument("role", type=click.Choice(("root", "targets", "snapshot", "timestamp")))
@keys_option
@repo_option
@config_file_option
def keys_rotate(role: str, keys_dir: Path, repo_dir: Path, config_path: str | None) -> None:
    """Replace every key of ROLE with new ones (a new root version, signed by the old and the new
    root keys); the old keys are revoked."""
    from edge_rec.signing import replace_keys

    change = _run(replace_keys, repo_dir, keys_dir, _signing_config(config_path), role)
    click.echo(json.dumps(change.to_dict(), indent=2))


@keys_group.command("revoke")
@click.argument("keyid")
@keys_option
@repo_option
@config_file_option
def keys_revoke(keyid: str, keys_dir: Path, repo_dir: Path, config_path: str | None) -> None:
    """Revoke the key KEYID (for example a leaked one) and replace it with a new key."""
    from edge_rec.signing import revoke_key

    change = _run(revoke_key, repo_dir, keys_dir, _signing_config(config_path), keyid)
    click.echo(json.dumps(change.to_dict(), indent=2))


@click.command("publish")
@click.argument("bundle", type=click.Path(exists=True, path_type=Path))
@keys_option
@repo_option
@click.option("--profile", default=None,
              help="Device profile the bundle is for (default: every device).")
@click.option("--model-version", type=click.IntRange(min=1), default=None,
              help="Release number (default: one more than the newest published).")
@click.option("--min-runtime-version", default=None,
              help="Oldest device runtime that may install it (default: the oldest that reads "
                   "its bundle schema).")
@config_file_option
def publish(bundle: Path, keys_dir: Path, repo_dir: Path, profile: str | None,
            model_version: int | None, min_runtime_version: str | None, config_path: str | None) -> None:
    """Publish BUNDLE (a folder or .tar.gz) to the signed update repository as a new release."""
    from edge_rec.signing import publish_bundle

    release = _run(publish_bundle, bundle, repo_dir, keys_dir, _signing_config(config_path),
                   profile=profile, model_version=model_version,
                   min_runtime_version=min_runtime_version)
    click.echo(json.dumps({"target": release.target_path, **release.to_custom()["edge_rec"]}, indent=2))
