"""A signed update repository on 127.0.0.1 and the attacks a network or a compromised mirror can
make on it: one home for the attack suite that ``tests/test_update_attacks.py`` asserts and
``benchmarks/update.py`` counts.

The publisher writes to ``base/repo``; the server serves ``base/served`` (the CDN, which the
attacker controls). :meth:`SignedRepo.sync` copies the publisher's state to the CDN; each attack
then changes what the CDN serves.
"""

from __future__ import annotations

import functools
import http.server
import shutil
import threading
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

from device_runtime.bundle import verify_bundle
from device_runtime.updates import (
    FreezeError,
    IncompatibleReleaseError,
    RollbackError,
    TamperedDownloadError,
    UntrustedMetadataError,
)
from device_runtime.updates.release import Release, target_path_for
from edge_rec.config import SigningConfig
from edge_rec.signing import init_repository, publish_bundle, replace_keys
from edge_rec.signing.keystore import REVOKED_DIR, KeyStore
from edge_rec.signing.repository import open_repository

#: Pause between two recommend calls of the concurrent load.
LOAD_PAUSE_S = 0.001
#: The endless download stops by itself after this many bytes (the device must stop far earlier).
ENDLESS_CAP_BYTES = 64 * 1024 * 1024


class _Handler(http.server.SimpleHTTPRequestHandler):
    """Static files, except the URL paths in ``server.overrides`` (path -> handler function)."""

    def do_GET(self) -> None:  # noqa: N802 - http.server's naming
        override = self.server.overrides.get(self.path.split("?")[0])
        if override is not None:
            override(self)
        else:
            super().do_GET()

    def log_message(self, *args: Any) -> None:
        pass


class RepoServer:
    """A static HTTP server for ``folder`` on 127.0.0.1 (an ephemeral port), in a thread."""

    def __init__(self, folder: Path) -> None:
        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0),
                                                     functools.partial(_Handler, directory=str(folder)))
        self.httpd.daemon_threads = True
        self.httpd.overrides = {}
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/"
        self._thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    @property
    def overrides(self) -> dict[str, Callable[[Any], None]]:
        return self.httpd.overrides

    def __enter__(self) -> RepoServer:
        self._thread.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


