"""SHA-256 for bundle verification without loading OpenSSL.

``hashlib`` imports ``_hashlib``, which maps OpenSSL's libcrypto into the process (about 4 MB of
resident memory on x86-64), only to compute SHA-256, which CPython also builds in (``_sha256``
up to 3.11, ``_sha2`` from 3.12). The built-in gives the same digests; ``hashlib`` is the
fallback where neither is present.
"""

from __future__ import annotations

try:  # CPython 3.12+
    from _sha2 import sha256
except ImportError:  # pragma: no cover - depends on the interpreter version
    try:  # CPython <= 3.11
        from _sha256 import sha256
    except ImportError:
        from hashlib import sha256

__all__ = ["sha256"]
