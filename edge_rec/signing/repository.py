"""A TUF repository in a folder, written with python-tuf's metadata API and its ``Repository``
helper (which versions snapshot and timestamp); signed with the keys of a :class:`KeyStore`.

    REPO/metadata/N.root.json       every root version (a device walks them in order)
    REPO/metadata/root.json         the newest root
    REPO/metadata/N.targets.json    targets, N.snapshot.json snapshot (consistent snapshots)
    REPO/metadata/timestamp.json    the only unversioned file a device fetches
    REPO/targets/bundles/<profile>/<sha256>.bundle-vN.tar.gz   the release archives

Any static file host serving ``REPO`` is an update server. Files are written to a temporary name
and renamed, targets and snapshot before the timestamp that points at them, so a device never
sees a timestamp whose files are missing.
"""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

from device_runtime.atomic_file import write_bytes_atomic
from edge_rec.config import SigningConfig
from edge_rec.signing.errors import SigningError
from edge_rec.signing.keystore import KeyStore

METADATA_DIR = "metadata"
TARGETS_DIR = "targets"
TOP_LEVEL_ROLES = ("root", "targets", "snapshot", "timestamp")


def _tuf() -> Any:
    try:
        from tuf.api import metadata
    except ImportError as exc:
        raise SigningError(f"publishing needs python-tuf ({exc}); install it with: "
                           "pip install 'edge-rec[publish]'") from None
    return metadata


def _now() -> datetime:
    return datetime.now(timezone.utc).replace(microsecond=0)


def open_repository(repo: str | Path, keys: str | Path, config: SigningConfig) -> Any:
    """The repository in folder ``repo`` signed with the keys in ``keys`` (see the module
    docstring); :class:`SigningError` when python-tuf is missing."""
    _tuf()
    return _repository_class()(Path(repo), KeyStore(keys), config)


def _repository_class() -> type:
    from tuf.api.metadata import Metadata, MetaFile, Root, Snapshot, Targets, Timestamp
    from tuf.api.serialization.json import JSONSerializer
    from tuf.repository import Repository

    class SignedFolderRepository(Repository):
        """python-tuf's ``Repository`` over a folder: ``open`` reads a role's newest metadata (a new,
        empty one before the first), ``close`` sets its version and expiry, signs it with every
        key of the role that the key store holds and writes it."""

        def __init__(self, path: Path, keys: KeyStore, config: SigningConfig) -> None:
            self.path = path
            self.keys = keys
            self.config = config
            #: a root being replaced, whose keys must also sign the next root version
            self.previous_root: Any = None

        @property
        def metadata_dir(self) -> Path:
            return self.path / METADATA_DIR

        @property
        def targets_dir(self) -> Path:
            return self.path / TARGETS_DIR

        def exists(self) -> bool:
            return (self.metadata_dir / "root.json").is_file()

        def open(self, role: str) -> Any:
            path = self.metadata_dir / f"{role}.json"
            if path.is_file():
                return Metadata.from_file(str(path))
            fresh = {"root": lambda: Root(consistent_snapshot=True), "targets": Targets,
                     "snapshot": Snapshot, "timestamp": Timestamp}[role]()
            fresh.version = 0  # close() makes it version 1
            return Metadata(fresh)

        def close(self, role: str, md: Any) -> None:
            md.signed.version += 1
            md.signed.expires = _now() + timedelta(days=self.config.expiry_days(role))
            md.signatures.clear()
            root = md.signed if role == "root" else self.root()
            authorities = [root] + ([self.previous_root] if role == "root" and self.previous_root else [])
            for authority in authorities:
                self._sign(md, role, authority)
            self.write_metadata(role, md)

        def _threshold_signers(self, role: str, authority: Any) -> list[Any]:
            """Signers for the keys of ``role`` that ``authority`` (a root) names and the store
            holds; :class:`SigningError` when fewer than the role's threshold."""
            granted = authority.roles[role]
            signers = [signer for keyid in granted.keyids
                       if (signer := self.keys.signer(role, authority.keys[keyid])) is not None]
            if len(signers) < granted.threshold:
                raise SigningError(f"{role} needs {granted.threshold} signature(s) but only {len(signers)} "
                                   f"of its keys are in {self.keys.root / role}; bring the offline "
                                   "key(s) back (see docs/updates.md, key custody)")
            return signers

        def _sign(self, md: Any, role: str, authority: Any) -> None:
            """Sign ``md`` with every key the store holds among those ``authority`` names for
            ``role`` (at least its threshold)."""
            for signer in self._threshold_signers(role, authority):
                if signer.public_key.keyid not in md.signatures:
                    md.sign(signer, append=True)

        def require_keys(self, *roles: str) -> None:
            """Refuse (before anything is written) when the store lacks a threshold of keys for
            one of ``roles`` under the current root."""
            root = self.root()
            for role in roles:
                self._threshold_signers(role, root)

        def write_metadata(self, role: str, md: Any) -> None:
            """Write signed ``md`` as the newest metadata of ``role`` (and its versioned copy)."""
            data = md.to_bytes(JSONSerializer(compact=False))
            if role != "timestamp":  # consistent snapshots: devices fetch N.<role>.json
                write_bytes_atomic(self.metadata_dir / f"{md.signed.version}.{role}.json", data)
            write_bytes_atomic(self.metadata_dir / f"{role}.json", data)

        @property
        def targets_infos(self) -> dict[str, Any]:
            return {"targets.json": MetaFile(self.targets().version)}

        @property
        def snapshot_info(self) -> Any:
            return MetaFile(self.snapshot().version)

        def add_target_file(self, target_path: str, data: bytes, custom: dict[str, Any]) -> Any:
            """Write ``data`` as target ``target_path`` (under its hash prefix) and return its
            ``TargetFile`` (the caller adds it in an ``edit_targets`` block)."""
            from tuf.api.metadata import TargetFile

            info = TargetFile.from_data(target_path, data, ["sha256"])
            info.unrecognized_fields["custom"] = custom
            folder, _, name = target_path.rpartition("/")
            digest = info.hashes["sha256"]
            write_bytes_atomic(self.targets_dir / folder / f"{digest}.{name}", data)
            return info

        def publish_state(self) -> None:
            """New snapshot and timestamp versions over the current targets."""
            self.do_snapshot()
            self.do_timestamp(force=True)

    return SignedFolderRepository

