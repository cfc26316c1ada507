"""Publishing a bundle to a signed update repository: the bundle (a folder or a ``.tar.gz``) is
verified, archived reproducibly, added as a TUF target whose custom fields are its
:class:`~device_runtime.updates.release.Release`, and new targets, snapshot and timestamp
versions are signed."""

from __future__ import annotations

import re
from pathlib import Path

from device_runtime.bundle import BundleError, archive_members, build_archive, verify_bundle
from device_runtime.updates.release import Release, releases_in, target_path_for
from device_runtime.version import RUNTIME_FOR_READER_SCHEMA, RUNTIME_VERSION, parse_version
from edge_rec.config import SigningConfig
from edge_rec.signing.errors import SigningError
from edge_rec.signing.repository import open_repository

PROFILE_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}")


def published_releases(repository) -> dict[str, Release]:
    """The releases the repository's targets metadata lists, by target path."""
    return releases_in(repository.targets())


def publish_bundle(bundle: str | Path, repo: str | Path, keys: str | Path, config: SigningConfig, *,
                   profile: str | None = None, model_version: int | None = None,
                   min_runtime_version: str | None = None) -> Release:
    """Add ``bundle`` to the repository as a new release and sign the new metadata.

    ``model_version`` defaults to one more than the newest release (it must be newer than every
    release already published: devices install only newer versions); ``min_runtime_version``
    defaults to the oldest runtime that reads the bundle's schema. Everything is checked (the
    bundle, the version, the keys) before anything is written.
    """
    if profile is not None and not PROFILE_NAME.fullmatch(profile):
        raise SigningError(f"--profile {profile[:80]!r}: expected a device profile name (letters, "
                           "digits, '.', '_', '-')")
    if min_runtime_version is not None:
        try:
            parse_version(min_runtime_version, where="--min-runtime-version")
        except ValueError as exc:
            raise SigningError(str(exc)) from None
    path = Path(bundle)
    try:
        verified = verify_bundle(path)
    except (BundleError, OSError) as exc:
        raise SigningError(f"{path}: not a publishable bundle: {exc}") from None
    data = path.read_bytes() if path.is_file() else build_archive(archive_members(path))
    repository = open_repository(repo, keys, config)
    if not repository.exists():
        raise SigningError(f"{repository.metadata_dir}: no repository; run `edge-rec keys init` first")
    repository.require_keys("targets", "snapshot", "timestamp")
    existing = published_releases(repository)
    newest = max((release.model_version for release in existing.values()), default=0)
    version = newest + 1 if model_version is None else model_version
    if version <= newest:
        raise SigningError(f"--model-version {version}: release {newest} is already published; a "
                           f"device installs only newer versions, so use {newest + 1} or more")
    manifest = verified.manifest
    release = Release(
        model_version=version,
        bundle_schema=manifest.schema_version,
        min_reader_schema=manifest.min_reader_schema,
        min_runtime_version=min_runtime_version
        or RUNTIME_FOR_READER_SCHEMA.get(manifest.min_reader_schema, RUNTIME_VERSION),
        device_profile=profile,
        manifest_sha256=verified.manifest_sha256,
        target_path=target_path_for(profile, version),
    )
    with repository.edit_targets() as targets:
        targets.targets[release.target_path] = repository.add_target_file(
            release.target_path, data, release.to_custom())
    repository.publish_state()
    return release
