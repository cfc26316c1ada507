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

import hashlib
import io
import json
import tarfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any

PAD_INDEX = 0
OOV_INDEX = 1
SCHEMA_VERSION = 1
BUNDLE_FORMAT = "edge-rec-bundle"
SIGNATURE_KEY = "serving_default"
MODEL_FILE = "model.tflite"
ITEMS_FILE = "items.tsv"
MANIFEST_FILE = "manifest.json"
BUNDLE_FILES = (MODEL_FILE, ITEMS_FILE, MANIFEST_FILE)
ITEMS_HEADER = "index\titem_id\ttitle"
PAD_ID = "<pad>"
OOV_ID = "<oov>"
HISTORY_INPUT = "history"
TOP_IDS_OUTPUT = "top_ids"
TOP_SCORES_OUTPUT = "top_scores"
#: Index of the first real item: 0 (PAD) and 1 (OOV) are never recommended.
FIRST_ITEM_INDEX = 2


def real_item_count(catalog_size: int) -> int:
    """Real items in a catalog of ``catalog_size`` indices (all but PAD and OOV)."""
    return catalog_size - FIRST_ITEM_INDEX


def serving_top_k(top_k: int, catalog_size: int) -> int:
    """The graph's K for a requested ``top_k``: capped at the real items of the catalog."""
    return min(top_k, real_item_count(catalog_size))


MAX_MANIFEST_BYTES = 64 * 1024 * 1024
MAX_MEMBER_BYTES = 2 * 1024 * 1024 * 1024


class BundleError(ValueError):
    """A bundle is missing, malformed or does not match its manifest; the message says which
    file or field is wrong, what was expected and how to fix it."""


@dataclass(frozen=True)
class TensorSpec:
    """Name, shape and dtype (numpy name, e.g. ``int32``) of one model input or output."""

    name: str
    shape: tuple[int, ...]
    dtype: str

    def to_dict(self) -> dict[str, Any]:
        """The JSON form: ``{"name", "shape" (list), "dtype"}``."""
        return {"name": self.name, "shape": list(self.shape), "dtype": self.dtype}


@dataclass(frozen=True)
class FileRecord:
    """SHA-256 (hex) and size in bytes of one bundle file."""

    sha256: str
    size: int


