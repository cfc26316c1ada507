"""Cached virtual environments with the lean device stack (tflite-runtime 2.14), for tests.

``lean_python(name, requirements)`` returns the interpreter of a venv under
``~/.cache/edge-rec-test-venvs/NAME`` (``EDGE_REC_TEST_VENVS`` overrides the folder), creating it
with Python <= 3.11 and ``pip install``-ing ``requirements`` the first time, or calls
``pytest.skip`` with the reason when no such Python exists or pip cannot get the wheels.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

LEAN_REQUIREMENTS = ("tflite-runtime==2.14.0", "numpy<2")
NUMPY2_REQUIREMENTS = ("tflite-runtime==2.14.0", "numpy>=2,<3")
CACHE = Path(os.environ.get("EDGE_REC_TEST_VENVS", Path.home() / ".cache" / "edge-rec-test-venvs"))
INSTALL_TIMEOUT_S = 600


def _python_311_or_older() -> str | None:
    if sys.version_info[:2] <= (3, 11):
        return sys.executable
    for name in ("python3.11", "python3.10", "python3.9"):
        found = shutil.which(name)
        if found:
            return found
    return None


def lean_python(name: str, requirements: tuple[str, ...]) -> Path:
    """The python of a cached venv holding ``requirements`` (skips the test when impossible)."""
    venv = CACHE / name
    python = venv / "bin" / "python"
    stamp = venv / ".edge-rec-ready"
    wanted = "\n".join(requirements)
    if stamp.exists() and stamp.read_text() == wanted and python.exists():
        return python
    base = _python_311_or_older()
    if base is None:
        pytest.skip("tflite-runtime 2.14 has wheels for Python 3.9-3.11 only, and no such "
                    "python3.x is on PATH")
    shutil.rmtree(venv, ignore_errors=True)
    venv.parent.mkdir(parents=True, exist_ok=True)
    made = subprocess.run([base, "-m", "venv", str(venv)], capture_output=True, text=True)
    if made.returncode != 0:
        pytest.skip(f"cannot create a venv with {base}: {made.stderr.strip()[-300:]}")
    try:
        pip = subprocess.run([str(python), "-m", "pip", "install", "--quiet", *requirements],
                             capture_output=True, text=True, timeout=INSTALL_TIMEOUT_S)
    except subprocess.TimeoutExpired:
        pytest.skip(f"pip install {' '.join(requirements)} took over {INSTALL_TIMEOUT_S} s")
    if pip.returncode != 0:
        pytest.skip(f"pip cannot install {' '.join(requirements)} here (no wheels for this "
                    f"platform or no index): {pip.stderr.strip()[-300:]}")
    stamp.write_text(wanted)
    return python
