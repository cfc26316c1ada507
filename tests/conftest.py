"""Shared test fixtures: environment for tf_keras, and a runner for TensorFlow-free subprocesses."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

# TensorFlow's quiet console (log level, absl, warnings) is set where it is first imported:
# converters/tensorflow_env.py. This only guards a test that imports tensorflow directly.
os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")

TESTS_DIR = Path(__file__).resolve().parent
REPO_ROOT = TESTS_DIR.parent
BLOCKER_DIR = TESTS_DIR / "block_tensorflow"
#: The interpreter of the device-side child processes: ``EDGE_REC_DEVICE_PYTHON`` when set (`make
#: test` sets it to the oldest Python it can install, with the lean device extra), else this one.
DEVICE_PYTHON = os.environ.get("EDGE_REC_DEVICE_PYTHON") or sys.executable


def run_without_tensorflow(args: list[str], *, timeout: float = 120, python: str | None = None,
                           **kwargs) -> subprocess.CompletedProcess:
    """Run ``python ARGS`` in a child where importing tensorflow/tf_keras/tfmot raises
    ImportError; ``python`` is this interpreter unless ``python`` is given (the device tests pass
    :data:`DEVICE_PYTHON`)."""
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(BLOCKER_DIR), str(REPO_ROOT)])
    env.update(kwargs.pop("env", {}))
    return subprocess.run(
        [python or sys.executable, *args], capture_output=True, text=True, timeout=timeout, env=env, **kwargs
    )


@pytest.fixture
def no_tensorflow():
    """The :func:`run_without_tensorflow` runner, as a fixture."""
    return run_without_tensorflow
