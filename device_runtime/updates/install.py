"""Installing a verified bundle archive beside the current one, atomically, with rollback.

The archive is unpacked from the bytes the bundle reader already verified into a hidden staging
folder, renamed into ``DEST/bundles/<name>`` and self-checked (the same load-time check as
``Recommender.load``); only then does ``DEST/current`` switch, by renaming a new symlink over it
(one ``rename``: a reader sees the old bundle or the new one). ``DEST/previous`` points at the
bundle it replaced, kept for rollback; older bundles are removed. A failure at any step removes
what the step wrote and leaves ``current`` as it was.
"""

from __future__ import annotations

import fcntl
import os
import shutil
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

from device_runtime.bundle import BundleError, read_bundle_files
from device_runtime.updates.errors import InstallError
from device_runtime.updates.release import Release
from device_runtime.updates.trust import (
    BUNDLES_DIR,
    CURRENT_LINK,
    DOWNLOADS_DIR,
    PREVIOUS_LINK,
    RELEASE_SUFFIX,
    write_release_record,
)

LOCK_FILE = ".update.lock"
#: ``self_check(path)`` loads the bundle at ``path`` as the app would and raises when it fails.
SelfCheck = Callable[[Path], None]


def _replace_link(link: Path, target: Path) -> None:
    """Point the symlink ``link`` at ``target`` (relative to its folder) in one rename."""
    temporary = link.with_name(f".{link.name}.{os.getpid()}.tmp")
    if temporary.is_symlink() or temporary.exists():
        temporary.unlink()
    os.symlink(os.path.relpath(target, link.parent), temporary)
    os.replace(temporary, link)


def _link_target(link: Path) -> Path | None:
    return link.resolve() if link.is_symlink() else None


def _unpack(archive: Path, into: Path) -> None:
    """Write the bundle files of an ``archive`` the caller verified into the new folder ``into``
    (the self-check then loads, and so verifies, what was written)."""
    _, files = read_bundle_files(archive)
    into.mkdir()
    for name, data in files.items():
        (into / name).write_bytes(data)


def install_bundle(dest: Path, archive: Path, release: Release, self_check: SelfCheck) -> Path:
    """Install the verified ``archive`` of ``release`` (``verify_bundle`` passed on it) in
    ``dest`` and make it current.

    Returns the installed bundle folder. Raises :class:`InstallError` (nothing changed, the
    staging folder removed) when the archive does not unpack or the self-check fails.
    """
    bundles = dest / BUNDLES_DIR
    bundles.mkdir(parents=True, exist_ok=True)
    final = bundles / f"v{release.model_version}-{release.manifest_sha256[:12]}"
    staging = Path(tempfile.mkdtemp(prefix=".staging-", dir=bundles))
    try:
        _unpack(archive, staging / "bundle")
        self_check(staging / "bundle")
        if not final.exists():  # else the same bundle (its name holds the digest) is there
            os.replace(staging / "bundle", final)
        write_release_record(final, release)
    except (BundleError, OSError, RuntimeError, ValueError) as exc:
        raise InstallError(f"release {release.model_version} ({release.target_path}) failed its "
                           f"install check, the current bundle keeps serving: {type(exc).__name__}: "
                           f"{exc}") from exc
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    switch_current(dest, final)
    _remove_unlinked(dest)
    return final


@contextmanager
def update_lock(dest: Path) -> Iterator[None]:
    """Hold ``DEST/.update.lock`` (an exclusive ``flock``) while an update of ``dest`` runs; a
    second update of the same folder waits for the first."""
    dest.mkdir(parents=True, exist_ok=True)
    with open(dest / LOCK_FILE, "a+b") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def remove_leftovers(dest: Path) -> None:
    """Delete staging and download folders that an update killed midway left in ``dest`` (call
    with the update lock held: no other update is writing them)."""
    for pattern in (f"{BUNDLES_DIR}/.staging-*", f"{DOWNLOADS_DIR}/.download-*"):
        for leftover in dest.glob(pattern):
            shutil.rmtree(leftover, ignore_errors=True)


def switch_current(dest: Path, bundle_dir: Path) -> Path | None:
    """Make ``bundle_dir`` current and the old current ``previous``; returns the old current."""
    current, previous = dest / CURRENT_LINK, dest / PREVIOUS_LINK
    old = _link_target(current)
    if old is not None and old != bundle_dir.resolve():
        _replace_link(previous, old)
    _replace_link(current, bundle_dir)
    return old


def roll_back(dest: Path) -> Path | None:
    """Point ``current`` back at ``previous`` (when there is one); returns the bundle now current."""
    previous = _link_target(dest / PREVIOUS_LINK)
    if previous is None or not previous.is_dir():
        return None
    _replace_link(dest / CURRENT_LINK, previous)
    return previous


def _remove_unlinked(dest: Path) -> None:
    """Delete installed bundles that neither ``current`` nor ``previous`` points at."""
    keep = {_link_target(dest / name) for name in (CURRENT_LINK, PREVIOUS_LINK)}
    for entry in (dest / BUNDLES_DIR).iterdir():
        bundle_dir = entry.with_name(entry.name[:-len(RELEASE_SUFFIX)]) \
            if entry.name.endswith(RELEASE_SUFFIX) else entry
        if bundle_dir.resolve() in keep or entry.name.startswith(".staging-"):
            continue
        if entry.is_dir():
            shutil.rmtree(entry, ignore_errors=True)
        else:
            entry.unlink()
