"""The edge-rec bundle format: the single authority on what a bundle is and how it is verified.

A bundle is a directory (or a ``.tar.gz`` of one) holding three files:

- ``model.tflite``: the serving model (signature ``serving_default``: ``history`` int32[1, L] ->
  ``top_ids`` int32[1, K], ``top_scores`` float32[1, K]);
- ``items.tsv``: header ``index<TAB>item_id<TAB>title``, one line per real item index 2..C-1;
- ``manifest.json``: :class:`Manifest` as JSON, with the SHA-256 and size of every other file and
  ``manifest_sha256``, the SHA-256 of its own canonical JSON (sorted keys, compact separators)
  without that field.

:func:`verify_bundle` reads everything into memory and checks it before anything is trusted.
A ``.tar.gz`` is never extracted to disk: its regular-file members are read into memory, so a
member name such as ``../../etc/passwd`` cannot write anywhere.
"""

from __future__ import annotations

import errno
import io
import os
import stat
from array import array
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO

from device_runtime.bounded_read import (  # noqa: F401  (re-exported: readers' limits)
    DEFAULT_MAX_FILE_BYTES,
    MAX_ARCHIVE_MEMBERS,
    MAX_MANIFEST_BYTES,
    MAX_MEMBER_BYTES,
    READ_CHUNK,
    BundleFiles,
    parse_manifest,
    read_limited,
)
from device_runtime.bundle_schema import (  # noqa: F401  (re-exported: the bundle's public names)
    BUNDLE_FILES,
    BUNDLE_FORMAT,
    FIRST_ITEM_INDEX,
    HISTORY_INPUT,
    ITEMS_FILE,
    ITEMS_HEADER,
    MANIFEST_FILE,
    MIGRATIONS,
    MODEL_FILE,
    OOV_ID,
    OOV_INDEX,
    OPTIONAL_FIELDS,
    PAD_ID,
    PAD_INDEX,
    SCHEMA_VERSION,
    SIGNATURE_KEY,
    TOP_IDS_OUTPUT,
    TOP_SCORES_OUTPUT,
    BundleError,
    FileRecord,
    Manifest,
    ModelSection,
    TensorSpec,
    _short,
    canonical_json,
    compact_indices,
    manifest_digest,
    real_item_count,
    serving_signature,
    serving_top_k,
)
from device_runtime.digest import sha256
from device_runtime.item_catalog import ItemCatalog
from device_runtime.strict_json import MAX_JSON_DEPTH, parse_strict_json  # noqa: F401

_ID_FORBIDDEN = "\t\r\n\x00"


@dataclass(frozen=True)
class VerifiedBundle:
    """A bundle whose manifest, file digests, sizes and items table have all been checked.

    ``items`` maps external ids to item indices and back (:class:`ItemCatalog`); ``item_ids[i]``
    / ``titles[i]`` are the external id and title of index ``i`` (indices 0 and 1 are ``<pad>`` /
    ``<oov>``), read-only sequences built from it on access. ``model_bytes`` is the exact content
    whose SHA-256 was verified (the one copy the interpreters run).
    """

    source: Path
    manifest: Manifest
    model_bytes: bytes
    items: ItemCatalog
    manifest_sha256: str

    @property
    def item_ids(self) -> Sequence[str]:
        """External id of every index (a read-only sequence; slices are tuples)."""
        return self.items.item_ids

    @property
    def titles(self) -> Sequence[str]:
        """Title of every index, ``""`` when none (a read-only sequence; slices are tuples)."""
        return self.items.titles


def bytes_digest(data: bytes) -> FileRecord:
    """SHA-256 and size of ``data``."""
    return FileRecord(sha256=sha256(data).hexdigest(), size=len(data))


def item_id_problem(item_id: Any) -> str | None:
    """Why ``item_id`` cannot be a catalog id (None when it can): the one rule the writer and the
    reader of ``items.tsv`` share. Ids are non-empty strings without whitespace at their ends,
    without tab, CR, LF or NUL, and not the reserved ``<pad>`` / ``<oov>``."""
    if not isinstance(item_id, str) or not item_id:
        return "is empty or not a string"
    if item_id in (PAD_ID, OOV_ID):
        return "is reserved for padding / out-of-vocabulary"
    if item_id != item_id.strip():
        return "has whitespace at its ends"
    if any(c in item_id for c in _ID_FORBIDDEN):
        return "contains a tab, CR, LF or NUL"
    return None


