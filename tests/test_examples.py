"""The two device examples run against a real bundle with TensorFlow blocked, as on a device."""

from __future__ import annotations

import json

from conftest import REPO_ROOT, run_without_tensorflow

from device_runtime.bundle import verify_bundle

pytest_plugins = ["conftest_bundle"]  # the tiny bundle fixtures

SPEAKER = str(REPO_ROOT / "examples" / "smart_speaker" / "speaker_app.py")
HOME_ROW = str(REPO_ROOT / "examples" / "tv" / "home_row.py")


def test_speaker_app_keeps_history_on_device_and_plays_next(tiny_bundle_dir, tmp_path):
    items = verify_bundle(tiny_bundle_dir).item_ids[2:]
    history_file = tmp_path / "plays.json"
    common = ["--bundle", str(tiny_bundle_dir), "--history-file", str(history_file)]
    first = run_without_tensorflow([SPEAKER, *common, "--play", items[0], "--play", items[1]])
    assert first.returncode == 0, first.stderr
    assert json.loads(history_file.read_text()) == [items[0], items[1]]
    auto = run_without_tensorflow([SPEAKER, *common, "--autoplay", "3"])
    assert auto.returncode == 0, auto.stderr
    plays = json.loads(history_file.read_text())
    assert len(plays) == 5 and len(set(plays)) == 5  # autoplay never repeats a played track
    forget = run_without_tensorflow([SPEAKER, *common, "--forget"])
    assert forget.returncode == 0 and json.loads(history_file.read_text()) == []


def test_tv_home_row_refreshes_through_the_http_api(tiny_bundle_dir):
    items = verify_bundle(tiny_bundle_dir).item_ids[2:]
    proc = run_without_tensorflow(
        [HOME_ROW, "--bundle", str(tiny_bundle_dir), "--watched", f"{items[0]},{items[1]}", "--row", "4",
         "--hide", items[2]],
        timeout=90,
    )
    assert proc.returncode == 0, proc.stderr
    assert "Popular on this TV" in proc.stdout  # first boot: no history yet
    assert "Watch next" in proc.stdout  # after watching
