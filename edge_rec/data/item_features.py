"""Item features from a side CSV, turned into hashed tokens a model's feature encoder reads.

A features file is a CSV with a header: an id column (``item_id``, or ``movieId`` / ``id``) and
feature columns of three kinds:

- ``categorical``: one or several values separated by ``|`` (``Action|Comedy``);
- ``numeric``: a number (empty = unknown), bucketed into quantile bins fitted on the file;
- ``text``: free text (titles, tags): lower-cased words, word bigrams and character 3-grams.

A column's kind is declared in the header as ``name:kind`` (``genres:categorical``) or in
``kinds`` (entries for columns the file lacks are ignored); otherwise it is inferred (every non-empty value a number: numeric; any value holding
``|``, or few distinct values: categorical; else text). Every token is hashed (CRC-32, stable
across runs and machines) into ``buckets - 1`` token ids (0 is padding), so no vocabulary or
downloaded tokenizer is needed and an unseen word of a new item still has a token. An item's
tokens carry weights: each column present weighs the same, shared equally by its tokens.

:class:`FeatureSpec` (the columns, their kinds and numeric bin edges, the bucket count) is fitted
once on the build's file and saved with the run, so a catalog patch tokenizes new items exactly
as training did.
"""

from __future__ import annotations

import csv
import io
import json
import re
import zlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from device_runtime.bundle_schema import FIRST_ITEM_INDEX
from edge_rec.data.errors import DataFormatError
from edge_rec.data.titles import ID_COLUMNS

FEATURE_KINDS = ("categorical", "numeric", "text")
#: File of a run directory holding the build's :class:`FeatureSpec`.
FEATURE_SPEC_FILE = "item_features.json"
#: Value separator of a multi-valued categorical column (MovieLens genres).
MULTI_VALUE_SEPARATOR = "|"
#: A column with at most this share of distinct values (and no long values) is inferred categorical.
CATEGORICAL_DISTINCT_SHARE = 0.2
_WORD = re.compile(r"\w+", re.UNICODE)


@dataclass(frozen=True)
class ItemFeatures:
    """The rows of a features file: ``values[item_id][column]`` (raw strings), the columns in
    file order with their kinds (declared or inferred), and the file it came from."""

    path: str
    kinds: Mapping[str, str]
    values: Mapping[str, Mapping[str, str]]

    @property
    def columns(self) -> tuple[str, ...]:
        """The feature columns, in file order."""
        return tuple(self.kinds)

    def __len__(self) -> int:
        return len(self.values)


def _decode(path: Path) -> str:
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise DataFormatError(f"{path}: cannot read the item features file ({exc.strerror or exc})") from None
    try:
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError:
        return raw.decode("latin-1")


def _is_number(text: str) -> bool:
    try:
        value = float(text)
    except ValueError:
        return False
    return value == value and value not in (float("inf"), float("-inf"))


def _infer_kind(values: list[str]) -> str:
    present = [v for v in values if v]
    if present and all(_is_number(v) for v in present):
        return "numeric"
    if any(MULTI_VALUE_SEPARATOR in v for v in present):
        return "categorical"
    distinct = len(set(present))
    longest = max((len(v.split()) for v in present), default=0)
    if present and distinct <= max(2, CATEGORICAL_DISTINCT_SHARE * len(present)) and longest <= 3:
        return "categorical"
    return "text"


