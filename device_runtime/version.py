"""The runtime's version, and the rule that compares versions: one home for both.

``edge_rec.__version__`` is this version (the SDK and its device runtime ship together), and a
signed release names the oldest runtime that can serve it (:mod:`device_runtime.updates.release`).
"""

from __future__ import annotations

RUNTIME_VERSION = "0.1.0"

#: The oldest runtime that reads each bundle ``min_reader_schema``: what a release needs by
#: default when its publisher does not say more.
RUNTIME_FOR_READER_SCHEMA = {1: "0.1.0", 2: "0.1.0"}


def parse_version(text: str, *, where: str = "version") -> tuple[int, ...]:
    """``"1.2.3"`` as ``(1, 2, 3)``: dot-separated non-negative integers, 1 to 4 of them.

    Raises ``ValueError`` naming ``where`` and what was expected otherwise."""
    parts = text.split(".") if isinstance(text, str) else []
    if not 1 <= len(parts) <= 4 or not all(part.isdigit() and part.isascii() for part in parts):
        raise ValueError(f"{where}: {str(text)[:40]!r} is not a version; expected dot-separated "
                         "integers such as '0.1.0'")
    return tuple(int(part) for part in parts)


def runtime_can_serve(min_runtime_version: str, runtime_version: str = RUNTIME_VERSION) -> bool:
    """True when ``runtime_version`` is ``min_runtime_version`` or newer (missing parts are 0)."""
    need, have = parse_version(min_runtime_version), parse_version(runtime_version)
    width = max(len(need), len(have))
    return have + (0,) * (width - len(have)) >= need + (0,) * (width - len(need))
