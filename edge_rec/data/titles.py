"""Item titles from a side file, so a bundle's ``items.tsv`` (and ``edge-rec recommend``) shows them.

Accepted files (detected from the first line):

- MovieLens 100K ``u.item``: ``id|title|date|...`` (no header, latin-1);
- MovieLens 1M ``movies.dat``: ``id::title::genres`` (no header, latin-1);
- MovieLens latest ``movies.csv``: header ``movieId,title,genres``;
- any CSV with a header holding ``item_id`` (or ``movieId`` / ``id``) and ``title``.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Mapping, Sequence
from pathlib import Path

from edge_rec.data.errors import DataFormatError

#: Header names accepted for the id column of a CSV titles file, in order of preference.
ID_COLUMNS = ("item_id", "movieId", "id")
TITLE_COLUMN = "title"


def _decode(raw: bytes) -> str:
    try:
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError:
        return raw.decode("latin-1")  # MovieLens 100K / 1M


def load_titles(path: str | Path) -> dict[str, str]:
    """``{item_id: title}`` from ``path`` (see the module docstring for the formats).

    Raises :class:`DataFormatError` naming the file (and line) when it is none of them.
    """
    path = Path(path)
    try:
        text = _decode(path.read_bytes())
    except OSError as exc:
        raise DataFormatError(f"{path}: cannot read the titles file ({exc.strerror or exc})") from None
    lines = text.splitlines()
    if not lines:
        raise DataFormatError(f"{path}: the titles file is empty")
    first = lines[0]
    titles: dict[str, str] = {}
    if "::" in first or ("|" in first and "," not in first.split("|")[0]):
        separator = "::" if "::" in first else "|"
        for number, line in enumerate(lines, start=1):
            if not line.strip():
                continue
            fields = line.split(separator)
            if len(fields) < 2:
                raise DataFormatError(f"{path}:{number}: expected 'id{separator}title{separator}...', got {line!r}")
            titles[fields[0].strip()] = fields[1].strip()
        return titles
    rows = csv.reader(io.StringIO(text))
    header = [name.strip() for name in next(rows)]
    id_column = next((name for name in ID_COLUMNS if name in header), None)
    if id_column is None or TITLE_COLUMN not in header:
        raise DataFormatError(
            f"{path}:1: expected a MovieLens u.item / movies.dat / movies.csv, or a CSV header with "
            f"{' / '.join(ID_COLUMNS)} and {TITLE_COLUMN}; got header {header}")
    id_at, title_at = header.index(id_column), header.index(TITLE_COLUMN)
    for number, row in enumerate(rows, start=2):
        if not row:
            continue
        if len(row) <= max(id_at, title_at):
            raise DataFormatError(f"{path}:{number}: expected {len(header)} fields, got {len(row)}")
        titles[row[id_at].strip()] = row[title_at].strip()
    return titles


def titles_by_index(item_ids: Sequence[str], titles: Mapping[str, str],
                    fallback: Sequence[str] | None = None) -> list[str]:
    """One title per vocabulary index: ``titles[item_id]``, else ``fallback[index]``, else ""."""
    return [titles.get(item_id, fallback[index] if fallback is not None else "")
            for index, item_id in enumerate(item_ids)]
