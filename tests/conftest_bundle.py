"""Session-scoped tiny bundles for the device-runtime tests (import the fixtures you use).

Usage in a test module::

    from conftest_bundle import tiny_bundle_dir  # noqa: F401  (pytest fixture)
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from tiny_bundle import build_tiny_bundle

from device_runtime.bundle import MANIFEST_FILE, manifest_digest


@pytest.fixture(scope="session")
def tiny_bundle_dir(tmp_path_factory) -> Path:
    """A real bundle (seed 0) built once per test session; do not modify it (copy it first)."""
    return build_tiny_bundle(tmp_path_factory.mktemp("tiny_bundle") / "bundle", seed=0)


@pytest.fixture(scope="session")
def other_bundle_dir(tmp_path_factory) -> Path:
    """A second real bundle with the same catalog but other weights (seed 1), for reload tests."""
    return build_tiny_bundle(tmp_path_factory.mktemp("other_bundle") / "bundle", seed=1)


@pytest.fixture
def bundle_copy(tiny_bundle_dir, tmp_path) -> Path:
    """A private copy of the tiny bundle that a test may tamper with."""
    return Path(shutil.copytree(tiny_bundle_dir, tmp_path / "bundle"))


def rewrite_manifest(bundle_dir: Path, change, *, resign: bool = True) -> None:
    """Apply ``change(manifest_dict)`` to a bundle's manifest; re-sign its digest when ``resign``."""
    path = bundle_dir / MANIFEST_FILE
    manifest = json.loads(path.read_text())
    change(manifest)
    if resign:
        manifest["manifest_sha256"] = manifest_digest(manifest)
    path.write_text(json.dumps(manifest, indent=2))