@dataclass(frozen=True)
class ModelSection:
    """The manifest's ``model`` section: file name, signature key, inputs, outputs, quantization."""

    file: str
    signature_key: str
    inputs: tuple[TensorSpec, ...]
    outputs: tuple[TensorSpec, ...]
    quantization: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Manifest:
    """Everything the runtime needs to trust and use a bundle (schema version 1).

    Build one with the fields and call :meth:`to_json` (it fills ``manifest_sha256``); read one
    with :meth:`from_json`, which validates every field's type and range and the digest.
    """

    model: ModelSection
    history_length: int
    catalog_size: int
    top_k: int
    popularity: tuple[int, ...]
    files: Mapping[str, FileRecord]
    created_at: str
    metrics: Mapping[str, Any] = field(default_factory=dict)
    build: Mapping[str, Any] = field(default_factory=dict)
    padding_index: int = PAD_INDEX
    oov_index: int = OOV_INDEX
    schema_version: int = SCHEMA_VERSION
    format: str = BUNDLE_FORMAT

    def to_dict(self) -> dict[str, Any]:
        """The manifest as a JSON-ready dict, including ``manifest_sha256``."""
        body: dict[str, Any] = {
            "format": self.format,
            "schema_version": self.schema_version,
            "created_at": self.created_at,
            "model": {
                "file": self.model.file,
                "signature_key": self.model.signature_key,
                "inputs": [spec.to_dict() for spec in self.model.inputs],
                "outputs": [spec.to_dict() for spec in self.model.outputs],
                "quantization": dict(self.model.quantization),
            },
            "history_length": self.history_length,
            "padding_index": self.padding_index,
            "oov_index": self.oov_index,
            "catalog_size": self.catalog_size,
            "top_k": self.top_k,
            "popularity": list(self.popularity),
            "metrics": dict(self.metrics),
            "build": dict(self.build),
            "files": {
                name: {"sha256": rec.sha256, "size": rec.size}
                for name, rec in sorted(self.files.items())
            },
        }
        body["manifest_sha256"] = manifest_digest(body)
        return body

    def to_json(self) -> str:
        """Pretty JSON (2-space indent, sorted keys) with ``manifest_sha256`` filled in."""
        return json.dumps(self.to_dict(), indent=2, sort_keys=True, allow_nan=False) + "\n"

    @classmethod
    def from_json(cls, text: str | bytes, *, source: str = MANIFEST_FILE) -> Manifest:
        """Parse and validate a manifest; raise :class:`BundleError` naming ``source`` and the field."""
        try:
            data = json.loads(text)
        except (ValueError, UnicodeDecodeError) as exc:
            raise BundleError(f"{source}: not valid JSON ({exc}); rebuild the bundle") from exc
        return cls.from_dict(data, source=source)

    @classmethod
    def from_dict(cls, data: Any, *, source: str = MANIFEST_FILE) -> Manifest:
        """Validate a parsed manifest dict (see :meth:`from_json`)."""
        if not isinstance(data, dict):
            raise BundleError(f"{source}: expected a JSON object, got {type(data).__name__}")
        check = _FieldChecker(source)
        fmt = check.get(data, "format", str)
        if fmt != BUNDLE_FORMAT:
            raise BundleError(f"{source}: field 'format' is {fmt!r}, expected {BUNDLE_FORMAT!r}; "
                              "this is not an edge-rec bundle manifest")
        version = check.get(data, "schema_version", int)
        if version != SCHEMA_VERSION:
            hint = ("upgrade edge-rec to read it" if version > SCHEMA_VERSION
                    else "rebuild the bundle with this edge-rec version")
            raise BundleError(f"{source}: schema_version {version} is not supported "
                              f"(this runtime reads schema_version {SCHEMA_VERSION}); {hint}")
        stored_digest = check.get(data, "manifest_sha256", str)
        body = {key: value for key, value in data.items() if key != "manifest_sha256"}
        actual_digest = manifest_digest(body)
        if stored_digest != actual_digest:
            raise BundleError(f"{source}: manifest_sha256 does not match the manifest content "
                              f"(stored {stored_digest[:12]}..., computed {actual_digest[:12]}...); "
                              "the manifest was edited or corrupted: rebuild or re-download the bundle")
        model = check.get(data, "model", dict)
        inputs = tuple(check.tensor_spec(spec, f"model.inputs[{i}]")
                       for i, spec in enumerate(check.get(model, "inputs", list, "model.")))
        outputs = tuple(check.tensor_spec(spec, f"model.outputs[{i}]")
                        for i, spec in enumerate(check.get(model, "outputs", list, "model.")))
        section = ModelSection(
            file=check.file_name(check.get(model, "file", str, "model."), "model.file"),
            signature_key=check.get(model, "signature_key", str, "model."),
            inputs=inputs,
            outputs=outputs,
            quantization=check.get(model, "quantization", dict, "model."),
        )
        catalog_size = check.get(data, "catalog_size", int)
        if catalog_size < 3:
            raise BundleError(f"{source}: field 'catalog_size' is {catalog_size}, expected >= 3 "
                              "(padding, out-of-vocabulary and at least one item)")
        history_length = check.positive(data, "history_length")
        top_k = check.positive(data, "top_k")
        for key, expected in (("padding_index", PAD_INDEX), ("oov_index", OOV_INDEX)):
            if check.get(data, key, int) != expected:
                raise BundleError(f"{source}: field {key!r} must be {expected} in schema_version "
                                  f"{SCHEMA_VERSION}, got {data[key]}")
        popularity = check.get(data, "popularity", list)
        seen: set[int] = set()
        for position, index in enumerate(popularity):
            if type(index) is not int or not 2 <= index < catalog_size or index in seen:
                raise BundleError(f"{source}: popularity[{position}] is {index!r}, expected a "
                                  f"distinct item index in 2..{catalog_size - 1}")
            seen.add(index)
        files_raw = check.get(data, "files", dict)
        files: dict[str, FileRecord] = {}
        for name, record in files_raw.items():
            where = f"files[{name!r}]"
            check.file_name(name, where)
            if not isinstance(record, dict):
                raise BundleError(f"{source}: {where} must be an object with sha256 and size")
            sha = check.get(record, "sha256", str, f"{where}.")
            if len(sha) != 64 or any(c not in "0123456789abcdef" for c in sha):
                raise BundleError(f"{source}: {where}.sha256 must be 64 lowercase hex digits")
            size = check.get(record, "size", int, f"{where}.")
            if size < 0:
                raise BundleError(f"{source}: {where}.size must be >= 0, got {size}")
            files[name] = FileRecord(sha256=sha, size=size)
        for required in (section.file, ITEMS_FILE):
            if required not in files:
                raise BundleError(f"{source}: field 'files' has no entry for {required!r}; "
                                  "every bundle file must be listed with its sha256 and size")
        return cls(
            model=section,
            history_length=history_length,
            catalog_size=catalog_size,
            top_k=top_k,
            popularity=tuple(popularity),
            files=files,
            created_at=check.get(data, "created_at", str),
            metrics=check.get(data, "metrics", dict),
            build=check.get(data, "build", dict),
        )


