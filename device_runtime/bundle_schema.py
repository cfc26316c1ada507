"""The bundle manifest: one typed definition (:class:`Manifest`) that the writer fills and the
reader validates, its schema version and the migrations of older versions.

Compatibility rules:

- ``schema_version`` is the version the writer wrote; :data:`MIGRATIONS` lifts each older
  version this reader knows to the next, so a reader serves every bundle written since
  version 1.
- ``min_reader_schema`` is the oldest reader schema that can serve the bundle. A writer adding an
  optional field (one a reader may ignore) keeps it; a writer adding anything a reader must
  understand raises it. A reader refuses a bundle whose ``min_reader_schema`` is newer than its
  :data:`SCHEMA_VERSION`, with a message saying to upgrade.
- Fields this reader does not know are kept (``Manifest.extra``), covered by the digest, and
  otherwise ignored. Adding a field is one entry in :data:`OPTIONAL_FIELDS` (its JSON type and
  default) plus the writer's value.
"""

from __future__ import annotations

import json
from array import array
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from device_runtime.digest import sha256
from device_runtime.strict_json import MAX_JSON_DEPTH, nesting_exceeds, parse_strict_json

PAD_INDEX = 0
OOV_INDEX = 1
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



#: The schema this runtime writes and reads. Version 2 added ``min_reader_schema`` and optional
#: fields unknown readers keep and ignore (version 1 refused unknown fields).
SCHEMA_VERSION = 2

#: Optional top-level fields: name -> (JSON type, default when absent). Adding one is this entry
#: and the :class:`Manifest` field of the same name; reading, writing and checking follow.
OPTIONAL_FIELDS: Mapping[str, tuple[type, Any]] = {
    "metrics": (dict, {}),
    "build": (dict, {}),
}


def _v1_to_v2(data: dict[str, Any]) -> dict[str, Any]:
    """Version 1 had no ``min_reader_schema``: every v1 bundle is servable by a v1 reader."""
    return {**data, "schema_version": 2, "min_reader_schema": 1}


