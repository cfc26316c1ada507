"""The device's update check: python-tuf's ``ngclient`` refreshes the signed metadata, the newest
release this device can run is downloaded and verified, installed beside the current bundle,
self-checked, made current, and hot-reloaded into the serving app.

Every refusal is an :class:`~device_runtime.updates.errors.UpdateError` subclass with a
one-line reason; whatever happens, the bundle that was serving keeps serving.
"""

from __future__ import annotations

import inspect
import logging
import shutil
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from device_runtime.bounded_read import DEFAULT_MAX_FILE_BYTES
from device_runtime.bundle import BundleError, verify_bundle
from device_runtime.updates.errors import (
    IncompatibleReleaseError,
    InstallError,
    TamperedDownloadError,
    UntrustedMetadataError,
    UpdateSetupError,
    refusal_from,
)
from device_runtime.updates.install import (
    SelfCheck,
    install_bundle,
    remove_leftovers,
    roll_back,
    update_lock,
)
from device_runtime.updates.release import Release
from device_runtime.updates.trust import (
    CURRENT_LINK,
    DOWNLOADS_DIR,
    UPDATE_EXTRA_HINT,
    DeviceTrust,
    read_installed,
)
from device_runtime.version import RUNTIME_VERSION

logger = logging.getLogger(__name__)

METADATA_PATH = "metadata/"
TARGETS_PATH = "targets/"
#: Largest release archive downloaded: a bundle's three files at the reader's default cap.
MAX_RELEASE_BYTES = 3 * DEFAULT_MAX_FILE_BYTES

#: ``reload(path)`` swaps the bundle at ``path`` into the serving app (``Recommender.reload``).
Reload = Callable[[Path], Any]