def endless_response(handler: Any) -> None:
    """Answer 200 and stream zeros without a length until the client hangs up (or the cap)."""
    handler.send_response(200)
    handler.send_header("Content-Type", "application/octet-stream")
    handler.end_headers()
    chunk = b"\0" * 65536
    try:
        for _ in range(ENDLESS_CAP_BYTES // len(chunk)):
            handler.wfile.write(chunk)
    except (BrokenPipeError, ConnectionResetError):
        pass


@dataclass
class SignedRepo:
    """A publisher's repository and keys under ``base``, and the CDN copy a server serves."""

    base: Path
    config: SigningConfig = field(default_factory=SigningConfig)

    def __post_init__(self) -> None:
        init_repository(self.repo, self.keys, self.config)
        self.sync()

    @property
    def repo(self) -> Path:
        return self.base / "repo"

    @property
    def keys(self) -> Path:
        return self.base / "keys"

    @property
    def served(self) -> Path:
        return self.base / "served"

    @property
    def trust_root(self) -> Path:
        return self.repo / "metadata" / "1.root.json"

    def sync(self) -> None:
        """The CDN serves exactly what the publisher wrote."""
        shutil.rmtree(self.served, ignore_errors=True)
        shutil.copytree(self.repo, self.served)

    def publish(self, bundle: Path, **options: Any) -> Release:
        release = publish_bundle(bundle, self.repo, self.keys, self.config, **options)
        self.sync()
        return release

    def publisher(self, config: SigningConfig | None = None) -> Any:
        return open_repository(self.repo, self.keys, config or self.config)

    def cdn(self, keys: Path | None = None) -> Any:
        """The served copy as a repository (what an attacker with ``keys`` can write)."""
        return open_repository(self.served, keys or self.keys, self.config)

    def served_target(self, release: Release) -> Path:
        folder, _, name = release.target_path.rpartition("/")
        return next((self.served / "targets" / folder).glob(f"*.{name}"))


def forge(repository: Any, role: str, signers: list[Any], *, expires: datetime) -> None:
    """Write a new version of ``role``, expiring at ``expires``, signed only by ``signers``."""
    md = repository.open(role)
    md.signed.version += 1
    md.signed.expires = expires
    md.signatures.clear()
    for signer in signers:
        md.sign(signer, append=True)
    repository.write_metadata(role, md)


def forge_targets(repo: SignedRepo, signers: list[Any], bundle: Path, version: int) -> None:
    """The publisher signs a new targets version (with snapshot and timestamp over it); on the
    CDN, that targets file is replaced by one of the same version that also lists ``bundle`` as
    release ``version``, signed only by ``signers``."""
    publisher = repo.publisher()
    with publisher.edit_targets():
        pass
    publisher.publish_state()
    repo.sync()
    cdn = repo.cdn()
    md = cdn.open("targets")
    evil_target(cdn, bundle, version)(md.signed)
    md.signatures.clear()
    for signer in signers:
        md.sign(signer, append=True)
    cdn.write_metadata("targets", md)


def evil_target(repository: Any, bundle: Path, version: int) -> Callable[[Any], None]:
    """An edit of targets metadata that lists ``bundle`` as release ``version``."""
    from device_runtime.bundle import archive_members, build_archive

    data = build_archive(archive_members(bundle))
    release = Release(version, 2, 2, "0.1.0", None, verify_bundle(bundle).manifest_sha256,
                      target_path_for(None, version))
    info = repository.add_target_file(release.target_path, data, release.to_custom())

    def edit(targets: Any) -> None:
        targets.targets[release.target_path] = info
    return edit


def signers_of(keys: Path, role: str, root: Any, folder: str | None = None) -> list[Any]:
    """Signers for the keys of ``role`` that ``root`` names, read from ``keys/<folder or role>``."""
    store = KeyStore(keys)
    found = []
    for path in sorted((keys / (folder or role)).glob("*.pem")):
        if path.stem in root.roles[role].keyids:
            found.append(store.signer(folder or role, root.keys[path.stem]))
    return found


def stranger_signer() -> Any:
    """A signer for a key no root of the repository names."""
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
    from securesystemslib.signer import CryptoSigner

    return CryptoSigner(Ed25519PrivateKey.generate())


@dataclass(frozen=True)
class Attack:
    """One attack: ``stage(repo, server, evil_bundle)`` changes what the CDN serves (after the
    publisher's latest state was synced); the update must then fail with ``refused_with``."""

    name: str
    refused_with: type
    stage: Callable[[SignedRepo, RepoServer, Path], None]


def _tampered_target(repo: SignedRepo, server: RepoServer, evil: Path) -> None:
    release = repo.publish(evil)  # a real new release; the CDN then alters its bytes
    path = repo.served_target(release)
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0xFF
    path.write_bytes(bytes(data))


def _wrong_key(repo: SignedRepo, server: RepoServer, evil: Path) -> None:
    forge_targets(repo, [stranger_signer()], evil, 900)


def _rollback(repo: SignedRepo, server: RepoServer, evil: Path) -> None:
    old = (repo.base / "old-timestamp.json").read_bytes()  # saved by the suite at its start
    (repo.served / "metadata" / "timestamp.json").write_bytes(old)


def _freeze(repo: SignedRepo, server: RepoServer, evil: Path) -> None:
    cdn = repo.cdn()
    past = datetime.now(timezone.utc).replace(microsecond=0) - timedelta(hours=1)
    forge(cdn, "timestamp", signers_of(repo.keys, "timestamp", cdn.root()), expires=past)


def _mix_and_match(repo: SignedRepo, server: RepoServer, evil: Path) -> None:
    old_snapshot = (repo.served / "metadata" / "snapshot.json").read_bytes()
    publisher = repo.publisher()
    publisher.do_snapshot(force=True)
    publisher.do_timestamp(force=True)
    repo.sync()
    version = publisher.snapshot().version
    (repo.served / "metadata" / f"{version}.snapshot.json").write_bytes(old_snapshot)


def _endless_target(repo: SignedRepo, server: RepoServer, evil: Path) -> None:
    release = repo.publish(evil)
    path = repo.served_target(release)
    server.overrides["/" + path.relative_to(repo.served).as_posix()] = endless_response


def _endless_timestamp(repo: SignedRepo, server: RepoServer, evil: Path) -> None:
    server.overrides["/metadata/timestamp.json"] = endless_response


def _revoked_key(repo: SignedRepo, server: RepoServer, evil: Path) -> None:
    publisher = repo.publisher()
    before = publisher.root()
    replace_keys(repo.repo, repo.keys, repo.config, "targets")  # the publisher rotates...
    revoked = signers_of(repo.keys, "targets", before, folder=REVOKED_DIR)
    forge_targets(repo, revoked, evil, 901)  # ...and the thief signs with the revoked keys


def _below_threshold(repo: SignedRepo, server: RepoServer, evil: Path) -> None:
    stolen = signers_of(repo.keys, "targets", repo.publisher().root())[:1]  # 1 of a threshold of 2
    forge_targets(repo, stolen, evil, 902)


def _incompatible_runtime(repo: SignedRepo, server: RepoServer, evil: Path) -> None:
    repo.publish(evil, min_runtime_version="99.0")


def _incompatible_schema(repo: SignedRepo, server: RepoServer, evil: Path) -> None:
    publisher = repo.publisher()
    newest = max(r.model_version for r in _releases(publisher))
    release = replace(Release(newest + 1, 3, 3, "0.1.0", None, verify_bundle(evil).manifest_sha256),
                      target_path=target_path_for(None, newest + 1))
    from device_runtime.bundle import archive_members, build_archive

    info = publisher.add_target_file(release.target_path, build_archive(archive_members(evil)),
                                     release.to_custom())
    with publisher.edit_targets() as targets:
        targets.targets[release.target_path] = info
    publisher.publish_state()
    repo.sync()


def _releases(repository: Any) -> list[Release]:
    from edge_rec.signing import published_releases

    return list(published_releases(repository).values())


#: The attacks, in the order the suite runs them (each after the publisher's state is re-synced).
ATTACKS = (
    Attack("tampered target", TamperedDownloadError, _tampered_target),
    Attack("target signed by a wrong key", UntrustedMetadataError, _wrong_key),
    Attack("rollback to older metadata", RollbackError, _rollback),
    Attack("freeze (expired timestamp)", FreezeError, _freeze),
    Attack("mix-and-match of metadata versions", RollbackError, _mix_and_match),
    Attack("endless target download", TamperedDownloadError, _endless_target),
    Attack("endless timestamp download", TamperedDownloadError, _endless_timestamp),
    Attack("below-threshold signatures", UntrustedMetadataError, _below_threshold),
    Attack("revoked key after rotation", UntrustedMetadataError, _revoked_key),
    Attack("release for a newer runtime", IncompatibleReleaseError, _incompatible_runtime),
    Attack("release for a newer bundle schema", IncompatibleReleaseError, _incompatible_schema),
)

#: The suite's repository: two targets keys (threshold 2), so that a single stolen key is not enough.
ATTACK_CONFIG = SigningConfig(targets_threshold=2)


@dataclass
class AttackOutcome:
    """What one attack did: the error it met (None when the update went through), whether that
    is the expected refusal, and whether the device's state stayed as it was."""

    name: str
    error: str | None
    reason: str
    refused: bool
    state_kept: bool


def _leftovers(dest: Path) -> list[str]:
    """Half-written files an update may leave: staging folders and downloads."""
    found = [p.name for p in (dest / "bundles").glob(".staging-*")]
    downloads = dest / "downloads"
    return found + ([p.name for p in downloads.iterdir()] if downloads.is_dir() else [])


def run_attack_suite(base: Path, first: Path, other: Path, *, history: list[str]) -> dict[str, Any]:
    """Publish ``first``, install it on a device that serves it under a concurrent load of
    recommend calls (``history``), then run every attack of :data:`ATTACKS`; before each, the
    CDN is restored and the device updates legitimately (installing what was really published).
    Returns the counts and one :class:`AttackOutcome` per attack."""
    from device_runtime.recommender import Recommender
    from device_runtime.updates import DeviceTrust, UpdateClient, UpdateError

    repo = SignedRepo(base, ATTACK_CONFIG)
    repo.publish(first)
    (base / "old-timestamp.json").write_bytes((repo.served / "metadata" / "timestamp.json").read_bytes())
    dest = base / "device"
    outcomes: list[AttackOutcome] = []
    served = {"requests": 0, "failures": 0}
    stop = threading.Event()
    with RepoServer(repo.served) as server:
        def client() -> Any:
            return UpdateClient(server.url, repo.trust_root, dest)

        client().update()
        rec = Recommender.load(dest / "current", trust=DeviceTrust(dest, repo.trust_root))

        def load() -> None:
            while not stop.wait(LOAD_PAUSE_S):  # a device's steady traffic, not a GIL hog
                try:
                    if len(rec.recommend(history, k=5)) != 5:
                        raise AssertionError("short list")
                    served["requests"] += 1
                except Exception:  # any failure counts
                    served["failures"] += 1

        worker = threading.Thread(target=load, daemon=True)
        worker.start()
        try:
            for attack in ATTACKS:
                repo.sync()
                server.overrides.clear()
                try:
                    client().update(reload=rec.reload)  # legitimate: the real newest release
                except IncompatibleReleaseError:
                    pass  # a release for newer runtimes stays published (other devices run it)
                before = ((dest / "current").resolve(), rec.bundle.manifest_sha256)
                attack.stage(repo, server, other)
                error: UpdateError | None = None
                try:
                    client().update(reload=rec.reload)
                except UpdateError as exc:
                    error = exc
                after = ((dest / "current").resolve(), rec.bundle.manifest_sha256)
                outcomes.append(AttackOutcome(
                    name=attack.name,
                    error=type(error).__name__ if error else None,
                    reason=str(error)[:300] if error else "accepted",
                    refused=isinstance(error, attack.refused_with),
                    state_kept=before == after and not _leftovers(dest)))
        finally:
            stop.set()
            worker.join(timeout=30)
    return {"attacks_tried": len(outcomes),
            "attacks_refused": sum(o.refused and o.state_kept for o in outcomes),
            "requests_served": served["requests"], "request_failures": served["failures"],
            "outcomes": outcomes}
