"""Read interaction logs: MovieLens 100K / 1M / latest and generic CSV, with format detection.

Every rating row counts as one interaction (implicit feedback); rating values are not used.
Lines are validated; a bad line either raises :class:`DataFormatError` naming the file, the
line number and what was expected, or (``on_bad_line="skip"``) is skipped and counted in
``InteractionLog.skipped_lines``. Blank lines are ignored.

Parsing is done on whole columns at once when the file is clean (about 1 s per million lines);
only when that fails is it parsed line by line to find (or skip) the offending lines. CSV
fields may be quoted but may not contain line breaks.
"""

from __future__ import annotations

import csv
import gc
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from edge_rec.data.errors import DataFormatError
from edge_rec.data.interactions import InteractionLog

FORMATS = ("movielens-100k", "movielens-1m", "movielens-latest", "csv")
BAD_LINE_POLICIES = ("error", "skip")

_MOVIELENS_LATEST_HEADER = ("userId", "movieId", "rating", "timestamp")
_INT64_MIN, _INT64_MAX = int(np.iinfo(np.int64).min), int(np.iinfo(np.int64).max)
_ENCODING = "utf-8-sig"  # UTF-8; a leading byte-order mark (as Excel writes) is accepted and dropped
_SKIP_HINT = "(pass on_bad_line='skip', or --skip-bad-lines, to skip and count bad lines)"


@dataclass(frozen=True)
class _Layout:
    """Where the fields of one format are: separator, field count, column positions."""

    format: str
    separator: str
    fields: int
    user: int
    item: int
    time: int
    title: int | None
    header_lines: int
    expected: str  # human description of a valid line


def detect_format(
    path: str | Path,
    *,
    user_col: str = "user_id",
    item_col: str = "item_id",
    time_col: str = "timestamp",
    delimiter: str = ",",
) -> str:
    """Return the format name of ``path`` judged from its name and first non-blank line.

    ``u.data``-style tab-separated 4-field numeric lines are ``movielens-100k``; ``::``
    separated lines are ``movielens-1m``; the header ``userId,movieId,rating,timestamp`` is
    ``movielens-latest``; a header containing ``user_col``, ``item_col`` and ``time_col`` is
    ``csv``. Anything else raises :class:`DataFormatError` explaining how to choose a format.
    """
    path = Path(path)
    first = _first_line(path)
    if first is None:
        raise DataFormatError(f"{path}: empty file; expected interactions, one per line")
    if "::" in first:
        return "movielens-1m"
    tab_fields = first.split("\t")
    if len(tab_fields) == 4 and all(_is_number(f) for f in tab_fields):
        return "movielens-100k"
    comma_fields = [f.strip() for f in first.split(",")]
    if tuple(comma_fields) == _MOVIELENS_LATEST_HEADER:
        return "movielens-latest"
    header = [f.strip() for f in first.split(delimiter)] if delimiter else []
    if {user_col, item_col, time_col} <= set(header):
        return "csv"
    raise DataFormatError(
        f"{path}: cannot tell the format from line 1 {first[:80]!r}; expected a "
        f"movielens-100k u.data line (user<TAB>item<TAB>rating<TAB>timestamp), a movielens-1m "
        f"line (user::item::rating::timestamp), the movielens-latest header "
        f"'userId,movieId,rating,timestamp', or a CSV header with columns "
        f"{user_col!r}, {item_col!r}, {time_col!r}. Pass format= (--format) one of "
        f"{', '.join(FORMATS)}, and for csv the column names (user_col=, item_col=, time_col=)"
    )


