"""load, recommend, inspect and serve in a child process where importing TensorFlow raises."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import textwrap
import urllib.request

from conftest import BLOCKER_DIR, DEVICE_PYTHON, REPO_ROOT, run_without_tensorflow

TF_MODULES = "('tensorflow', 'tf_keras', 'tensorflow_model_optimization', 'keras')"

pytest_plugins = ["conftest_bundle"]  # the tiny bundle fixtures


def test_load_and_recommend_without_tensorflow(tiny_bundle_dir):
    script = textwrap.dedent(f"""
        import json, sys
        from device_runtime.recommender import Recommender
        rec = Recommender.load({str(tiny_bundle_dir)!r})
        result = rec.recommend(["1003", 1005], k=3)
        loaded = [m for m in sys.modules if m.split(".")[0] in {TF_MODULES}]
        print(json.dumps({{"ids": result.item_ids, "tf": loaded}}))
    """)
    result = run_without_tensorflow(python=DEVICE_PYTHON, args=["-c", script])
    assert result.returncode == 0, result.stderr
    payload = json.loads(result.stdout)
    assert len(payload["ids"]) == 3 and payload["tf"] == []


def test_cli_inspect_and_recommend_without_tensorflow(tiny_bundle_dir):
    inspected = run_without_tensorflow(python=DEVICE_PYTHON, args=["-m", "edge_rec.cli", "inspect", str(tiny_bundle_dir), "--json"])
    assert inspected.returncode == 0, inspected.stderr
    report = json.loads(inspected.stdout)
    assert report["verified"] and report["items"] == 30 and "TOPK_V2" in report["model"]["ops"]
    recommended = run_without_tensorflow(python=DEVICE_PYTHON, args=["-m", "edge_rec.cli", "recommend", str(tiny_bundle_dir),
                                          "--history", "1003,1005,unknown", "-k", "4", "--json"])
    assert recommended.returncode == 0, recommended.stderr
    answer = json.loads(recommended.stdout)
    assert len(answer["items"]) == 4 and answer["unknown_ids"] == 1
    too_many = run_without_tensorflow(python=DEVICE_PYTHON, args=["-m", "edge_rec.cli", "recommend", str(tiny_bundle_dir),
                                       "--history", "1003", "-k", "31"])
    assert too_many.returncode == 1 and "k=31 is out of range" in too_many.stderr


def test_serve_without_tensorflow_and_stop_on_sigterm(tiny_bundle_dir):
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(BLOCKER_DIR), str(REPO_ROOT)]))
    child = subprocess.Popen(
        [DEVICE_PYTHON, "-m", "edge_rec.cli", "serve", str(tiny_bundle_dir), "--port", "0"],
        env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        # the event to await: the server's own "serving ... on http://HOST:PORT" line, which it
        # logs once it listens (and which names the port it picked)
        seen = []
        for line in child.stderr:
            seen.append(line)
            if " on http://" in line:
                break
        else:
            raise AssertionError(f"the server exited before listening: {''.join(seen)}")
        base = line.split(" on ", 1)[1].split()[0]
        with urllib.request.urlopen(f"{base}/health", timeout=5) as response:
            assert json.loads(response.read())["status"] == "ok"
        request = urllib.request.Request(f"{base}/recommend", method="POST",
                                         data=json.dumps({"history": ["1003"], "k": 5}).encode(),
                                         headers={"Content-Type": "application/json"})
        with urllib.request.urlopen(request, timeout=5) as response:
            assert len(json.loads(response.read())["items"]) == 5
        child.send_signal(signal.SIGTERM)
        _, stderr = child.communicate(timeout=15)
        assert child.returncode == 0, stderr
        assert "blocked" not in stderr
    finally:
        if child.poll() is None:
            child.kill()
            child.communicate()


def test_the_device_interpreter_is_the_one_make_test_chose():
    """`make test` runs these children on the oldest Python it could install (3.9 when present)."""
    printed = subprocess.run([DEVICE_PYTHON, "-c", "import sys; print('%d.%d' % sys.version_info[:2])"],
                             capture_output=True, text=True, timeout=60).stdout.strip()
    version = tuple(int(part) for part in printed.split("."))
    wanted = os.environ.get("EDGE_REC_DEVICE_PYTHON_VERSION")
    if wanted:
        assert printed == wanted
    assert version >= (3, 9)
