"""Strict JSON for untrusted input (bundle manifests, HTTP bodies): UTF-8 without a byte-order
mark, finite numbers only, bounded nesting; every failure is one typed error naming the source."""

from __future__ import annotations

import json
import math
from typing import Any

MAX_JSON_DEPTH = 32
"""Deepest nesting of objects/arrays accepted (a bundle manifest is 4 deep)."""


class StrictJSONError(ValueError):
    """Input is not strict JSON; the message names the source and the problem."""


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


def nesting_exceeds(value: Any, limit: int) -> bool:
    """True when ``value`` nests dicts/lists deeper than ``limit`` (iterative: no recursion)."""
    if not isinstance(value, (dict, list)):
        return False
    stack = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if depth > limit:
            return True
        children = item.values() if isinstance(item, dict) else item
        stack.extend((child, depth + 1) for child in children if isinstance(child, (dict, list)))
    return False


def parse_strict_json(data: str | bytes, *, source: str, max_depth: int = MAX_JSON_DEPTH,
                      error: type[ValueError] = StrictJSONError) -> Any:
    """Parse ``data`` as strict JSON: UTF-8 without a byte-order mark, finite numbers only (no
    ``NaN``/``Infinity``, no float literal that overflows), nesting at most ``max_depth``.

    Raises ``error`` (:class:`StrictJSONError` unless told) naming ``source`` and the problem;
    never ``RecursionError``, ``UnicodeDecodeError`` or a plain ``ValueError``.
    """
    if isinstance(data, (bytes, bytearray)):
        if data[:3] == b"\xef\xbb\xbf" or data[:2] in (b"\xff\xfe", b"\xfe\xff"):
            raise error(f"{source}: starts with a byte-order mark; expected UTF-8 JSON "
                              "without a BOM")
        try:
            text = bytes(data).decode("utf-8")
        except UnicodeDecodeError as exc:
            raise error(f"{source}: not UTF-8 (byte {exc.start}: {exc.reason}); expected "
                              "UTF-8 JSON") from None
    else:
        text = data
        if text.startswith("\ufeff"):
            raise error(f"{source}: starts with a byte-order mark; expected JSON without a BOM")
    try:
        value = json.loads(text, parse_constant=_refuse_constant, parse_float=_finite_float)
    except _NonFiniteNumber as exc:
        raise error(f"{source}: {exc.literal[:40]} is not a finite number; strict JSON "
                          "holds finite numbers only (no NaN or Infinity)") from None
    except RecursionError:
        raise error(f"{source}: JSON nested too deeply (more than {max_depth} levels)") from None
    except ValueError as exc:
        raise error(f"{source}: not valid JSON ({exc})") from None
    if nesting_exceeds(value, max_depth):
        raise error(f"{source}: JSON nested too deeply (more than {max_depth} levels)")
    return value
