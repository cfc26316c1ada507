"""Reading bundle bytes with hard limits, shared by the directory reader
(:mod:`device_runtime.bundle`) and the archive reader (:mod:`device_runtime.bundle_archive`):
the caps, a bounded read, and the manifest parse. Neither reader imports the other."""

from __future__ import annotations

from typing import BinaryIO

from device_runtime.bundle_schema import BundleError, Manifest
from device_runtime.strict_json import parse_strict_json

MAX_MANIFEST_BYTES = 64 * 1024 * 1024
MAX_MEMBER_BYTES = 2 * 1024 * 1024 * 1024
DEFAULT_MAX_FILE_BYTES = 256 * 1024 * 1024
"""Default hard cap on the size of one bundle file (directory file or archive member); readers
take ``max_file_bytes`` to change it, up to :data:`MAX_MEMBER_BYTES`."""
MAX_ARCHIVE_MEMBERS = 64
"""An archive with more members than this is refused before it is read further."""
READ_CHUNK = 1 << 20

#: What a reader returns: the files' bytes by name, the validated manifest, its digest.
BundleFiles = tuple[dict[str, bytes], Manifest, str]


def read_limited(handle: BinaryIO, limit: int, what: str, expected: int | None) -> bytes:
    """Read ``handle`` to its end, refusing as soon as more than ``limit`` bytes come.

    A file of known size (``expected``) is read in one call into one buffer, so its bytes are
    never held twice; anything else in chunks of 1 MiB."""
    if expected is not None and expected <= limit:
        data = handle.read(limit + 1)
        if len(data) > limit:
            raise BundleError(f"{what}: larger than expected (the manifest says {expected} "
                              "bytes); stopped reading. The file was replaced or padded: "
                              "rebuild or re-download the bundle")
        return data
    chunks: list[bytes] = []
    total = 0
    while chunk := handle.read(min(READ_CHUNK, limit + 1 - total)):
        total += len(chunk)
        if total > limit:
            raise BundleError(f"{what}: larger than the reader's limit of {limit} bytes "
                              "(max_file_bytes); stopped reading")
        chunks.append(chunk)
    return b"".join(chunks)


def parse_manifest(raw: bytes, source: str) -> tuple[Manifest, str]:
    """The validated manifest and its (verified) ``manifest_sha256``."""
    data = parse_strict_json(raw, source=source, error=BundleError)
    manifest = Manifest.from_dict(data, source=source)
    return manifest, data["manifest_sha256"]


_Read = tuple[dict[str, bytes], Manifest, str]