def load_interactions(
    path: str | Path,
    format: str = "auto",
    *,
    on_bad_line: str = "error",
    user_col: str = "user_id",
    item_col: str = "item_id",
    time_col: str = "timestamp",
    delimiter: str = ",",
) -> InteractionLog:
    """Load an interaction log from ``path`` in ``format`` (``"auto"`` or one of :data:`FORMATS`).

    ``user_col``/``item_col``/``time_col``/``delimiter`` describe a generic ``csv`` file (which
    must have a header); a ``title`` column, when present, becomes ``InteractionLog.titles``.
    Timestamps must be integers (Unix seconds) within int64; user and item ids may not contain
    NUL bytes; the file is UTF-8, with or without a leading byte-order mark. Raises :class:`DataFormatError` for a missing,
    empty, undecodable or malformed file (naming file, line and expectation), and
    ``ValueError`` for an unknown ``format`` or ``on_bad_line``.
    """
    path = Path(path)
    if format != "auto" and format not in FORMATS:
        raise ValueError(f"unknown format {format!r}; expected 'auto' or one of {', '.join(FORMATS)}")
    if on_bad_line not in BAD_LINE_POLICIES:
        raise ValueError(f"on_bad_line must be 'error' or 'skip', got {on_bad_line!r}")
    if not path.is_file():
        raise DataFormatError(f"{path}: no such file")
    if format == "auto":
        format = detect_format(
            path, user_col=user_col, item_col=item_col, time_col=time_col, delimiter=delimiter
        )
    text = _read_text(path)
    if not text.strip():
        raise DataFormatError(f"{path}: empty file; expected interactions, one per line")
    has_nul = "\x00" in text  # ids with NUL are refused: only the line-by-line parser names them
    lines = text.splitlines()
    del text
    if format in ("movielens-latest", "csv"):
        layout, body, first_line_no = _csv_layout(path, lines, format, user_col, item_col, time_col, delimiter)
        quoted = any('"' in line for line in body)
    else:
        layout, body, first_line_no, quoted = _split_layout(format), lines, 1, False
    del lines
    try:
        with _gc_paused():  # millions of small lists/strings: the cyclic GC only slows this down
            parsed = None if quoted or has_nul else _parse_flat(layout, body)
            if parsed is None:
                if format in ("movielens-latest", "csv"):
                    rows = list(csv.reader(body, delimiter=layout.separator))
                else:
                    rows = [line.split(layout.separator) for line in body]
                parsed = _parse_rows(path, layout, rows, first_line_no, on_bad_line,
                                     line_by_line=has_nul)
    except DataFormatError as exc:
        hint = _format_hint(path, format)
        raise DataFormatError(f"{exc}{hint}") from None
    users, items, stamps, titles, skipped = parsed
    if len(users) == 0:
        what = "valid lines" if skipped else "interactions"
        raise DataFormatError(
            f"{path}: no {what} found ({skipped} bad lines skipped); expected {layout.expected}"
        )
    return InteractionLog(
        users=users,
        items=items,
        timestamps=stamps,
        source=f"{path} ({format})",
        skipped_lines=skipped,
        titles=titles,
    )


def _split_layout(format: str) -> _Layout:
    if format == "movielens-100k":
        return _Layout(format, "\t", 4, 0, 1, 3, None, 0,
                       "4 tab-separated fields user<TAB>item<TAB>rating<TAB>timestamp (movielens-100k)")
    return _Layout(format, "::", 4, 0, 1, 3, None, 0,
                   "4 '::'-separated fields user::item::rating::timestamp (movielens-1m)")


def _csv_layout(path, lines, format, user_col, item_col, time_col, delimiter):
    """Find the header of CSV ``lines``; return the layout, the lines after it, its line number."""
    if format == "movielens-latest":
        delimiter, user_col, item_col, time_col = ",", "userId", "movieId", "timestamp"
    if len(delimiter) != 1:
        raise ValueError(f"a csv delimiter must be one character, got {delimiter!r}")
    header_index = next((i for i, line in enumerate(lines) if line.strip()), None)
    if header_index is None:
        raise DataFormatError(f"{path}: empty file; expected a header line and interactions")
    header = [f.strip() for f in next(csv.reader([lines[header_index]], delimiter=delimiter))]
    missing = [c for c in (user_col, item_col, time_col) if c not in header]
    if missing:
        raise DataFormatError(
            f"{path}:{header_index + 1}: header {delimiter.join(header)!r} lacks column(s) "
            f"{', '.join(missing)}; expected a header naming {user_col!r}, {item_col!r} and "
            f"{time_col!r} (set the column names with user_col=/item_col=/time_col=, or "
            f"--user-col/--item-col/--time-col)"
        )
    title = header.index("title") if "title" in header else None
    layout = _Layout(
        format, delimiter, len(header), header.index(user_col), header.index(item_col),
        header.index(time_col), title, header_index + 1,
        f"{len(header)} {delimiter!r}-separated fields matching the header {delimiter.join(header)!r}",
    )
    return layout, lines[header_index + 1:], header_index + 2


@contextmanager
def _gc_paused():
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


def _parse_flat(layout: _Layout, body: list[str]):
    """Columns of clean, unquoted lines without building a list per line; None if not clean."""
    if not all(body):
        body = [line for line in body if line]
    if not body:
        return None
    separator, n = layout.separator, layout.fields
    if not all(line.count(separator) == n - 1 for line in body):
        return None
    flat = "\n".join(body).replace(separator, "\n").split("\n")
    users, items = flat[layout.user::n], flat[layout.item::n]
    if "" in users or "" in items:
        return None
    try:
        stamps = np.array(flat[layout.time::n], dtype=np.int64)
    except (ValueError, OverflowError):
        return None
    titles = _titles(items, flat[layout.title::n]) if layout.title is not None else None
    return np.array(users), np.array(items), stamps, titles, 0