class _FieldChecker:
    """Typed field access that raises BundleError naming the manifest and the field."""

    def __init__(self, source: str) -> None:
        self.source = source

    def get(self, data: Mapping[str, Any], key: str, kind: type, prefix: str = "") -> Any:
        if key not in data:
            raise BundleError(f"{self.source}: missing field '{prefix}{key}'")
        value = data[key]
        ok = type(value) is int if kind is int else isinstance(value, kind)
        if not ok:
            raise BundleError(f"{self.source}: field '{prefix}{key}' must be {kind.__name__}, "
                              f"got {type(value).__name__} {value!r:.60}")
        return value

    def positive(self, data: Mapping[str, Any], key: str) -> int:
        value = self.get(data, key, int)
        if value < 1:
            raise BundleError(f"{self.source}: field {key!r} must be >= 1, got {value}")
        return value

    def file_name(self, name: str, where: str) -> str:
        if not name or "/" in name or "\\" in name or name in (".", ".."):
            raise BundleError(f"{self.source}: {where} is {name!r}; expected a plain file name "
                              "inside the bundle directory")
        return name

    def tensor_spec(self, spec: Any, where: str) -> TensorSpec:
        if not isinstance(spec, dict):
            raise BundleError(f"{self.source}: {where} must be an object with name, shape, dtype")
        name = self.get(spec, "name", str, f"{where}.")
        shape = self.get(spec, "shape", list, f"{where}.")
        if not all(type(dim) is int for dim in shape):
            raise BundleError(f"{self.source}: {where}.shape must be a list of integers, got {shape}")
        return TensorSpec(name=name, shape=tuple(shape), dtype=self.get(spec, "dtype", str, f"{where}."))


@dataclass(frozen=True)
class VerifiedBundle:
    """A bundle whose manifest, file digests, sizes and items table have all been checked.

    ``item_ids[i]`` / ``titles[i]`` are the external id and title of index ``i`` (indices 0 and 1
    are ``<pad>`` / ``<oov>``). ``model_bytes`` is the exact content whose SHA-256 was verified.
    """

    source: Path
    manifest: Manifest
    model_bytes: bytes
    item_ids: tuple[str, ...]
    titles: tuple[str, ...]
    manifest_sha256: str


def file_digest(path: str | Path) -> FileRecord:
    """SHA-256 and size of the file at ``path`` (read in 1 MiB chunks)."""
    digest = hashlib.sha256()
    size = 0
    with open(path, "rb") as fh:
        while chunk := fh.read(1 << 20):
            digest.update(chunk)
            size += len(chunk)
    return FileRecord(sha256=digest.hexdigest(), size=size)


def bytes_digest(data: bytes) -> FileRecord:
    """SHA-256 and size of ``data``."""
    return FileRecord(sha256=hashlib.sha256(data).hexdigest(), size=len(data))


def canonical_json(data: Mapping[str, Any]) -> bytes:
    """The canonical JSON encoding used for digests: sorted keys, compact separators, ASCII."""
    return json.dumps(data, sort_keys=True, separators=(",", ":"), ensure_ascii=True,
                      allow_nan=False).encode("ascii")


def manifest_digest(manifest: Mapping[str, Any]) -> str:
    """SHA-256 (hex) of the canonical JSON of ``manifest`` without its ``manifest_sha256`` field."""
    body = {key: value for key, value in manifest.items() if key != "manifest_sha256"}
    return hashlib.sha256(canonical_json(body)).hexdigest()


