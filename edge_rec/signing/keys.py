"""Key operations on a signed update repository: make its keys and first metadata, rotate a
role's keys, revoke one key. Each is a new root version signed by the old root's keys and the
new root's keys, which is how TUF moves a device's trust (python-tuf's ``ngclient`` walks the
root versions one by one)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from edge_rec.config import SigningConfig
from edge_rec.signing.errors import SigningError
from edge_rec.signing.repository import METADATA_DIR, TOP_LEVEL_ROLES, open_repository


@dataclass(frozen=True)
class KeyChange:
    """What a key operation did: the root version now current, the key ids it added and revoked
    per role, and the trust root file a new device ships with."""

    root_version: int
    added: dict[str, list[str]]
    revoked: dict[str, list[str]]
    trust_root: Path

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form (the ``edge-rec keys`` output)."""
        return {"root_version": self.root_version, "added": self.added, "revoked": self.revoked,
                "trust_root": str(self.trust_root)}


def trust_root_path(repo: str | Path) -> Path:
    """The repository's first root metadata: the trust root every device ships with."""
    return Path(repo) / METADATA_DIR / "1.root.json"


def init_repository(repo: str | Path, keys: str | Path, config: SigningConfig) -> KeyChange:
    """Make ``config``'s threshold of Ed25519 keys for each top-level role in ``keys`` and the
    repository's first signed metadata in ``repo`` (root, targets, snapshot, timestamp, all
    version 1). Refuses a folder that already holds a repository."""
    repository = open_repository(repo, keys, config)
    if repository.exists():
        raise SigningError(f"{repository.metadata_dir}: a repository is already there; use "
                           "`edge-rec keys rotate` to change its keys")
    added: dict[str, list[str]] = {}
    with repository.edit_root() as root:
        for role in TOP_LEVEL_ROLES:
            for _ in range(config.threshold(role)):
                signer = repository.keys.generate(role)
                root.add_key(signer.public_key, role)
                added.setdefault(role, []).append(signer.public_key.keyid)
            root.roles[role].threshold = config.threshold(role)
    with repository.edit_targets():
        pass
    repository.publish_state()
    return KeyChange(1, added, {}, trust_root_path(repo))


def replace_keys(repo: str | Path, keys: str | Path, config: SigningConfig, role: str,
                 keyids: list[str] | None = None) -> KeyChange:
    """Replace ``keyids`` of ``role`` (all its keys when None; ``config``'s threshold of new ones
    then) with new keys in a new root version, re-sign ``role``'s metadata with them, and move
    the old private keys to ``KEYS/revoked``. A device that updates afterwards refuses anything
    the old keys sign."""
    if role not in TOP_LEVEL_ROLES:
        raise SigningError(f"role {role!r}: expected one of {', '.join(TOP_LEVEL_ROLES)}")
    repository = open_repository(repo, keys, config)
    if not repository.exists():
        raise SigningError(f"{repository.metadata_dir}: no repository; run `edge-rec keys init` first")
    current = repository.root()
    granted = list(current.roles[role].keyids)
    old = granted if keyids is None else list(keyids)
    unknown = [keyid for keyid in old if keyid not in granted]
    if unknown:
        raise SigningError(f"key(s) {', '.join(unknown)} are not {role} keys; {role}'s keys are "
                           f"{', '.join(granted)}")
    repository.require_keys("root", *(r for r in ("targets", "snapshot", "timestamp") if r != role))
    threshold = config.threshold(role) if keyids is None else current.roles[role].threshold
    new_count = threshold if keyids is None else len(old)
    repository.previous_root = current
    added: list[str] = []
    with repository.edit_root() as root:
        for _ in range(new_count):
            signer = repository.keys.generate(role)
            root.add_key(signer.public_key, role)
            added.append(signer.public_key.keyid)
        for keyid in old:
            root.revoke_key(keyid, role)
        root.roles[role].threshold = threshold
    repository.previous_root = None
    _resign(repository, role)
    for keyid in old:
        repository.keys.revoke(role, keyid)
    return KeyChange(repository.root().version, {role: added}, {role: old}, trust_root_path(repo))


def revoke_key(repo: str | Path, keys: str | Path, config: SigningConfig, keyid: str) -> KeyChange:
    """Replace the one key ``keyid`` (of whichever role holds it) with a new key."""
    repository = open_repository(repo, keys, config)
    if not repository.exists():
        raise SigningError(f"{repository.metadata_dir}: no repository; run `edge-rec keys init` first")
    roles = [role for role in TOP_LEVEL_ROLES if keyid in repository.root().roles[role].keyids]
    if not roles:
        raise SigningError(f"key {keyid!r} is not a key of this repository's root")
    return replace_keys(repo, keys, config, roles[0], [keyid])


def _resign(repository: Any, role: str) -> None:
    """New versions of ``role``'s metadata (and of those that list it) signed by its new keys."""
    if role == "targets":
        with repository.edit_targets():
            pass
    if role in ("targets", "snapshot"):
        repository.do_snapshot(force=True)
    if role != "root":
        repository.do_timestamp(force=True)
