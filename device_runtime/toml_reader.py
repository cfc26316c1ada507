"""TOML parsing on every supported Python: ``tomllib`` (3.11+), else the ``tomli`` backport it
came from (a dependency only where ``python_version < "3.11"``). The one place that chooses."""

from __future__ import annotations

import sys
from typing import Any

if sys.version_info >= (3, 11):
    import tomllib as _toml  # novermin (guarded by the version check)
else:  # pragma: no cover - exercised by the Python 3.9 device check
    import tomli as _toml

#: The error a malformed document raises.
TOMLDecodeError = _toml.TOMLDecodeError


def loads_toml(text: str) -> dict[str, Any]:
    """The table a TOML document holds; raises :data:`TOMLDecodeError` for malformed text."""
    return _toml.loads(text)
