"""Session-scoped tiny bundles for the device-runtime tests, loaded as a pytest plugin.

Usage in a test module::

    pytest_plugins = ["conftest_bundle"]
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from tiny_bundle import build_tiny_bundle


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