def _parse_rows(path, layout, rows, first_line_no, on_bad_line, *, line_by_line=False):
    """Columns of ``rows``; fast whole-column path first, then line by line if anything is off
    (or at once when ``line_by_line``)."""
    rows_nonblank = [] if line_by_line else [
        r for r in rows if r and not (len(r) == 1 and not r[0].strip())]
    if rows_nonblank and all(len(r) == layout.fields for r in rows_nonblank):
        columns = list(zip(*rows_nonblank))
        users, items = columns[layout.user], columns[layout.item]
        if "" not in users and "" not in items:
            try:
                stamps = np.array(columns[layout.time], dtype=np.int64)
            except (ValueError, OverflowError):
                stamps = None
            if stamps is not None:
                titles = _titles(items, columns[layout.title]) if layout.title is not None else None
                return np.array(users), np.array(items), stamps, titles, 0
    return _parse_line_by_line(path, layout, rows, first_line_no, on_bad_line)


def _parse_line_by_line(path, layout, rows, first_line_no, on_bad_line):
    users: list[str] = []
    items: list[str] = []
    stamps: list[int] = []
    title_values: list[str] = []
    skipped = 0
    for offset, row in enumerate(rows):
        if not row or (len(row) == 1 and not row[0].strip()):
            continue
        problem = _line_problem(layout, row)
        if problem is None:
            try:
                stamp = int(row[layout.time])
            except ValueError:
                problem = (
                    f"timestamp {row[layout.time][:40]!r} in field {layout.time + 1} is not an "
                    "integer (expected Unix seconds)"
                )
            else:
                if not _INT64_MIN <= stamp <= _INT64_MAX:
                    problem = (
                        f"timestamp {row[layout.time][:40]!r} in field {layout.time + 1} is out of "
                        f"range (expected Unix seconds within a 64-bit integer, "
                        f"{_INT64_MIN}..{_INT64_MAX})"
                    )
        if problem is not None:
            if on_bad_line == "skip":
                skipped += 1
                continue
            line = layout.separator.join(row)
            raise DataFormatError(
                f"{path}:{first_line_no + offset}: {problem}; expected {layout.expected}, "
                f"got {line[:80]!r} {_SKIP_HINT}"
            )
        users.append(row[layout.user])
        items.append(row[layout.item])
        stamps.append(stamp)
        if layout.title is not None:
            title_values.append(row[layout.title])
    titles = _titles(items, title_values) if layout.title is not None else None
    return (
        np.array(users, dtype=str),
        np.array(items, dtype=str),
        np.array(stamps, dtype=np.int64),
        titles,
        skipped,
    )


def _line_problem(layout: _Layout, row: list[str]) -> str | None:
    if len(row) != layout.fields:
        return f"found {len(row)} field(s)"
    if not row[layout.user]:
        return f"empty user id in field {layout.user + 1}"
    if not row[layout.item]:
        return f"empty item id in field {layout.item + 1}"
    for name, column in (("user", layout.user), ("item", layout.item)):
        if "\x00" in row[column]:
            return f"{name} id in field {column + 1} contains a NUL byte"
    return None


def _titles(items, values) -> dict[str, str] | None:
    titles = {item: title for item, title in zip(items, values) if title}
    return titles or None


def _format_hint(path: Path, format: str) -> str:
    """' (this file looks like X; pass --format X)' when detection disagrees with ``format``."""
    try:
        guess = detect_format(path)
    except DataFormatError:
        return ""
    if guess != format:
        return f" -- this file looks like {guess}; pass format={guess!r} (--format {guess})"
    return ""


def _read_text(path: Path) -> str:
    try:
        return path.read_text(encoding=_ENCODING)
    except UnicodeDecodeError as exc:
        raise DataFormatError(
            f"{path}: not UTF-8 text (byte {exc.start}: {exc.reason}); expected a text file of "
            "interactions, e.g. MovieLens u.data / ratings.dat / ratings.csv or a CSV with a header"
        ) from None


def _first_line(path: Path) -> str | None:
    """The first non-blank line (without line ending), or None for an empty file."""
    try:
        with path.open("r", encoding=_ENCODING) as handle:
            for line in handle:
                if line.strip():
                    return line.rstrip("\r\n")
    except UnicodeDecodeError:
        _read_text(path)  # raises the explanatory DataFormatError
    except FileNotFoundError:
        raise DataFormatError(f"{path}: no such file") from None
    return None


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True
