"""The pure parts of `make arm64-check` (the emulated run itself is a release check, not a test)."""

from __future__ import annotations

import subprocess
import sys

from conftest import REPO_ROOT

sys.path.insert(0, str(REPO_ROOT / "benchmarks"))
import arm64_check  # noqa: E402

pytest_plugins = ["conftest_bundle"]


def test_compare_reports_any_id_or_score_difference():
    same = [[["a", 1.0], ["b", 0.5]]]
    assert arm64_check.compare(same, same, [["x"]]) == []
    assert [d["history"] for d in arm64_check.compare(same * 2, [same[0], [["a", 1.0], ["b", 0.25]]],
                                                      [["x"], ["y", "z"]])] == [1]
    assert arm64_check.compare(same, [[["b", 1.0], ["a", 0.5]]], [["x"]])[0]["length"] == 1


def test_fixed_histories_are_seeded_and_drawn_from_the_bundle(tiny_bundle_dir):
    first = arm64_check.fixed_histories(tiny_bundle_dir)
    assert first == arm64_check.fixed_histories(tiny_bundle_dir) and len(first) == 20
    assert all(1 <= len(h) <= 10 and all(i.startswith("10") for i in h) for h in first)


def test_qemu_cpu_max_is_refused():
    done = subprocess.run([sys.executable, str(REPO_ROOT / "benchmarks" / "arm64_check.py"), "--cpu", "max"],
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 2 and "cortex-a53" in done.stderr


def test_the_child_ranks_before_and_after_the_same_feedback(tiny_bundle_dir):
    histories = arm64_check.fixed_histories(tiny_bundle_dir)
    first = arm64_check.run_child([sys.executable], {"PYTHONPATH": str(REPO_ROOT)}, tiny_bundle_dir, histories, 120)
    again = arm64_check.run_child([sys.executable], {"PYTHONPATH": str(REPO_ROOT)}, tiny_bundle_dir, histories, 120)
    assert len(first["top"]) == len(first["personal"]) == 20
    assert first["personal"] != first["top"]  # the feedback changed some lists
    assert arm64_check.compare(first["personal"], again["personal"], histories) == []  # deterministic
