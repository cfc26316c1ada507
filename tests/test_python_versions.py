"""Each layer runs on the Python versions the README states: the device side (``device_runtime``,
the CLI modules ``recommend``/``serve``/``benchmark``/``inspect`` import, ``edge_rec.data`` that
``benchmark --eval-data`` reads logs with, and the example apps) on 3.9+, training
(``edge_rec``, ``converters``) on 3.10+. Checked statically with vermin, plus the one 3.10 feature
vermin cannot see without flagging every postponed annotation: ``X | Y`` evaluated at run time."""

from __future__ import annotations

import ast
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
#: Modules the device-side commands import (the CLI entry point loads every command module).
DEVICE_SIDE = [REPO / "device_runtime", REPO / "edge_rec" / "cli.py", REPO / "edge_rec" / "commands",
               REPO / "edge_rec" / "data", REPO / "examples"]
TRAINING_SIDE = [REPO / "edge_rec", REPO / "converters"]


def _vermin(target: str, paths: list[Path]) -> subprocess.CompletedProcess:
    vermin = shutil.which("vermin", path=str(Path(sys.executable).parent)) or shutil.which("vermin")
    if vermin is None:
        pytest.fail("vermin is not installed: `make test` installs it with the dev extra")
    return subprocess.run([vermin, "--no-tips", "--violations", "-vv", f"-t={target}-", "--backport", "dataclasses",
                           *map(str, paths)], capture_output=True, text=True, timeout=120)


def test_the_device_side_needs_nothing_newer_than_python_3_9():
    result = _vermin("3.9", DEVICE_SIDE)
    assert result.returncode == 0, result.stdout[-3000:]


def test_training_needs_nothing_newer_than_python_3_10():
    result = _vermin("3.10", TRAINING_SIDE)
    assert result.returncode == 0, result.stdout[-3000:]


def _runtime_unions(path: Path) -> list[str]:
    """``isinstance``/``issubclass`` calls whose type argument is ``A | B`` (a 3.10 feature at run
    time; annotations are postponed by ``from __future__ import annotations`` and are fine)."""
    found = []
    tree = ast.parse(path.read_text(encoding="utf-8"))
    for node in ast.walk(tree):
        if (isinstance(node, ast.Call) and isinstance(node.func, ast.Name)
                and node.func.id in ("isinstance", "issubclass") and len(node.args) == 2
                and isinstance(node.args[1], ast.BinOp) and isinstance(node.args[1].op, ast.BitOr)):
            found.append(f"{path.relative_to(REPO)}:{node.lineno}")
    return found


def test_the_device_side_evaluates_no_union_types_at_run_time():
    files = [f for root in DEVICE_SIDE for f in ([root] if root.is_file() else sorted(root.rglob("*.py")))]
    assert len(files) > 20
    found = [hit for f in files for hit in _runtime_unions(f)]
    assert found == [], f"use isinstance(x, (A, B)) for Python 3.9: {found}"


def test_every_device_module_postpones_its_annotations():
    files = [f for root in DEVICE_SIDE for f in ([root] if root.is_file() else sorted(root.rglob("*.py")))]
    missing = [str(f.relative_to(REPO)) for f in files
               if "def " in f.read_text(encoding="utf-8") and "from __future__ import annotations" not in f.read_text()]
    assert missing == [], f"`X | None` annotations need `from __future__ import annotations` on 3.9: {missing}"