#: version -> the function lifting a manifest dict of that version to the next one.
MIGRATIONS: Mapping[int, Callable[[dict[str, Any]], dict[str, Any]]] = {1: _v1_to_v2}


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
    """Everything the runtime needs to trust and use a bundle (:data:`SCHEMA_VERSION`).

    Build one with the fields and call :meth:`to_json` (it fills ``manifest_sha256``); read one
    with :meth:`from_json`, which validates every field's type and range and the digest, and
    refuses whatever the writer would not produce (another model file name or signature key,
    inputs/outputs other than the contract's, files other than ``model.tflite`` and ``items.tsv``,
    ``top_k`` larger than the catalog). A manifest read from JSON holds ``popularity`` as a compact
    ``array`` of indices (a 100,000-item list of Python ints would cost 3.6 MB on a device).
    Older schema versions are migrated on read (:data:`MIGRATIONS`); ``extra`` keeps the fields
    this reader does not know (written back as they were, so the digest still holds).
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
    extra: Mapping[str, Any] = field(default_factory=dict)
    padding_index: int = PAD_INDEX
    oov_index: int = OOV_INDEX
    schema_version: int = SCHEMA_VERSION
    min_reader_schema: int = SCHEMA_VERSION
    format: str = BUNDLE_FORMAT

    def to_dict(self) -> dict[str, Any]:
        """The manifest as a JSON-ready dict, including ``manifest_sha256``."""
        body: dict[str, Any] = {
            **self.extra,
            "format": self.format,
            "schema_version": self.schema_version,
            "min_reader_schema": self.min_reader_schema,
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
            **{name: _plain(getattr(self, name)) for name in OPTIONAL_FIELDS},
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
        return cls.from_dict(parse_strict_json(text, source=source, error=BundleError), source=source)

    @classmethod
    def from_dict(cls, data: Any, *, source: str = MANIFEST_FILE) -> Manifest:
        """Validate a parsed manifest dict (see :meth:`from_json`)."""
        if not isinstance(data, dict):
            raise BundleError(f"{source}: expected a JSON object, got {type(data).__name__}")
        if nesting_exceeds(data, MAX_JSON_DEPTH):
            raise BundleError(f"{source}: JSON nested too deeply (more than {MAX_JSON_DEPTH} levels)")
        check = _FieldChecker(source)
        fmt = check.get(data, "format", str)
        if fmt != BUNDLE_FORMAT:
            raise BundleError(f"{source}: field 'format' is {_short(fmt)}, expected {BUNDLE_FORMAT!r}; "
                              "this is not an edge-rec bundle manifest")
        version = check.get(data, "schema_version", int)
        if version < 1:
            raise BundleError(f"{source}: schema_version {_short(version)} is not a bundle schema (versions start at 1)")
        if version == 1:  # version 1 refused unknown fields; so does its reading here
            check.known_keys(data, _V1_KEYS, "")
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
        data = _migrated(data, version)
        needed = check.get(data, "min_reader_schema", int)
        if needed > SCHEMA_VERSION:
            raise BundleError(f"{source}: this bundle needs a reader of schema_version {needed} or newer "
                              f"(it was written with schema_version {version}; this runtime reads up to "
                              f"{SCHEMA_VERSION}); upgrade edge-rec's device runtime to serve it")
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
        if top_k > real_item_count(catalog_size):
            raise BundleError(f"{source}: field 'top_k' is {top_k}, larger than the catalog's "
                              f"{real_item_count(catalog_size)} items (catalog_size {catalog_size} minus padding and OOV)")
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
        optional = {name: check.get(data, name, kind) if name in data else default
                    for name, (kind, default) in OPTIONAL_FIELDS.items()}
        return cls(
            model=section,
            history_length=history_length,
            catalog_size=catalog_size,
            top_k=top_k,
            popularity=popularity,
            files=files,
            created_at=check.get(data, "created_at", str),
            extra={key: value for key, value in data.items() if key not in _KNOWN_KEYS},
            schema_version=max(version, SCHEMA_VERSION),
            min_reader_schema=needed,
            **optional,
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



def _plain(value: Any) -> Any:
    """A mapping as a plain dict (what JSON encodes), anything else as it is."""
    return dict(value) if isinstance(value, Mapping) else value


#: The fields of :class:`Manifest` (and the digest), as JSON keys: everything else is ``extra``.
_KNOWN_KEYS = frozenset({"format", "schema_version", "min_reader_schema", "created_at", "model", "history_length",
                         "padding_index", "oov_index", "catalog_size", "top_k", "popularity", "files",
                         "manifest_sha256", *OPTIONAL_FIELDS})
#: Version 1's fields (it refused any other).
_V1_KEYS = _KNOWN_KEYS - {"min_reader_schema"}


def _migrated(data: dict[str, Any], version: int) -> dict[str, Any]:
    """``data`` lifted from ``version`` to :data:`SCHEMA_VERSION` by :data:`MIGRATIONS`; a newer
    version is returned as it is (its ``min_reader_schema`` decides whether it can be served)."""
    while version < SCHEMA_VERSION:
        data = MIGRATIONS[version](data)
        version += 1
    return data
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
                              f"; expected only {sorted(known)}")

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


def canonical_json(data: Mapping[str, Any]) -> bytes:
    """The canonical JSON encoding used for digests: sorted keys, compact separators, ASCII."""
    return json.dumps(data, sort_keys=True, separators=(",", ":"), ensure_ascii=True,
                      allow_nan=False).encode("ascii")


def manifest_digest(manifest: Mapping[str, Any]) -> str:
    """SHA-256 (hex) of the canonical JSON of ``manifest`` without its ``manifest_sha256`` field."""
    body = {key: value for key, value in manifest.items() if key != "manifest_sha256"}
    return sha256(canonical_json(body)).hexdigest()