def load_item_features(path: str | Path, kinds: Mapping[str, str] | None = None) -> ItemFeatures:
    """Read a features file (see the module docstring), checking it whole before returning.

    Raises :class:`DataFormatError` naming the file, the 1-based line and the column for an
    unreadable or empty file, a header without an id column or feature columns, an unknown kind,
    a row with the wrong number of fields, a duplicate item id, or a non-number in a numeric column.
    """
    path = Path(path)
    text = _decode(path)
    rows = csv.reader(io.StringIO(text))
    header = next(rows, None)
    if not header or not any(h.strip() for h in header):
        raise DataFormatError(f"{path}: the item features file is empty; expected a CSV header with "
                              f"{' / '.join(ID_COLUMNS)} and feature columns")
    names, declared = [], dict(kinds or {})
    for raw in header:
        name, _, kind = raw.strip().partition(":")
        name, kind = name.strip(), kind.strip().lower()
        if kind:
            declared[name] = kind
        names.append(name)
    id_column = next((name for name in ID_COLUMNS if name in names), None)
    if id_column is None:
        raise DataFormatError(f"{path}:1: expected an id column named {' / '.join(ID_COLUMNS)} in the header, "
                              f"got {names}")
    id_at = names.index(id_column)
    feature_names = [n for i, n in enumerate(names) if i != id_at and n]
    if not feature_names:
        raise DataFormatError(f"{path}:1: expected at least one feature column beside {id_column!r}, got {names}")
    for name, kind in declared.items():
        if kind not in FEATURE_KINDS:
            raise DataFormatError(f"{path}:1: column {name!r}: unknown kind {kind!r}; expected one of "
                                  f"{', '.join(FEATURE_KINDS)}")
    values: dict[str, dict[str, str]] = {}
    first_line: dict[str, int] = {}
    for number, row in enumerate(rows, start=2):
        if not row or not any(cell.strip() for cell in row):
            continue
        if len(row) != len(names):
            raise DataFormatError(f"{path}:{number}: expected {len(names)} fields ({', '.join(names)}), "
                                  f"got {len(row)}")
        item_id = row[id_at].strip()
        if not item_id:
            raise DataFormatError(f"{path}:{number}: empty {id_column!r}; every row needs an item id")
        if item_id in values:
            raise DataFormatError(f"{path}:{number}: item {item_id!r} appears again (first at line "
                                  f"{first_line[item_id]}); expected one row per item")
        first_line[item_id] = number
        values[item_id] = {n: row[i].strip() for i, n in enumerate(names) if i != id_at and n}
    if not values:
        raise DataFormatError(f"{path}: the item features file has a header but no rows")
    resolved = {}
    for name in feature_names:
        column = [v[name] for v in values.values()]
        kind = declared.get(name) or _infer_kind(column)
        if kind == "numeric":
            for item_id, cell in zip(values, column):
                if cell and not _is_number(cell):
                    raise DataFormatError(f"{path}:{first_line[item_id]}: column {name!r} is numeric, got "
                                          f"{cell!r}; expected a number or an empty field (declare the column "
                                          f"'{name}:text' or '{name}:categorical' if it is not a number)")
        resolved[name] = kind
    return ItemFeatures(str(path), resolved, values)


def _hash(token: str, buckets: int) -> int:
    return 1 + zlib.crc32(token.encode("utf-8")) % (buckets - 1)


def _text_tokens(text: str) -> list[str]:
    words = _WORD.findall(text.lower())
    tokens = [f"w:{w}" for w in words]
    tokens += [f"b:{a} {b}" for a, b in zip(words, words[1:])]
    for w in words:
        padded = f"<{w}>"
        tokens += [f"c:{padded[i:i + 3]}" for i in range(len(padded) - 2)]
    return tokens


@dataclass(frozen=True)
class ItemTokens:
    """Every catalog index's feature tokens: ``ids`` int32[C, T] (0 = padding), ``weights``
    float32[C, T] (0 where padding; PAD, OOV and items without features have none), over
    ``buckets`` token ids; ``id_dropout`` is the training-time rate of dropping an item's id part.
    ``features_only`` (indices, from ``features_only_start`` to the end): items kept in the catalog
    for their features although too few interactions kept them in training; their id part is
    always zero and their output bias, after training, is the ``new_item_bias_quantile`` quantile
    of the others' (as a patched item's)."""

    ids: np.ndarray
    weights: np.ndarray
    buckets: int
    id_dropout: float = 0.25
    features_only_start: int | None = None
    new_item_bias_quantile: float = 0.5

    @property
    def id_mask(self) -> np.ndarray:
        """float32[C]: 1 for an item with an id part, 0 for a features-only item."""
        mask = np.ones(self.catalog_size, np.float32)
        if self.features_only_start is not None:
            mask[self.features_only_start:] = 0.0
        return mask

    @property
    def catalog_size(self) -> int:
        """Rows: the catalog size C the tokens describe."""
        return int(self.ids.shape[0])


@dataclass(frozen=True)
class FeatureColumn:
    """One feature column: its name, kind and (numeric) quantile bin edges."""

    name: str
    kind: str
    bin_edges: tuple[float, ...] = ()

    def tokens(self, value: str) -> list[str]:
        """The column's tokens for one raw value (none for an empty value)."""
        if not value:
            return []
        if self.kind == "categorical":
            parts = {p.strip().lower() for p in value.split(MULTI_VALUE_SEPARATOR)}
            return [f"{self.name}={p}" for p in sorted(parts) if p]
        if self.kind == "numeric":
            if not _is_number(value):
                return []
            return [f"{self.name}#{int(np.searchsorted(self.bin_edges, float(value), side='right'))}"]
        return [f"{self.name}:{t}" for t in _text_tokens(value)]


