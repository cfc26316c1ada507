"""The device's trust state: where it lives, how it is seeded, and how a local bundle is checked
against it.

A device's update folder (``--dest``) holds::

    DEST/metadata/          python-tuf's trusted metadata (root, timestamp, snapshot, targets)
    DEST/metadata/anchor    SHA-256 of the trust root this folder was started from
    DEST/downloads/         verified downloads, removed once installed
    DEST/bundles/<name>/    installed bundles (the current one and the previous one)
    DEST/current, previous  symlinks to them; DEST/current is what the app loads
    DEST/bundles/<name>.release.json   the signed release each installed bundle came from

The trust root (the repository's ``root.json`` of version 1, shipped with the device) seeds
``metadata/``; from then on python-tuf's ``ngclient`` moves it forward only through metadata
signed by the keys the previous root trusts. :class:`DeviceTrust` checks a bundle on the disk
(a sideload, or ``edge-rec verify``) against that state with python-tuf's own verification:
the targets metadata must carry a threshold of signatures from the keys the trusted root names,
and one of its releases must have the bundle's manifest digest (which covers every file).
Expiry is not checked there: freshness is the update check's job, and a device offline for a week
must still be able to reload the bundle it already trusts.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

from device_runtime.atomic_file import write_bytes_atomic
from device_runtime.updates.errors import UnsignedBundleError, UpdateSetupError
from device_runtime.updates.release import Release, releases_in

METADATA_DIR = "metadata"
DOWNLOADS_DIR = "downloads"
BUNDLES_DIR = "bundles"
CURRENT_LINK = "current"
PREVIOUS_LINK = "previous"
RELEASE_SUFFIX = ".release.json"
ANCHOR_FILE = "anchor"
ROOT_FILE = "root.json"
TARGETS_FILE = "targets.json"
#: Largest trust root read (python-tuf's own default limit for root metadata).
MAX_ROOT_BYTES = 512_000

UPDATE_EXTRA_HINT = "install the update extra: pip install 'edge-rec[update]'"


def import_tuf_metadata() -> Any:
    """``tuf.api.metadata``, or :class:`UpdateSetupError` saying which extra to install."""
    try:
        from tuf.api import metadata
    except ImportError as exc:
        raise UpdateSetupError(f"signed updates need python-tuf ({exc}); {UPDATE_EXTRA_HINT}") from None
    return metadata


def read_trust_root(path: str | Path, *, check_signatures: bool = True) -> bytes:
    """The bytes of a trust root file, checked to be TUF root metadata (and, with
    ``check_signatures``, signed by its own threshold of keys); :class:`UpdateSetupError` naming
    the file otherwise."""
    metadata = import_tuf_metadata()
    path = Path(path)
    try:
        with path.open("rb") as handle:
            data = handle.read(MAX_ROOT_BYTES + 1)
    except OSError as exc:
        raise UpdateSetupError(f"{path}: cannot read the trust root ({exc.strerror or exc})") from None
    if len(data) > MAX_ROOT_BYTES:
        raise UpdateSetupError(f"{path}: larger than {MAX_ROOT_BYTES} bytes; not a TUF root.json")
    try:
        root = metadata.Metadata.from_bytes(data)
        if not isinstance(root.signed, metadata.Root):
            raise ValueError(f"it holds {root.signed.type} metadata")
        if check_signatures:
            root.signed.verify_delegate(metadata.Root.type, root.signed_bytes, root.signatures)
    except Exception as exc:  # python-tuf raises several kinds for bad input
        raise UpdateSetupError(f"{path}: not a valid TUF root.json ({type(exc).__name__}: {exc}); "
                               "pass the repository's metadata/1.root.json") from None
    return data


class DeviceTrust:
    """The trust state in an update folder (see the module docstring).

    ``DeviceTrust(dest, trust_root)`` seeds ``dest/metadata`` from the trust root file the first
    time and refuses a folder started from another trust root. :meth:`verify_bundle` and
    :meth:`require_signed` check local bundles; :meth:`releases` lists what the trusted targets
    metadata offers.
    """

    def __init__(self, dest: str | Path, trust_root: str | Path) -> None:
        self.dest = Path(dest)
        anchor_file = self.metadata_dir / ANCHOR_FILE
        seeded = anchor_file.exists()  # its signatures were checked when the folder was seeded
        self.trust_root_bytes = read_trust_root(trust_root, check_signatures=not seeded)
        anchor = hashlib.sha256(self.trust_root_bytes).hexdigest()
        self.metadata_dir.mkdir(parents=True, exist_ok=True)
        if seeded:
            if anchor_file.read_text(encoding="ascii").strip() != anchor:
                raise UpdateSetupError(f"{self.dest}: this update folder was started from another "
                                       f"trust root than {trust_root}; use a new --dest folder")
        else:
            write_bytes_atomic(self.metadata_dir / ROOT_FILE, self.trust_root_bytes)
            write_bytes_atomic(anchor_file, anchor.encode("ascii") + b"\n")

    @property
    def metadata_dir(self) -> Path:
        """python-tuf's trusted metadata folder."""
        return self.dest / METADATA_DIR

    def _trusted_targets(self, *, just_refreshed: bool = False) -> Any:
        """The targets metadata on the disk, after checking its signatures against the trusted
        root (:class:`UnsignedBundleError` when either is missing or does not verify).
        ``just_refreshed`` skips that check when python-tuf verified the file in this very
        update check (each Ed25519 check costs ~6 ms in pure Python)."""
        metadata = import_tuf_metadata()
        try:
            targets = metadata.Metadata.from_file(str(self.metadata_dir / TARGETS_FILE))
            if not just_refreshed:
                root = metadata.Metadata.from_file(str(self.metadata_dir / ROOT_FILE))
                root.signed.verify_delegate(metadata.Targets.type, targets.signed_bytes, targets.signatures)
        except FileNotFoundError:
            raise UnsignedBundleError(f"{self.dest}: no trusted releases yet (run `edge-rec update` "
                                      "once to fetch the signed metadata)") from None
        except Exception as exc:
            raise UnsignedBundleError(f"{self.metadata_dir}: the trusted metadata does not verify "
                                      f"({type(exc).__name__}: {exc})") from None
        return targets.signed

    def releases(self, *, just_refreshed: bool = False) -> dict[str, Release]:
        """Every edge-rec release in the trusted targets metadata, by target path (targets
        without valid edge-rec fields are skipped); ``just_refreshed``: see :meth:`_trusted_targets`."""
        return releases_in(self._trusted_targets(just_refreshed=just_refreshed))

    def require_signed(self, manifest_sha256: str, source: str) -> Release:
        """The trusted release whose bundle has this manifest digest; :class:`UnsignedBundleError`
        naming ``source`` when none has."""
        for release in self.releases().values():
            if release.manifest_sha256 == manifest_sha256:
                return release
        raise UnsignedBundleError(f"{source}: no signed release lists this bundle (manifest "
                                  f"{manifest_sha256[:12]}...); with a trust root configured only "
                                  "bundles published to the update repository are accepted")

    def verify_bundle(self, path: str | Path) -> Release:
        """Verify the bundle at ``path`` (its digests, then its signed release)."""
        from device_runtime.bundle import verify_bundle

        bundle = verify_bundle(path)
        return self.require_signed(bundle.manifest_sha256, str(bundle.source))


def release_record(bundle_dir: Path) -> Path:
    """The file beside an installed bundle folder that records its release."""
    return bundle_dir.with_name(bundle_dir.name + RELEASE_SUFFIX)


def read_installed(dest: str | Path) -> Release | None:
    """The release ``dest/current`` holds, or None before the first install."""
    current = Path(dest) / CURRENT_LINK
    if not current.is_symlink():
        return None
    path = release_record(current.resolve())
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        return Release.from_custom(data["custom"], data["target_path"])
    except FileNotFoundError:
        return None
    except (ValueError, KeyError, TypeError) as exc:
        raise UpdateSetupError(f"{path}: unreadable ({exc}); remove {current} and run the update "
                               "again") from None


def write_release_record(bundle_dir: Path, release: Release) -> None:
    """Record ``release`` beside its installed folder (atomically)."""
    body = {"target_path": release.target_path, "custom": release.to_custom()}
    write_bytes_atomic(release_record(bundle_dir), (json.dumps(body, indent=2) + "\n").encode("utf-8"))
