"""Reading a ``.tar.gz`` bundle: streamed, manifest first, every member checked from its header
before it is read. Imported only when a bundle is an archive, so a device serving directory
bundles never loads :mod:`tarfile`. :mod:`device_runtime.bundle_schema` is the authority on the
format; this module is its archive reader (it does not import :mod:`device_runtime.bundle`).
"""

from __future__ import annotations

import struct
import tarfile
import zlib
from pathlib import Path, PurePosixPath

from device_runtime.bounded_read import (
    MAX_ARCHIVE_MEMBERS,
    MAX_MANIFEST_BYTES,
    BundleFiles,
    parse_manifest,
    read_limited,
)
from device_runtime.bundle_schema import BUNDLE_FILES, MANIFEST_FILE, BundleError, Manifest

MAX_ARCHIVE_HEADER_BYTES = 64 * 1024
"""Largest tar metadata record (GNU long name / long link, PAX header) read from an archive."""


class _OversizedTarHeader(Exception):
    """Raised by :class:`_BoundedTarInfo`; :func:`read_archive` turns it into a BundleError."""


class _BoundedTarInfo(tarfile.TarInfo):
    """A TarInfo that refuses oversized metadata records before tarfile reads them into memory
    (a GNU long-name or PAX header claiming gigabytes would otherwise be read whole).
    ``_proc_member`` is tarfile's (private, long-stable) hook for these records."""

    def _proc_member(self, tarfile_: tarfile.TarFile) -> tarfile.TarInfo:
        if self.type in (tarfile.GNUTYPE_LONGNAME, tarfile.GNUTYPE_LONGLINK, tarfile.XHDTYPE,
                         tarfile.XGLTYPE, tarfile.SOLARIS_XHDTYPE) \
                and self.size > MAX_ARCHIVE_HEADER_BYTES:
            raise _OversizedTarHeader(f"a tar metadata record (type {self.type!r}) of {self.size} "
                                      f"bytes, more than {MAX_ARCHIVE_HEADER_BYTES}")
        return super()._proc_member(tarfile_)


def _archive_member_name(path: Path, member: tarfile.TarInfo) -> str | None:
    """The bundle file name of ``member`` (None for a folder entry); refuses anything else."""
    parts = PurePosixPath(member.name).parts
    if parts and parts[0] == ".":
        parts = parts[1:]
    if member.isdir() and not member.name.startswith("/") and ".." not in parts and len(parts) <= 1:
        return None
    if (not member.isreg() or member.name.startswith("/") or ".." in parts
            or not 1 <= len(parts) <= 2):
        raise BundleError(f"{path}: archive member {member.name[:200]!r} is not a plain file "
                          "inside the bundle folder; refusing the archive")
    return "/".join(parts)


def read_archive(path: Path, cap: int) -> BundleFiles:
    """Stream the archive once: sizes are checked from each member's header before its data is
    read (against the manifest when it came first, as the writer puts it, else against ``cap``)."""
    files: dict[str, bytes] = {}
    prefixes: set[str] = set()
    manifest: Manifest | None = None
    digest = ""
    source = f"{path}/{MANIFEST_FILE}"
    try:
        with tarfile.open(path, "r|gz", tarinfo=_BoundedTarInfo) as archive:
            for count, member in enumerate(archive, start=1):
                if count > MAX_ARCHIVE_MEMBERS:
                    raise BundleError(f"{path}: archive has more than {MAX_ARCHIVE_MEMBERS} members; "
                                      "a bundle archive holds three files")
                full_name = _archive_member_name(path, member)
                if full_name is None:
                    continue
                prefix, _, name = full_name.rpartition("/")
                if name not in BUNDLE_FILES:
                    raise BundleError(f"{path}: archive member {member.name[:200]!r} is not a bundle "
                                      f"file ({', '.join(BUNDLE_FILES)}); refusing the archive")
                if name in files:
                    raise BundleError(f"{path}: archive holds {name} twice")
                prefixes.add(prefix)
                limit = min(cap, MAX_MANIFEST_BYTES) if name == MANIFEST_FILE else cap
                expected = None
                if manifest is not None and name in manifest.files:
                    expected = manifest.files[name].size
                    limit = min(limit, expected)
                what = f"{path}: archive member {member.name[:200]!r}"
                if member.size > limit:
                    said = f"the manifest says {expected}" if expected is not None and expected <= cap \
                        else f"the reader's limit is {limit}"
                    raise BundleError(f"{what} is {member.size} bytes, {said}; refusing to read it")
                handle = archive.extractfile(member)
                if handle is None:  # pragma: no cover - isreg() members always have data
                    raise BundleError(f"{what}: cannot be read")
                files[name] = read_limited(handle, limit, what, expected)
                if name == MANIFEST_FILE:
                    manifest, digest = parse_manifest(files[name], source)
    except BundleError:
        raise
    except _OversizedTarHeader as exc:
        raise BundleError(f"{path}: {exc}; refusing the archive") from None
    except (tarfile.TarError, OSError, EOFError, zlib.error, ValueError, TypeError, IndexError,
            struct.error) as exc:  # tarfile's stream reader lets all of these out on garbage
        raise BundleError(f"{path}: not a readable .tar.gz ({type(exc).__name__}: {exc}); "
                          "re-create it with archive_bundle() or `tar czf`") from None
    if len(prefixes) > 1:
        raise BundleError(f"{path}: archive holds bundle files in several folders {sorted(prefixes)}")
    missing = [name for name in BUNDLE_FILES if name not in files]
    if missing or manifest is None:
        raise BundleError(f"{path}: archive lacks {', '.join(missing)}")
    return files, manifest, digest
