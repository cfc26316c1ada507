"""The run directory records how a build ended, including interrupted builds (Ctrl-C, SIGTERM)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap

import pytest
from conftest import REPO_ROOT

from edge_rec.run_directory import RunDirectory


def _status(path):
    return json.loads((path / "run.json").read_text())


@pytest.mark.parametrize("error, expected", [(KeyboardInterrupt(), "interrupted"),
                                             (ValueError("bad"), "failed")])
def test_failed_while_handling_an_interrupt_is_recorded_as_interrupted(tmp_path, error, expected):
    run = RunDirectory(tmp_path / "run", seed=0, config={})
    assert _status(tmp_path / "run")["status"] == "running"
    try:
        raise error
    except BaseException as exc:
        run.finish("failed", error=f"{type(exc).__name__}: {exc}")
    assert _status(tmp_path / "run")["status"] == expected
    run.finish("failed")  # outside an except block: as given
    assert _status(tmp_path / "run")["status"] == "failed"


CHILD = textwrap.dedent("""
    import os, signal, sys, time
    from edge_rec.run_directory import RunDirectory, terminate_as_interrupt
    run = RunDirectory(sys.argv[1], seed=0, config={})
    previous = signal.getsignal(signal.SIGTERM)
    try:
        with terminate_as_interrupt():
            print("ready", flush=True)
            time.sleep(60)
    except BaseException as exc:
        run.finish("failed", error=f"{type(exc).__name__}: {exc}")
        assert signal.getsignal(signal.SIGTERM) is previous
        sys.exit(143)
""")


def test_sigterm_during_a_build_is_recorded_as_interrupted(tmp_path):
    env = dict(os.environ, PYTHONPATH=str(REPO_ROOT))
    child = subprocess.Popen([sys.executable, "-c", CHILD, str(tmp_path / "run")], env=env,
                             stdout=subprocess.PIPE, text=True)
    try:
        assert child.stdout.readline().strip() == "ready"
        child.send_signal(signal.SIGTERM)
        assert child.wait(timeout=30) == 143
    finally:
        if child.poll() is None:
            child.kill()
            child.wait()
    status = _status(tmp_path / "run")
    assert status["status"] == "interrupted"
    assert status["error"] == "BuildInterrupted: received SIGTERM"