def format_items_tsv(item_ids: Sequence[str], titles: Sequence[str]) -> str:
    """``items.tsv`` for a vocabulary (``item_ids[0:2]`` are padding and OOV and are not written).

    Raises :class:`BundleError` for ids refused by :func:`item_id_problem` or duplicated; tabs,
    newlines and runs of whitespace in titles are collapsed to single spaces.
    """
    if len(item_ids) != len(titles):
        raise BundleError(f"items: {len(item_ids)} ids but {len(titles)} titles; pass one title "
                          "per vocabulary entry (empty string for none)")
    lines = [ITEMS_HEADER]
    seen: set[str] = set()
    for index in range(FIRST_ITEM_INDEX, len(item_ids)):
        item_id = item_ids[index]
        problem = item_id_problem(item_id) or ("is duplicated" if item_id in seen else None)
        if problem:
            raise BundleError(f"items: vocabulary id {_short(item_id)} at index {index} {problem}")
        seen.add(item_id)
        lines.append(f"{index}\t{item_id}\t{_clean_title(titles[index])}")
    return "\n".join(lines) + "\n"


def _clean_title(title: Any) -> str:
    return " ".join(str(title or "").split())


def parse_items_tsv(data: bytes, catalog_size: int, *, source: str = ITEMS_FILE) -> ItemCatalog:
    """Parse ``items.tsv`` into an :class:`~device_runtime.item_catalog.ItemCatalog` (ids and
    titles by item index, id lookup), checking it covers exactly indices 2..catalog_size-1 in
    order with distinct valid ids (:func:`item_id_problem`) and titles as the writer writes them;
    raise :class:`BundleError` naming the first bad line.

    Lines are checked one block at a time and only their offsets and id hashes are kept, so
    parsing never holds a Python string per item.
    """
    if data[:3] == b"\xef\xbb\xbf":
        raise BundleError(f"{source}: starts with a byte-order mark; expected UTF-8 without a BOM")
    if not data.isascii():
        try:
            data.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise BundleError(f"{source}: not UTF-8 (byte {exc.start}: {exc.reason}); rebuild the "
                              "bundle") from None
    header_end = data.find(b"\n")
    if header_end < 0:
        header_end = len(data)
    if not data or data[:header_end] != ITEMS_HEADER.encode():
        raise BundleError(f"{source}: line 1 must be the header {ITEMS_HEADER!r}")
    body_end = len(data) - 1 if data.endswith(b"\n") else len(data)
    listed = data.count(b"\n", 0, body_end)
    if listed != real_item_count(catalog_size):
        raise BundleError(f"{source}: {listed} items listed, but the manifest's catalog_size "
                          f"{catalog_size} means {real_item_count(catalog_size)}; the bundle is inconsistent: rebuild it")
    # per item index (PAD and OOV first, as zeros): where its id starts and ends, where its title
    # ends (bytes; 4 bytes an offset, as a bundle file is below 4 GiB), and the hash of its id
    offset = "I" if len(data) < 2**32 else "Q"
    id_start, id_end, title_end = (array(offset, [0] * FIRST_ITEM_INDEX) for _ in range(3))
    hashes = array("q")
    problem: BundleError | None = None
    for line_no, line, start, ascii_only in _item_lines(data, header_end + 1, body_end):
        try:
            item_id, title = _item_fields(line, line_no, source)
        except BundleError as exc:
            problem = exc
            break
        size = len if ascii_only else _utf8_size
        line_end = start + size(line)
        id_start.append(line_end - size(title) - 1 - size(item_id))
        id_end.append(line_end - size(title) - 1)
        title_end.append(line_end)
        hashes.append(hash(item_id))
        if title != _clean_title(title):
            problem = BundleError(f"{source}: line {line_no} title {_short(title)} has whitespace the "
                                  "writer would have collapsed (runs, ends, CR, NUL-free text expected)")
            break
    catalog = ItemCatalog(data, id_start, id_end, title_end, (PAD_ID, OOV_ID), hashes)
    repeated = catalog.first_repeated()
    if repeated is not None:  # the line of an index is the index: header is line 1, index 2 line 2
        raise BundleError(f"{source}: line {repeated} item_id {_short(catalog.item_ids[repeated])} "
                          "is repeated")
    if problem is not None:
        raise problem
    return catalog