def format_items_tsv(item_ids: Sequence[str], titles: Sequence[str]) -> str:
    """``items.tsv`` for a vocabulary (``item_ids[0:2]`` are padding and OOV and are not written).

    Raises :class:`BundleError` for ids that are empty, duplicated, or contain a tab or newline;
    tabs and newlines in titles are replaced by spaces.
    """
    if len(item_ids) != len(titles):
        raise BundleError(f"items: {len(item_ids)} ids but {len(titles)} titles; pass one title "
                          "per vocabulary entry (empty string for none)")
    lines = [ITEMS_HEADER]
    seen: set[str] = set()
    for index in range(2, len(item_ids)):
        item_id = item_ids[index]
        if not isinstance(item_id, str) or not item_id or item_id != item_id.strip() \
                or any(c in item_id for c in "\t\r\n") or item_id in seen or item_id in (PAD_ID, OOV_ID):
            raise BundleError(f"items: vocabulary id {item_id!r} at index {index} is empty, "
                              "duplicated, reserved or has whitespace at its ends / a tab / newline")
        seen.add(item_id)
        title = " ".join(str(titles[index] or "").split())
        lines.append(f"{index}\t{item_id}\t{title}")
    return "\n".join(lines) + "\n"


def parse_items_tsv(data: bytes, catalog_size: int, *, source: str = ITEMS_FILE
                    ) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """Parse ``items.tsv`` into (ids, titles) indexed by item index, checking it covers exactly
    indices 2..catalog_size-1 in order with distinct ids; raise :class:`BundleError` naming the line."""
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise BundleError(f"{source}: not UTF-8 ({exc}); rebuild the bundle") from exc
    lines = text.split("\n")
    if lines and lines[-1] == "":
        lines.pop()
    if not lines or lines[0] != ITEMS_HEADER:
        raise BundleError(f"{source}: line 1 must be the header {ITEMS_HEADER!r}")
    ids = [PAD_ID, OOV_ID]
    titles = ["", ""]
    seen: set[str] = set()
    for line_no, line in enumerate(lines[1:], start=2):
        parts = line.split("\t")
        expected_index = line_no
        if len(parts) != 3:
            raise BundleError(f"{source}: line {line_no} has {len(parts)} tab-separated fields, "
                              "expected 3 (index, item_id, title)")
        if parts[0] != str(expected_index):
            raise BundleError(f"{source}: line {line_no} has index {parts[0]!r}, expected "
                              f"{expected_index} (indices run 2..catalog_size-1 in order)")
        if not parts[1] or parts[1] in seen:
            raise BundleError(f"{source}: line {line_no} item_id {parts[1]!r} is empty or repeated")
        seen.add(parts[1])
        ids.append(parts[1])
        titles.append(parts[2])
    if len(ids) != catalog_size:
        raise BundleError(f"{source}: {len(ids) - 2} items listed, but the manifest's catalog_size "
                          f"{catalog_size} means {catalog_size - 2}; the bundle is inconsistent: rebuild it")
    return tuple(ids), tuple(titles)


def read_bundle_files(path: str | Path) -> tuple[Path, dict[str, bytes]]:
    """Read the files of a bundle directory or ``.tar.gz`` into memory, without extracting.

    Archive members must be regular files named ``NAME`` or ``DIR/NAME`` (one common folder);
    links, devices, absolute paths and ``..`` are refused. Returns (resolved path, {name: bytes}).
    """
    path = Path(path).expanduser()
    if path.is_dir():
        files: dict[str, bytes] = {}
        for name in BUNDLE_FILES:
            member = path / name
            if not member.is_file():
                raise BundleError(f"{path}: missing {name}; a bundle directory holds "
                                  f"{', '.join(BUNDLE_FILES)} (build one with `edge-rec build`)")
            files[name] = member.read_bytes()
        return path.resolve(), files
    if path.is_file() and (path.name.endswith(".tar.gz") or path.name.endswith(".tgz")):
        return path.resolve(), _read_archive(path)
    if path.is_file():
        raise BundleError(f"{path}: not a bundle; expected a bundle directory or a .tar.gz of one")
    raise BundleError(f"{path}: no such bundle directory or archive")


