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
import json
import math
import os
import stat
from array import array
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, BinaryIO

from device_runtime.digest import sha256
from device_runtime.item_catalog import ItemCatalog

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
    file or field is wrong, what was expected and how to fix it.

    Every way a bundle can be bad ends in this error (or a subclass): a manifest that is not
    strict UTF-8 JSON (a byte-order mark, NaN/Infinity, nesting deeper than
    :data:`MAX_JSON_DEPTH`), an unreadable or corrupted archive, a symlink or special file in a
    bundle directory, a file larger than its manifest entry or than the reader's hard cap, a
    digest mismatch, or an ``items.tsv`` the writer would not have produced. The interpreter's
    ``ModelFormatError`` covers model bytes that a backend rejects.
    """


DEFAULT_MAX_FILE_BYTES = 256 * 1024 * 1024
"""Default hard cap on the size of one bundle file (directory file or archive member); readers
take ``max_file_bytes`` to change it, up to :data:`MAX_MEMBER_BYTES`."""
MAX_JSON_DEPTH = 32
"""Deepest nesting of objects/arrays accepted in a manifest (the writer's are 4 deep)."""
MAX_ARCHIVE_MEMBERS = 64
"""An archive with more members than this is refused before it is read further."""
_READ_CHUNK = 1 << 20
_ID_FORBIDDEN = "\t\r\n\x00"


class _NonFiniteNumber(Exception):
    """Raised by the JSON hooks for NaN, Infinity or a float literal that overflows."""

    def __init__(self, literal: str) -> None:
        super().__init__(literal)
        self.literal = literal


def _refuse_constant(literal: str) -> Any:
    raise _NonFiniteNumber(literal)


def _finite_float(literal: str) -> float:
    value = float(literal)
    if not math.isfinite(value):
        raise _NonFiniteNumber(literal)
    return value


def _nesting_exceeds(value: Any, limit: int) -> bool:
    """True when ``value`` nests dicts/lists deeper than ``limit`` (iterative: no recursion)."""
    if not isinstance(value, dict | list):
        return False
    stack = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if depth > limit:
            return True
        children = item.values() if isinstance(item, dict) else item
        stack.extend((child, depth + 1) for child in children if isinstance(child, dict | list))
    return False


def parse_strict_json(data: str | bytes, *, source: str, max_depth: int = MAX_JSON_DEPTH) -> Any:
    """Parse ``data`` as strict JSON: UTF-8 without a byte-order mark, finite numbers only (no
    ``NaN``/``Infinity``, no float literal that overflows), nesting at most ``max_depth``.

    Raises :class:`BundleError` naming ``source`` and the problem; never ``RecursionError``,
    ``UnicodeDecodeError`` or a plain ``ValueError``.
    """
    if isinstance(data, bytes | bytearray):
        if data[:3] == b"\xef\xbb\xbf" or data[:2] in (b"\xff\xfe", b"\xfe\xff"):
            raise BundleError(f"{source}: starts with a byte-order mark; expected UTF-8 JSON "
                              "without a BOM, as the bundle writer produces")
        try:
            text = bytes(data).decode("utf-8")
        except UnicodeDecodeError as exc:
            raise BundleError(f"{source}: not UTF-8 (byte {exc.start}: {exc.reason}); expected "
                              "UTF-8 JSON: rebuild the bundle") from None
    else:
        text = data
        if text.startswith("\ufeff"):
            raise BundleError(f"{source}: starts with a byte-order mark; expected JSON without a BOM")
    try:
        value = json.loads(text, parse_constant=_refuse_constant, parse_float=_finite_float)
    except _NonFiniteNumber as exc:
        raise BundleError(f"{source}: {exc.literal[:40]} is not a finite number; bundle JSON "
                          "holds finite numbers only (no NaN or Infinity)") from None
    except RecursionError:
        raise BundleError(f"{source}: JSON nested too deeply (more than {max_depth} levels)") from None
    except ValueError as exc:
        raise BundleError(f"{source}: not valid JSON ({exc}); rebuild the bundle") from None
    if _nesting_exceeds(value, max_depth):
        raise BundleError(f"{source}: JSON nested too deeply (more than {max_depth} levels)")
    return value


@dataclass(frozen=True)
class TensorSpec:
    """Name, shape and dtype (numpy name, e.g. ``int32``) of one model input or output."""

    name: str
    shape: tuple[int, ...]
    dtype: str

    def to_dict(self) -> dict[str, Any]:
        """The JSON form: ``{"name", "shape" (list), "dtype"}``."""
        return {"name": self.name, "shape": list(self.shape), "dtype": self.dtype}


def serving_signature(history_length: int, top_k: int) -> tuple[tuple[TensorSpec, ...],
                                                                 tuple[TensorSpec, ...]]:
    """The contract's (inputs, outputs) for ``history_length`` and ``top_k``: ``history``
    int32[1, L] -> ``top_ids`` int32[1, K], ``top_scores`` float32[1, K] (outputs sorted by name,
    as the writer stores them)."""
    return ((TensorSpec(HISTORY_INPUT, (1, history_length), "int32"),),
            (TensorSpec(TOP_IDS_OUTPUT, (1, top_k), "int32"),
             TensorSpec(TOP_SCORES_OUTPUT, (1, top_k), "float32")))


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
    with :meth:`from_json`, which validates every field's type and range and the digest, and
    refuses whatever the writer would not produce (another model file name or signature key,
    inputs/outputs other than the contract's, files other than ``model.tflite`` and ``items.tsv``,
    ``top_k`` larger than the catalog). A manifest read from JSON holds ``popularity`` as a compact
    ``array`` of indices (a 100,000-item list of Python ints would cost 3.6 MB on a device).
    """

    model: ModelSection
    history_length: int
    catalog_size: int
    top_k: int
    popularity: Sequence[int]
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
        """Parse (with :func:`parse_strict_json`) and validate a manifest; raise
        :class:`BundleError` naming ``source`` and the field."""
        return cls.from_dict(parse_strict_json(text, source=source), source=source)

    @classmethod
    def from_dict(cls, data: Any, *, source: str = MANIFEST_FILE) -> Manifest:
        """Validate a parsed manifest dict (see :meth:`from_json`)."""
        if not isinstance(data, dict):
            raise BundleError(f"{source}: expected a JSON object, got {type(data).__name__}")
        if _nesting_exceeds(data, MAX_JSON_DEPTH):
            raise BundleError(f"{source}: JSON nested too deeply (more than {MAX_JSON_DEPTH} levels)")
        check = _FieldChecker(source)
        check.known_keys(data, _MANIFEST_KEYS, "")
        fmt = check.get(data, "format", str)
        if fmt != BUNDLE_FORMAT:
            raise BundleError(f"{source}: field 'format' is {_short(fmt)}, expected {BUNDLE_FORMAT!r}; "
                              "this is not an edge-rec bundle manifest")
        version = check.get(data, "schema_version", int)
        if version != SCHEMA_VERSION:
            hint = ("upgrade edge-rec to read it" if version > SCHEMA_VERSION
                    else "rebuild the bundle with this edge-rec version")
            raise BundleError(f"{source}: schema_version {_short(version)} is not supported "
                              f"(this runtime reads schema_version {SCHEMA_VERSION}); {hint}")
        stored_digest = check.get(data, "manifest_sha256", str)
        body = {key: value for key, value in data.items() if key != "manifest_sha256"}
        try:
            actual_digest = manifest_digest(body)
        except (ValueError, TypeError, RecursionError) as exc:  # non-finite floats, odd types
            raise BundleError(f"{source}: cannot compute the manifest digest ({exc}); the "
                              "manifest holds values JSON cannot encode") from None
        if stored_digest != actual_digest:
            raise BundleError(f"{source}: manifest_sha256 does not match the manifest content "
                              f"(stored {stored_digest[:12]!r}..., computed {actual_digest[:12]}...); "
                              "the manifest was edited or corrupted: rebuild or re-download the bundle")
        model = check.get(data, "model", dict)
        check.known_keys(model, _MODEL_KEYS, "model.")
        inputs = tuple(check.tensor_spec(spec, f"model.inputs[{i}]")
                       for i, spec in enumerate(check.get(model, "inputs", list, "model.")))
        outputs = tuple(check.tensor_spec(spec, f"model.outputs[{i}]")
                        for i, spec in enumerate(check.get(model, "outputs", list, "model.")))
        model_file = check.file_name(check.get(model, "file", str, "model."), "model.file")
        if model_file != MODEL_FILE:
            raise BundleError(f"{source}: model.file is {_short(model_file)}, expected {MODEL_FILE!r} "
                              f"in schema_version {SCHEMA_VERSION}")
        signature_key = check.get(model, "signature_key", str, "model.")
        if signature_key != SIGNATURE_KEY:
            raise BundleError(f"{source}: model.signature_key is {_short(signature_key)}, expected "
                              f"{SIGNATURE_KEY!r}")
        section = ModelSection(
            file=model_file,
            signature_key=signature_key,
            inputs=inputs,
            outputs=outputs,
            quantization=check.get(model, "quantization", dict, "model."),
        )
        catalog_size = check.get(data, "catalog_size", int)
        if catalog_size < 3:
            raise BundleError(f"{source}: field 'catalog_size' is {_short(catalog_size)}, expected >= 3 "
                              "(padding, out-of-vocabulary and at least one item)")
        history_length = check.positive(data, "history_length")
        top_k = check.positive(data, "top_k")
        if top_k > catalog_size - 2:
            raise BundleError(f"{source}: field 'top_k' is {top_k}, larger than the catalog's "
                              f"{catalog_size - 2} items (catalog_size {catalog_size} - 2)")
        expected_in, expected_out = serving_signature(history_length, top_k)
        if inputs != expected_in or len(outputs) != len(expected_out) \
                or set(outputs) != set(expected_out):
            raise BundleError(f"{source}: model.inputs {[s.to_dict() for s in inputs]!s:.300} and "
                              f"model.outputs {[s.to_dict() for s in outputs]!s:.300} do not match the "
                              f"serving contract {[s.to_dict() for s in expected_in]} -> "
                              f"{[s.to_dict() for s in expected_out]} for history_length "
                              f"{history_length} and top_k {top_k}")
        for key, expected in (("padding_index", PAD_INDEX), ("oov_index", OOV_INDEX)):
            if check.get(data, key, int) != expected:
                raise BundleError(f"{source}: field {key!r} must be {expected} in schema_version "
                                  f"{SCHEMA_VERSION}, got {_short(data[key])}")
        popularity = _popularity(check.get(data, "popularity", list), catalog_size, source)
        files_raw = check.get(data, "files", dict)
        if set(files_raw) != {MODEL_FILE, ITEMS_FILE}:
            raise BundleError(f"{source}: field 'files' lists {sorted(files_raw)!s:.200}; expected "
                              f"exactly {MODEL_FILE!r} and {ITEMS_FILE!r} with their sha256 and size")
        files: dict[str, FileRecord] = {}
        for name, record in files_raw.items():
            where = f"files[{name!r}]"
            if not isinstance(record, dict):
                raise BundleError(f"{source}: {where} must be an object with sha256 and size")
            sha = check.get(record, "sha256", str, f"{where}.")
            if len(sha) != 64 or any(c not in "0123456789abcdef" for c in sha):
                raise BundleError(f"{source}: {where}.sha256 must be 64 lowercase hex digits")
            size = check.get(record, "size", int, f"{where}.")
            if size < 0:
                raise BundleError(f"{source}: {where}.size must be >= 0, got {_short(size)}")
            files[name] = FileRecord(sha256=sha, size=size)
        return cls(
            model=section,
            history_length=history_length,
            catalog_size=catalog_size,
            top_k=top_k,
            popularity=popularity,
            files=files,
            created_at=check.get(data, "created_at", str),
            metrics=check.get(data, "metrics", dict),
            build=check.get(data, "build", dict),
        )


def _popularity(listed: list[Any], catalog_size: int, source: str) -> Sequence[int]:
    """The manifest's popularity list as a compact array (:func:`compact_indices`), after checking
    that it holds distinct item indices in 2..catalog_size-1 (with C-level builtins: numpy code
    paged in here would count in the memory of every serving process)."""
    if (not listed or (set(map(type, listed)) == {int} and min(listed) >= FIRST_ITEM_INDEX
                       and max(listed) < catalog_size)) and len(set(listed)) == len(listed):
        return compact_indices(listed, catalog_size)
    seen: set[int] = set()
    for position, index in enumerate(listed):  # find the first bad entry, as the error names it
        if type(index) is not int or not 2 <= index < catalog_size or index in seen:
            raise BundleError(f"{source}: popularity[{position}] is {_short(index)}, expected a "
                              f"distinct item index in 2..{catalog_size - 1}")
        seen.add(index)
    raise AssertionError("unreachable: the quick check and the loop disagree")  # pragma: no cover


def compact_indices(values: Iterable[int], catalog_size: int) -> Sequence[int]:
    """Item indices (all in ``0..catalog_size-1``) as an ``array.array``: 4 bytes an index when
    they fit in an int32 (any real catalog), 8 otherwise; iterating it yields Python ints."""
    return array("i" if catalog_size <= 2**31 else "q", values)



_MANIFEST_KEYS = frozenset({"format", "schema_version", "created_at", "model", "history_length",
                            "padding_index", "oov_index", "catalog_size", "top_k", "popularity",
                            "metrics", "build", "files", "manifest_sha256"})
_MODEL_KEYS = frozenset({"file", "signature_key", "inputs", "outputs", "quantization"})


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
                              f"got {type(value).__name__} {_short(value)}")
        return value

    def known_keys(self, data: Mapping[str, Any], known: frozenset[str], prefix: str) -> None:
        unknown = sorted(set(data) - known)
        if unknown:
            raise BundleError(f"{self.source}: unknown field(s) {_short([prefix + k for k in unknown], 200)}"
                              f"; schema_version {SCHEMA_VERSION} has {sorted(known)}")

    def positive(self, data: Mapping[str, Any], key: str) -> int:
        value = self.get(data, key, int)
        if value < 1:
            raise BundleError(f"{self.source}: field {key!r} must be >= 1, got {_short(value)}")
        return value

    def file_name(self, name: str, where: str) -> str:
        if not name or "/" in name or "\\" in name or name in (".", ".."):
            raise BundleError(f"{self.source}: {where} is {_short(name)}; expected a plain file "
                              "name inside the bundle directory")
        return name

    def tensor_spec(self, spec: Any, where: str) -> TensorSpec:
        if not isinstance(spec, dict):
            raise BundleError(f"{self.source}: {where} must be an object with name, shape, dtype")
        name = self.get(spec, "name", str, f"{where}.")
        shape = self.get(spec, "shape", list, f"{where}.")
        if not all(type(dim) is int for dim in shape):
            raise BundleError(f"{self.source}: {where}.shape must be a list of integers, got "
                              f"{_short(shape)}")
        return TensorSpec(name=name, shape=tuple(shape), dtype=self.get(spec, "dtype", str, f"{where}."))


def _short(value: Any, limit: int = 60) -> str:
    """``repr(value)`` cut to ``limit`` characters; huge ints are not converted to text."""
    if type(value) is int and value.bit_length() > 64:
        return f"<an integer of {value.bit_length()} bits>"
    text = repr(value)
    return text if len(text) <= limit else text[:limit] + "..."


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


def file_digest(path: str | Path) -> FileRecord:
    """SHA-256 and size of the file at ``path`` (read in 1 MiB chunks)."""
    digest = sha256()
    size = 0
    with open(path, "rb") as fh:
        while chunk := fh.read(_READ_CHUNK):
            digest.update(chunk)
            size += len(chunk)
    return FileRecord(sha256=digest.hexdigest(), size=size)


def bytes_digest(data: bytes) -> FileRecord:
    """SHA-256 and size of ``data``."""
    return FileRecord(sha256=sha256(data).hexdigest(), size=len(data))


def canonical_json(data: Mapping[str, Any]) -> bytes:
    """The canonical JSON encoding used for digests: sorted keys, compact separators, ASCII."""
    return json.dumps(data, sort_keys=True, separators=(",", ":"), ensure_ascii=True,
                      allow_nan=False).encode("ascii")


def manifest_digest(manifest: Mapping[str, Any]) -> str:
    """SHA-256 (hex) of the canonical JSON of ``manifest`` without its ``manifest_sha256`` field."""
    body = {key: value for key, value in manifest.items() if key != "manifest_sha256"}
    return sha256(canonical_json(body)).hexdigest()


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
    for index in range(2, len(item_ids)):
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
    if listed != catalog_size - 2:
        raise BundleError(f"{source}: {listed} items listed, but the manifest's catalog_size "
                          f"{catalog_size} means {catalog_size - 2}; the bundle is inconsistent: rebuild it")
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


def _read_limited(handle: BinaryIO, limit: int, what: str, expected: int | None) -> bytes:
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
    while chunk := handle.read(min(_READ_CHUNK, limit + 1 - total)):
        total += len(chunk)
        if total > limit:
            raise BundleError(f"{what}: larger than the reader's limit of {limit} bytes "
                              "(max_file_bytes); stopped reading")
        chunks.append(chunk)
    return b"".join(chunks)


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


def _parse_manifest(raw: bytes, source: str) -> tuple[Manifest, str]:
    """The validated manifest and its (verified) ``manifest_sha256``."""
    data = parse_strict_json(raw, source=source)
    manifest = Manifest.from_dict(data, source=source)
    return manifest, data["manifest_sha256"]


_Read = tuple[dict[str, bytes], Manifest, str]


def _read_directory(path: Path, cap: int) -> _Read:
    source = path.resolve()
    manifest_path = path / MANIFEST_FILE
    with _open_regular_file(manifest_path) as handle:
        raw = _read_limited(handle, min(cap, MAX_MANIFEST_BYTES), f"{source}/{MANIFEST_FILE}", None)
    manifest, digest = _parse_manifest(raw, f"{source}/{MANIFEST_FILE}")
    files = {MANIFEST_FILE: raw}
    for name, record in sorted(manifest.files.items()):
        what = f"{source}/{name}"
        if record.size > cap:
            raise BundleError(f"{what}: the manifest says {record.size} bytes, more than the "
                              f"reader's limit of {cap} bytes (max_file_bytes); refusing to read it")
        with _open_regular_file(path / name) as handle:
            files[name] = _read_limited(handle, record.size, what, record.size)
    return files, manifest, digest


def _read_bundle(path: str | Path, max_file_bytes: int) -> tuple[Path, _Read]:
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