_ITEMS_BLOCK = 1 << 16


def _utf8_size(text: str) -> int:
    return len(text.encode())


def _item_lines(data: bytes, start: int, end: int) -> Iterator[tuple[int, str, int, bool]]:
    """(line number, text, byte offset, pure ASCII?) of every line of ``data[start:end]``, the
    body of ``items.tsv`` (line 2 on), decoded one block of about 64 KiB at a time."""
    line_no = 2
    while True:
        block_end = data.find(b"\n", min(start + _ITEMS_BLOCK, end), end) if start < end else -1
        block_end = end if block_end < 0 else block_end
        block = data[start:block_end]
        ascii_only = block.isascii()
        for line in block.decode("utf-8").split("\n"):
            yield line_no, line, start, ascii_only
            start += len(line) + 1 if ascii_only else _utf8_size(line) + 1
            line_no += 1
        if block_end >= end:
            return


def _item_fields(line: str, line_no: int, source: str) -> tuple[str, str]:
    """(item_id, title) of one ``items.tsv`` line, or :class:`BundleError` for a wrong field count,
    index or id (:func:`item_id_problem`)."""
    parts = line.split("\t")
    if len(parts) != 3:
        raise BundleError(f"{source}: line {line_no} has {len(parts)} tab-separated fields, "
                          "expected 3 (index, item_id, title)")
    if parts[0] != str(line_no):
        raise BundleError(f"{source}: line {line_no} has index {_short(parts[0])}, expected "
                          f"{line_no} (indices run 2..catalog_size-1 in order)")
    problem = item_id_problem(parts[1])
    if problem:
        raise BundleError(f"{source}: line {line_no} item_id {_short(parts[1])} {problem}")
    return parts[1], parts[2]


# ---- reading ----------------------------------------------------------------------------------

def _check_cap(max_file_bytes: int) -> int:
    if type(max_file_bytes) is not int or not 1 <= max_file_bytes <= MAX_MEMBER_BYTES:
        raise ValueError(f"max_file_bytes must be an integer in 1..{MAX_MEMBER_BYTES}, "
                         f"got {max_file_bytes!r}")
    return max_file_bytes


def _open_regular_file(path: Path) -> BinaryIO:
    """Open a bundle file for reading, refusing symlinks and anything but a regular file
    (FIFOs and devices are opened non-blocking so that they cannot stall the reader)."""
    if path.is_symlink():
        raise BundleError(f"{path}: is a symbolic link; bundle directories hold regular files only "
                          "(copy the file into the bundle instead of linking it)")
    flags = os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_NONBLOCK", 0) \
        | getattr(os, "O_BINARY", 0)
    try:
        fd = os.open(path, flags)
    except FileNotFoundError:
        raise BundleError(f"{path.parent}: missing {path.name}; a bundle directory holds "
                          f"{', '.join(BUNDLE_FILES)} (build one with `edge-rec build`)") from None
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            raise BundleError(f"{path}: is a symbolic link; bundle directories hold regular "
                              "files only") from None
        raise BundleError(f"{path}: cannot be read ({exc.strerror or exc})") from None
    try:
        mode = os.fstat(fd).st_mode
        if not stat.S_ISREG(mode):
            kind = "a directory" if stat.S_ISDIR(mode) else "a special file (FIFO, device or socket)"
            raise BundleError(f"{path}: is {kind}; bundle directories hold regular files only")
        if hasattr(os, "set_blocking"):
            os.set_blocking(fd, True)
        return os.fdopen(fd, "rb")
    except BaseException:
        os.close(fd)
        raise


def _read_directory(path: Path, cap: int) -> BundleFiles:
    source = path.resolve()
    manifest_path = path / MANIFEST_FILE
    with _open_regular_file(manifest_path) as handle:
        raw = read_limited(handle, min(cap, MAX_MANIFEST_BYTES), f"{source}/{MANIFEST_FILE}", None)
    manifest, digest = parse_manifest(raw, f"{source}/{MANIFEST_FILE}")
    files = {MANIFEST_FILE: raw}
    for name, record in sorted(manifest.files.items()):
        what = f"{source}/{name}"
        if record.size > cap:
            raise BundleError(f"{what}: the manifest says {record.size} bytes, more than the "
                              f"reader's limit of {cap} bytes (max_file_bytes); refusing to read it")
        with _open_regular_file(path / name) as handle:
            files[name] = read_limited(handle, record.size, what, record.size)
    return files, manifest, digest