def _read_archive(path: Path) -> dict[str, bytes]:
    files: dict[str, bytes] = {}
    prefixes: set[str] = set()
    try:
        with tarfile.open(path, "r:gz") as archive:
            for member in archive.getmembers():
                parts = PurePosixPath(member.name).parts
                if parts and parts[0] == ".":
                    parts = parts[1:]
                if member.isdir():
                    continue
                if (not member.isreg() or member.name.startswith("/") or ".." in parts
                        or not 1 <= len(parts) <= 2):
                    raise BundleError(f"{path}: archive member {member.name!r} is not a plain file "
                                      "inside the bundle folder; refusing the archive")
                name = parts[-1]
                if name not in BUNDLE_FILES:
                    continue
                if member.size > MAX_MEMBER_BYTES:
                    raise BundleError(f"{path}: archive member {member.name!r} is larger than "
                                      f"{MAX_MEMBER_BYTES} bytes")
                prefixes.add("/".join(parts[:-1]))
                if name in files:
                    raise BundleError(f"{path}: archive holds {name} twice")
                handle = archive.extractfile(member)
                if handle is None:  # pragma: no cover - isreg() members always have data
                    raise BundleError(f"{path}: cannot read archive member {member.name!r}")
                files[name] = handle.read()
    except (tarfile.TarError, OSError, EOFError) as exc:
        raise BundleError(f"{path}: not a readable .tar.gz ({exc}); re-create it with "
                          "archive_bundle() or `tar czf`") from exc
    if len(prefixes) > 1:
        raise BundleError(f"{path}: archive holds bundle files in several folders {sorted(prefixes)}")
    missing = [name for name in BUNDLE_FILES if name not in files]
    if missing:
        raise BundleError(f"{path}: archive lacks {', '.join(missing)}")
    return files


def verify_bundle(path: str | Path) -> VerifiedBundle:
    """Read and fully verify a bundle directory or ``.tar.gz``.

    Checks the manifest (format, schema version, field types, its own digest), the SHA-256 and
    size of every listed file, and that ``items.tsv`` lists exactly the catalog's items. It does
    not open the model with an interpreter (``Recommender.load`` also checks the model's signature
    against the manifest). Raises :class:`BundleError` naming the file and the problem.
    """
    source, files = read_bundle_files(path)
    if len(files[MANIFEST_FILE]) > MAX_MANIFEST_BYTES:
        raise BundleError(f"{source}/{MANIFEST_FILE}: larger than {MAX_MANIFEST_BYTES} bytes")
    manifest = Manifest.from_json(files[MANIFEST_FILE], source=f"{source}/{MANIFEST_FILE}")
    for name, record in sorted(manifest.files.items()):
        data = files.get(name)
        if data is None:
            raise BundleError(f"{source}: manifest lists {name!r}, which is not in the bundle")
        actual = bytes_digest(data)
        if actual.size != record.size:
            raise BundleError(f"{source}/{name}: size is {actual.size} bytes, the manifest says "
                              f"{record.size}; the file was truncated or replaced: rebuild the bundle")
        if actual.sha256 != record.sha256:
            raise BundleError(f"{source}/{name}: SHA-256 {actual.sha256[:12]}... does not match the "
                              f"manifest's {record.sha256[:12]}...; the file was modified: rebuild "
                              "or re-download the bundle")
    if manifest.model.file != MODEL_FILE:
        raise BundleError(f"{source}/{MANIFEST_FILE}: model.file is {manifest.model.file!r}, "
                          f"expected {MODEL_FILE!r} in schema_version {SCHEMA_VERSION}")
    item_ids, titles = parse_items_tsv(files[ITEMS_FILE], manifest.catalog_size,
                                       source=f"{source}/{ITEMS_FILE}")
    digest = json.loads(files[MANIFEST_FILE])["manifest_sha256"]
    return VerifiedBundle(source=source, manifest=manifest, model_bytes=files[MODEL_FILE],
                          item_ids=item_ids, titles=titles, manifest_sha256=digest)


def archive_members(directory: Path) -> list[tuple[str, bytes]]:
    """(archive name, bytes) of the bundle files of ``directory`` in a fixed order, for archiving."""
    return [(f"{directory.name}/{name}", (directory / name).read_bytes()) for name in BUNDLE_FILES]


def build_archive(members: Sequence[tuple[str, bytes]]) -> bytes:
    """A reproducible ``.tar.gz`` (fixed mtime, owner and mode) holding ``members``."""
    import gzip

    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w", format=tarfile.PAX_FORMAT) as archive:
        for name, data in members:
            info = tarfile.TarInfo(name)
            info.size = len(data)
            info.mode = 0o644
            info.mtime = 0
            archive.addfile(info, io.BytesIO(data))
    return gzip.compress(raw.getvalue(), compresslevel=9, mtime=0)
