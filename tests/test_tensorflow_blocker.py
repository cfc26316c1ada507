"""The TensorFlow blocker used by the device tests really blocks TensorFlow."""

from conftest import run_without_tensorflow


def test_importing_tensorflow_raises_in_blocked_child():
    proc = run_without_tensorflow(["-c", "import tensorflow"])
    assert proc.returncode != 0
    assert "blocked" in proc.stderr


def test_numpy_still_imports_in_blocked_child():
    proc = run_without_tensorflow(["-c", "import numpy; print('ok')"])
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "ok"