def _read_bundle(path: str | Path, max_file_bytes: int) -> tuple[Path, BundleFiles]:
    cap = _check_cap(max_file_bytes)
    path = Path(path).expanduser()
    if path.is_dir():
        return path.resolve(), _read_directory(path, cap)
    if path.is_file() and (path.name.endswith(".tar.gz") or path.name.endswith(".tgz")):
        from device_runtime.bundle_archive import read_archive  # tarfile only for archives

        return path.resolve(), read_archive(path, cap)
    if path.is_file():
        raise BundleError(f"{path}: not a bundle; expected a bundle directory or a .tar.gz of one")
    raise BundleError(f"{path}: no such bundle directory or archive")


def read_bundle_files(path: str | Path, *, max_file_bytes: int = DEFAULT_MAX_FILE_BYTES
                      ) -> tuple[Path, dict[str, bytes]]:
    """Read the files of a bundle directory or ``.tar.gz`` into memory, without extracting.

    The manifest is read (at most :data:`MAX_MANIFEST_BYTES`) and validated first; every other
    file is read in chunks and refused as soon as it is larger than its manifest entry, and no
    file larger than ``max_file_bytes`` is read at all. Directory files must be regular files
    (symlinks, FIFOs and devices are refused). Archive members must be regular files named
    ``NAME`` or ``DIR/NAME`` (one common folder) for the three bundle files; links, devices,
    absolute paths, ``..`` and other names are refused. Returns (resolved path, {name: bytes}).
    Raises :class:`BundleError` for anything wrong (including a corrupted archive).
    """
    source, (files, _, _) = _read_bundle(path, max_file_bytes)
    return source, files


def verify_bundle(path: str | Path, *, max_file_bytes: int = DEFAULT_MAX_FILE_BYTES) -> VerifiedBundle:
    """Read and fully verify a bundle directory or ``.tar.gz``.

    Checks the manifest (strict JSON, format, schema version, field types and ranges, the serving
    contract, its own digest), the size (while reading, see :func:`read_bundle_files`) and SHA-256
    of every listed file, and that ``items.tsv`` lists exactly the catalog's items as the writer
    writes them. It does not open the model with an interpreter (``Recommender.load`` also checks
    the model's signature against the manifest). Raises :class:`BundleError` naming the file and
    the problem, and nothing else for bad bundle content.
    """
    source, (files, manifest, digest) = _read_bundle(path, max_file_bytes)
    for name, record in sorted(manifest.files.items()):
        actual = bytes_digest(files[name])
        if actual.size != record.size:
            raise BundleError(f"{source}/{name}: size is {actual.size} bytes, the manifest says "
                              f"{record.size}; the file was truncated or replaced: rebuild the bundle")
        if actual.sha256 != record.sha256:
            raise BundleError(f"{source}/{name}: SHA-256 {actual.sha256[:12]}... does not match the "
                              f"manifest's {record.sha256[:12]}...; the file was modified: rebuild "
                              "or re-download the bundle")
    items = parse_items_tsv(files[ITEMS_FILE], manifest.catalog_size, source=f"{source}/{ITEMS_FILE}")
    return VerifiedBundle(source=source, manifest=manifest, model_bytes=files[MODEL_FILE],
                          items=items, manifest_sha256=digest)


def archive_members(directory: Path) -> list[tuple[str, bytes]]:
    """(archive name, bytes) of the bundle files of ``directory``, manifest first (so that a
    streaming reader knows every other member's expected size before reading it)."""
    order = (MANIFEST_FILE, MODEL_FILE, ITEMS_FILE)
    return [(f"{directory.name}/{name}", (directory / name).read_bytes()) for name in order]


def build_archive(members: Sequence[tuple[str, bytes]]) -> bytes:
    """A reproducible ``.tar.gz`` (fixed mtime, owner and mode) holding ``members``."""
    import gzip
    import tarfile

    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w", format=tarfile.PAX_FORMAT) as archive:
        for name, data in members:
            info = tarfile.TarInfo(name)
            info.size = len(data)
            info.mode = 0o644
            info.mtime = 0
            archive.addfile(info, io.BytesIO(data))
    return gzip.compress(raw.getvalue(), compresslevel=9, mtime=0)