@dataclass(frozen=True)
class FeatureSpec:
    """How raw feature values become token ids and weights: the columns (kinds, numeric bins),
    ``buckets`` hashed token ids (0 = padding) and at most ``max_tokens`` tokens per item."""

    columns: tuple[FeatureColumn, ...]
    buckets: int = 8192
    max_tokens: int = 32
    source: str = field(default="", compare=False)

    @classmethod
    def fit(cls, features: ItemFeatures, *, buckets: int, max_tokens: int, numeric_bins: int) -> FeatureSpec:
        """The spec of ``features``: its columns and kinds, numeric columns binned at quantiles."""
        columns = []
        for name, kind in features.kinds.items():
            edges: tuple[float, ...] = ()
            if kind == "numeric":
                numbers = np.array([float(v[name]) for v in features.values.values() if v[name]], dtype=np.float64)
                if numbers.size:
                    inner = np.quantile(numbers, np.linspace(0, 1, numeric_bins + 1)[1:-1])
                    edges = tuple(float(e) for e in np.unique(inner))
            columns.append(FeatureColumn(name, kind, edges))
        return cls(tuple(columns), buckets, max_tokens, features.path)

    def item_tokens(self, row: Mapping[str, str]) -> list[tuple[int, float]]:
        """``[(token id, weight)]`` of one item's raw values: each column present weighs the same
        (its share split equally among its tokens), at most ``max_tokens`` tokens (each column
        keeps an equal share of them), weights summing to 1; empty for an item with no values."""
        per_column = [(c, c.tokens(row.get(c.name, ""))) for c in self.columns]
        per_column = [(c, t) for c, t in per_column if t]
        if not per_column:
            return []
        room = max(1, self.max_tokens // len(per_column))
        out: dict[int, float] = {}
        for _, tokens in per_column:
            kept = tokens[:room]
            for token in kept:
                token_id = _hash(token, self.buckets)
                out[token_id] = out.get(token_id, 0.0) + 1.0 / (len(per_column) * len(kept))
        return list(out.items())[: self.max_tokens]

    def token_matrix(self, rows: Sequence[Mapping[str, str] | None]) -> tuple[np.ndarray, np.ndarray]:
        """``(token ids int32[N, max_tokens], weights float32[N, max_tokens])`` of ``rows`` (None:
        an item without features, all padding and weight 0)."""
        ids = np.zeros((len(rows), self.max_tokens), np.int32)
        weights = np.zeros((len(rows), self.max_tokens), np.float32)
        for i, row in enumerate(rows):
            for j, (token_id, weight) in enumerate(self.item_tokens(row or {})):
                ids[i, j], weights[i, j] = token_id, weight
        return ids, weights

    def to_json(self) -> dict[str, Any]:
        """The spec as JSON (saved in the run directory)."""
        return {"buckets": self.buckets, "max_tokens": self.max_tokens, "source": self.source,
                "columns": [{"name": c.name, "kind": c.kind, "bin_edges": list(c.bin_edges)} for c in self.columns]}

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> FeatureSpec:
        """The spec :meth:`to_json` wrote."""
        columns = tuple(FeatureColumn(c["name"], c["kind"], tuple(c.get("bin_edges", ()))) for c in data["columns"])
        return cls(columns, int(data["buckets"]), int(data["max_tokens"]), str(data.get("source", "")))

    def save(self, path: Path) -> None:
        """Write the spec to ``path`` as JSON."""
        path.write_text(json.dumps(self.to_json(), indent=1) + "\n", encoding="utf-8")

    @classmethod
    def load(cls, path: Path) -> FeatureSpec:
        """Read a spec :meth:`save` wrote."""
        return cls.from_json(json.loads(path.read_text(encoding="utf-8")))

    @property
    def kinds(self) -> dict[str, str]:
        """Column name -> kind (read a patch's file with these, so a few rows are not guessed anew)."""
        return {c.name: c.kind for c in self.columns}

    def check_columns(self, features: ItemFeatures) -> None:
        """Raise :class:`DataFormatError` when ``features`` lacks a column of this spec or gives
        one another kind (a patch's new items must be described as training's were)."""
        for column in self.columns:
            kind = features.kinds.get(column.name)
            if kind is None:
                raise DataFormatError(f"{features.path}:1: expected the column {column.name!r} the model was "
                                      f"trained with (columns: {', '.join(c.name for c in self.columns)})")
            if kind != column.kind:
                raise DataFormatError(f"{features.path}:1: column {column.name!r} reads as {kind}, but the model "
                                      f"was trained on it as {column.kind}; declare it '{column.name}:{column.kind}'")


def catalog_tokens(spec: FeatureSpec, features: ItemFeatures, item_ids: Sequence[str], *,
                   id_dropout: float, features_only_start: int | None = None,
                   new_item_bias_quantile: float = 0.5) -> ItemTokens:
    """The tokens of every index of a vocabulary (``item_ids``, PAD and OOV first, which get none,
    as does an item without features); indices from ``features_only_start`` are features-only."""
    ids, weights = spec.token_matrix([features.values.get(i) for i in item_ids])
    ids[:FIRST_ITEM_INDEX], weights[:FIRST_ITEM_INDEX] = 0, 0.0
    return ItemTokens(ids, weights, spec.buckets, id_dropout, features_only_start, new_item_bias_quantile)
