"""Quiet by default: the interpreter's native INFO line stays off stdout/stderr unless asked for."""

from __future__ import annotations

import logging
import os
import subprocess
import sys

from conftest import REPO_ROOT

from device_runtime.native_stderr import native_stderr_to_logging

pytest_plugins = ["conftest_bundle"]

CHILD = r"""
import logging, sys
if sys.argv[2] == "debug":
    logging.basicConfig(level=logging.DEBUG)
from device_runtime import Recommender
rec = Recommender.load(sys.argv[1])
rec.reload(sys.argv[1])
print(rec.recommend(["1001", "1002"], k=3).item_ids)
"""


def run_child(bundle, level: str) -> subprocess.CompletedProcess:
    env = dict(os.environ, PYTHONPATH=str(REPO_ROOT))
    return subprocess.run([sys.executable, "-c", CHILD, str(bundle), level], capture_output=True,
                          text=True, timeout=120, env=env)


def test_loading_prints_no_interpreter_info_line_by_default(tiny_bundle_dir):
    done = run_child(tiny_bundle_dir, "default")
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("['")
    assert "XNNPACK" not in done.stdout + done.stderr and "INFO" not in done.stderr, done.stderr


def test_a_debug_logging_level_lets_the_native_line_through(tiny_bundle_dir):
    done = run_child(tiny_bundle_dir, "debug")
    assert done.returncode == 0, done.stderr
    assert "Created TensorFlow Lite XNNPACK delegate" in done.stderr


def test_captured_native_lines_are_logged_info_at_debug_and_the_rest_as_warnings(caplog):
    logger = logging.getLogger("device_runtime.test_native")
    caplog.set_level(logging.INFO, logger=logger.name)
    with native_stderr_to_logging(logger.name):
        os.write(2, b"INFO: chatter\nERROR: something real\n")
    assert [(r.levelno, r.getMessage()) for r in caplog.records] == [(logging.WARNING, "ERROR: something real")]
    os.write(2, b"")  # fd 2 is usable again


def test_the_runtime_does_not_import_logging_to_stay_quiet(tiny_bundle_dir):
    code = ("import sys\nfrom device_runtime import Recommender\n"
            f"Recommender.load({str(tiny_bundle_dir)!r}).recommend(['1001'], k=3)\n"
            "print('logging' in sys.modules)\n")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120,
                          env=dict(os.environ, PYTHONPATH=str(REPO_ROOT)))
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "False" and "XNNPACK" not in done.stderr