@dataclass(frozen=True)
class UpdateResult:
    """What an update check did: ``status`` is ``"updated"`` (a new release is current) or
    ``"current"`` (nothing newer for this device); ``release`` is the release now current (None
    before any install), ``bundle`` the folder to load (``DEST/current``), ``replaced`` the
    release it replaced, ``seconds`` the wall time of the check."""

    status: str
    release: Release | None
    bundle: Path | None
    replaced: Release | None
    seconds: float

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form (the ``edge-rec update`` output)."""
        return {"status": self.status,
                "model_version": self.release.model_version if self.release else None,
                "target": self.release.target_path if self.release else None,
                "bundle": str(self.bundle) if self.bundle else None,
                "replaced_model_version": self.replaced.model_version if self.replaced else None,
                "seconds": round(self.seconds, 4)}


def default_self_check(path: Path) -> None:
    """Load the bundle at ``path`` as the app would (verification, signature, self-check)."""
    from device_runtime.recommender import Recommender

    Recommender.load(path)


class UpdateClient:
    """Checks one TUF repository (``repo_url``, with ``metadata/`` and ``targets/`` below it)
    for releases, with the device's trust state in ``dest`` (seeded from ``trust_root``).

    ``profile`` restricts releases to those built for that device profile or for every device.
    ``fetcher`` is a python-tuf ``FetcherInterface`` (default: ngclient's HTTP fetcher).
    """

    def __init__(self, repo_url: str, trust_root: str | Path, dest: str | Path, *,
                 profile: str | None = None, fetcher: Any = None,
                 runtime_version: str = RUNTIME_VERSION) -> None:
        if not isinstance(repo_url, str) or not repo_url.startswith(("http://", "https://")):
            raise UpdateSetupError(f"repository URL {str(repo_url)[:200]!r}: expected an http:// or "
                                   "https:// URL of the folder holding metadata/ and targets/")
        self.repo_url = repo_url.rstrip("/") + "/"
        self.dest = Path(dest)
        self.trust = DeviceTrust(self.dest, trust_root)
        self.profile = profile
        self.fetcher = fetcher
        self.runtime_version = runtime_version

    def _updater(self) -> Any:
        """A fresh ngclient ``Updater`` (one refresh each): python-tuf 6+ takes the trust root as
        ``bootstrap``; 5.x (the Python 3.9 device) starts from ``metadata/root.json``, which
        :class:`DeviceTrust` seeded from the same trust root."""
        try:
            from tuf.ngclient import Updater
        except ImportError as exc:
            raise UpdateSetupError(f"signed updates need python-tuf ({exc}); {UPDATE_EXTRA_HINT}") from None
        downloads = self.dest / DOWNLOADS_DIR
        downloads.mkdir(parents=True, exist_ok=True)
        options: dict[str, Any] = {}
        if "bootstrap" in inspect.signature(Updater.__init__).parameters:
            options["bootstrap"] = self.trust.trust_root_bytes
        return Updater(metadata_dir=str(self.trust.metadata_dir),
                       metadata_base_url=self.repo_url + METADATA_PATH,
                       target_dir=str(downloads), target_base_url=self.repo_url + TARGETS_PATH,
                       fetcher=self.fetcher, **options)

    def refresh(self) -> Any:
        """Refresh the signed metadata into the trust state (python-tuf's client workflow: root
        versions in order, then timestamp, snapshot, targets); returns the ngclient ``Updater``."""
        from tuf.api import exceptions as tuf_errors

        updater = self._updater()
        try:
            updater.refresh()
        except (tuf_errors.RepositoryError, tuf_errors.DownloadError) as exc:
            raise refusal_from(exc, f"refreshing the signed metadata from {self.repo_url}") from exc
        return updater

    def _newest(self, installed: Release | None) -> Release | None:
        """The newest release for this device newer than ``installed`` that this runtime can run
        (called right after :meth:`refresh`);
        :class:`IncompatibleReleaseError` when newer ones exist but none can run here."""
        newer: list[Release] = sorted(
            (release for release in self.trust.releases(just_refreshed=True).values()
             if release.serves_profile(self.profile)
             and (installed is None or release.model_version > installed.model_version)),
            key=lambda release: release.model_version, reverse=True)
        problems = []
        for release in newer:
            problem = release.problem_running(self.runtime_version)
            if problem is None:
                for skipped in problems:
                    logger.warning("skipping a newer release: %s", skipped)
                return release
            problems.append(problem)
        if problems:
            raise IncompatibleReleaseError(problems[0])
        return None

    def check(self) -> Release | None:
        """Refresh the metadata; the release an :meth:`update` would install, or None."""
        return self._plan()[2]

    def _plan(self) -> tuple[Any, Release | None, Release | None]:
        """Refresh; (the ngclient ``Updater``, the release installed, the release to install)."""
        updater = self.refresh()
        installed = read_installed(self.dest)
        return updater, installed, self._newest(installed)

    def update(self, *, self_check: SelfCheck = default_self_check,
               reload: Reload | None = None) -> UpdateResult:
        """Refresh, download, verify, install, self-check, switch ``DEST/current``, then call
        ``reload(DEST/current)``; when that reload fails, ``current`` goes back to the previous
        bundle and :class:`InstallError` is raised. Updates of one folder run one at a time (a
        lock file); what a killed update left behind is removed first."""
        with update_lock(self.dest):
            remove_leftovers(self.dest)
            return self._update(self_check, reload)

    def _update(self, self_check: SelfCheck, reload: Reload | None) -> UpdateResult:
        started = time.perf_counter()
        updater, installed, release = self._plan()
        current = self.dest / CURRENT_LINK
        if release is None:
            return UpdateResult("current", installed, current if installed else None, None,
                                time.perf_counter() - started)
        archive = self._download(updater, release)
        try:
            bundle_dir = install_bundle(self.dest, archive, release, self_check)
        finally:
            shutil.rmtree(archive.parent, ignore_errors=True)
        if reload is not None:
            try:
                reload(current)
            except Exception as exc:
                back = roll_back(self.dest)
                raise InstallError(f"release {release.model_version} installed but the app refused "
                                   f"it ({type(exc).__name__}: {exc}); rolled back to {back}") from exc
        logger.info("installed release %s (%s) at %s", release.model_version, release.target_path,
                    bundle_dir)
        return UpdateResult("updated", release, current, installed, time.perf_counter() - started)

    def _download(self, updater: Any, release: Release) -> Path:
        """Download the release archive with python-tuf (length and hashes from the signed
        metadata), then check that it is the bundle the release names."""
        from tuf.api import exceptions as tuf_errors

        info = updater.get_targetinfo(release.target_path)
        if info is None:  # pragma: no cover - listed in the same trusted metadata
            raise UntrustedMetadataError(f"{release.target_path}: not in the trusted targets")
        if info.length > MAX_RELEASE_BYTES:
            raise IncompatibleReleaseError(f"{release.target_path}: {info.length} bytes, more than "
                                           f"this device downloads ({MAX_RELEASE_BYTES})")
        folder = Path(tempfile.mkdtemp(prefix=".download-", dir=self.dest / DOWNLOADS_DIR))
        archive = folder / "bundle.tar.gz"
        try:
            try:
                updater.download_target(info, filepath=str(archive))
                manifest_sha256 = verify_bundle(archive).manifest_sha256
            except (tuf_errors.RepositoryError, tuf_errors.DownloadError) as exc:
                raise refusal_from(exc, f"downloading {release.target_path}") from exc
            except BundleError as exc:
                raise TamperedDownloadError(f"{release.target_path}: signed, but not a valid bundle "
                                            f"({exc})") from exc
            if manifest_sha256 != release.manifest_sha256:
                raise TamperedDownloadError(f"{release.target_path}: its manifest digest "
                                            f"{manifest_sha256[:12]}... is not the release's "
                                            f"{release.manifest_sha256[:12]}...")
        except BaseException:
            shutil.rmtree(folder, ignore_errors=True)
            raise
        return archive
