"""Item features through a build, and catalog patches: new items from their features, retired
items gone, the base bundle's rankings kept, lineage recorded, bad input refused before work."""

from __future__ import annotations

import csv
import json
from collections import Counter

import numpy as np
import pytest
from click.testing import CliRunner

from device_runtime.recommender import Recommender
from edge_rec.cli import main
from edge_rec.data import generate_synthetic
from edge_rec.data.synthetic import synthetic_item_features
from tests.tiny_config import TINY, tiny_config

pytestmark = pytest.mark.slow  # one tiny build with features, several patches

USERS, ITEMS = 160, 120
CONFIG = tiny_config(
    data={"synthetic_users": USERS, "synthetic_items": ITEMS, "history_length": 12, "min_item_interactions": 10},
    student={"embedding_dim": 8, "hidden": [8], "tie_output": True, "fit": {"epochs": 2, "batch_size": 32}},
    teacher={"members": 1},
    # without QAT the bundle is calibrated on real histories (a few QAT steps leave the int8 output
    # range at its initial value, so every score of a tiny model saturates and ties)
    qat={"enabled": False},
)
NEW_ITEMS = (
    "item_id,genres,title\n"
    'new-1,comedy,"Series 90 (comedy) E1"\n'
    'new-2,drama,"Series 91 (drama) E1"\n'
    'new-3,comedy,"Series 92 (comedy) E1"\n'
)


def _invoke(*args: str):
    return CliRunner().invoke(main, list(args))


@pytest.fixture(scope="module")
def build(tmp_path_factory):
    root = tmp_path_factory.mktemp("features")
    (root / "tiny.toml").write_text(CONFIG)
    log = generate_synthetic("synthetic-tv", seed=TINY["seed"], users=USERS, items=ITEMS)
    (root / "features.csv").write_text(synthetic_item_features(log))
    (root / "new.csv").write_text(NEW_ITEMS)
    result = _invoke("build", "--config", str(root / "tiny.toml"), "--item-features", str(root / "features.csv"),
                     "--out", str(root / "run"), "--quiet", "--json")
    assert result.exit_code in (0, 3), result.output
    return root


def _histories(run_dir, count=120):
    users: dict[str, list[str]] = {}
    with open(run_dir / "data" / "interactions.csv", encoding="utf-8") as handle:
        for row in csv.DictReader(handle):
            users.setdefault(row["user_id"], []).append(row["item_id"])
    return [items[-12:] for items in list(users.values())[:count]]


def test_a_build_with_features_saves_what_a_patch_needs(build):
    run = build / "run"
    spec = json.loads((run / "item_features.json").read_text())
    assert {c["name"]: c["kind"] for c in spec["columns"]} == {"genres": "categorical", "title": "text"}
    shipped = json.loads((run / "report.json").read_text())["shipped_student"]["stage"]
    with np.load(run / "models" / shipped / "item_encoder.npz") as saved:
        assert saved["token_embeddings"].shape == (spec["buckets"], 8)
    config = json.loads((run / "config.json").read_text())
    assert config["data"]["item_features"].endswith("features.csv") and config["student"]["tie_output"] is True
    # the items the minimum-count filters dropped stay in the catalog, by their features
    with open(run / "data" / "interactions.csv", encoding="utf-8") as handle:
        counts = Counter(row["item_id"] for row in csv.DictReader(handle))
    assert min(counts.values()) < 10  # the filter (10 interactions) drops some items
    assert set(Recommender.load(run / "bundle").bundle.item_ids[2:]) == set(counts)


def test_a_patch_adds_items_keeps_the_base_rankings_and_records_lineage(build):
    run, out = build / "run", build / "patched"
    result = _invoke("catalog", "patch", str(run), "--add", str(build / "new.csv"), "--out", str(out), "--json")
    assert result.exit_code == 0, result.output
    summary = json.loads(result.output.strip()[result.output.index("{"):])
    assert summary["items_added"] == 3 and summary["catalog_after"] == summary["catalog_before"] + 3
    base, patched = Recommender.load(run / "bundle"), Recommender.load(out)
    manifest = json.loads((out / "manifest.json").read_text())
    lineage = manifest["build"]["catalog_patch"]
    assert lineage["base_manifest_sha256"] == json.loads((run / "bundle" / "manifest.json").read_text())[
        "manifest_sha256"]
    assert lineage["items_added"] == 3 and lineage["items_retired"] == 0
    assert {"new-1", "new-2", "new-3"} <= set(patched.bundle.item_ids)
    titles = dict(zip(patched.bundle.item_ids, patched.bundle.titles, strict=True))
    assert titles["new-2"] == "Series 91 (drama) E1"
    new = {"new-1", "new-2", "new-3"}
    for history in _histories(run):
        before = [r.item_id for r in base.recommend(history, k=10)]
        after = [r.item_id for r in patched.recommend(history, k=10) if r.item_id not in new]
        assert after == before[: len(after)], history
    # with the top bias, new items are scored into the lists (top 30 of 123) from their features,
    # the rest kept in order
    bold = build / "bold"
    result = _invoke("catalog", "patch", str(run), "--add", str(build / "new.csv"), "--bias-quantile", "1",
                     "--out", str(bold))
    assert result.exit_code == 0, result.output
    bold_rec = Recommender.load(bold)
    entered = 0
    for history in _histories(run):
        before = [r.item_id for r in base.recommend(history, k=10)]
        listed = [r.item_id for r in bold_rec.recommend(history, k=30)]
        entered += len(set(listed) & new)
        after = [i for i in listed[:10] if i not in new]
        assert after == before[: len(after)], history
    assert entered > 0


def test_retired_items_are_never_recommended_and_unknown_in_histories(build, tmp_path):
    run = build / "run"
    base = Recommender.load(run / "bundle")
    popular = [r.item_id for r in base.recommend([], k=5)]
    (tmp_path / "retire.txt").write_text("# gone this week\n" + "\n".join(popular[:3]) + "\n")
    out = tmp_path / "retired"
    result = _invoke("catalog", "patch", str(run), "--retire", str(tmp_path / "retire.txt"), "--out", str(out))
    assert result.exit_code == 0, result.output
    patched = Recommender.load(out)
    assert not set(popular[:3]) & set(patched.bundle.item_ids)
    for history in _histories(run, 60):
        assert not set(popular[:3]) & {r.item_id for r in patched.recommend(history, k=20)}
    # a history of retired items only is unknown: the popularity fallback, minus the retired
    cold = [r.item_id for r in patched.recommend(popular[:3], k=2)]
    assert cold == popular[3:5]
    assert json.loads((out / "manifest.json").read_text())["build"]["catalog_patch"]["items_retired"] == 3


@pytest.mark.parametrize("new_items, retire, message", [
    ("item_id,genres,title\n5,comedy,Again\n", None, "already in the catalog (first: '5')"),
    ("item_id,title\nn9,Only a title\n", None, "expected the column 'genres'"),
    (None, "no-such-item\n", "not in the catalog (first: 'no-such-item')"),
    (None, "5\n5\n", "retire.txt:2: item '5' is listed again"),
])
def test_bad_patch_input_is_refused_before_anything_is_written(build, tmp_path, new_items, retire, message):
    args = ["catalog", "patch", str(build / "run"), "--out", str(tmp_path / "out")]
    if new_items is not None:
        (tmp_path / "add.csv").write_text(new_items)
        args += ["--add", str(tmp_path / "add.csv")]
    if retire is not None:
        (tmp_path / "retire.txt").write_text(retire)
        args += ["--retire", str(tmp_path / "retire.txt")]
    result = _invoke(*args)
    assert result.exit_code == 1 and message in result.output, result.output
    assert "Traceback" not in result.output and not (tmp_path / "out").exists()


def test_a_run_without_features_cannot_take_new_items(tmp_path, build):
    run = tmp_path / "plain"
    run.mkdir()
    (run / "config.json").write_text((build / "run" / "config.json").read_text())
    result = _invoke("catalog", "patch", str(run), "--add", str(build / "new.csv"), "--out", str(tmp_path / "o"))
    assert result.exit_code == 1 and "built without item features" in result.output and "--item-features" in (
        result.output)


def test_features_with_an_untied_student_are_refused_before_training(tmp_path, build):
    (tmp_path / "untied.toml").write_text(tiny_config(student={"embedding_dim": 8, "hidden": [6]}))
    result = _invoke("build", "--config", str(tmp_path / "untied.toml"), "--item-features",
                     str(build / "features.csv"), "--out", str(tmp_path / "run"), "--quiet")
    assert result.exit_code == 1, result.output
    assert "student.tie_output = true with student.hidden = [8]" in result.output
    assert not (tmp_path / "run" / "models").exists()


def test_a_qat_student_failing_parity_falls_back_to_post_training_int8(build, tmp_path):
    # a tiny QAT run leaves its int8 output range at its initial value: parity ~0.6 < 0.8
    strict = tiny_config(data={"synthetic_users": USERS, "synthetic_items": ITEMS, "history_length": 12},
                         student={"embedding_dim": 8, "hidden": [8], "tie_output": True},
                         teacher={"members": 1},
                         convert={**TINY["convert"], "parity_threshold": 0.8})
    (tmp_path / "strict.toml").write_text(strict)
    run = tmp_path / "run"
    result = _invoke("build", "--config", str(tmp_path / "strict.toml"), "--item-features",
                     str(build / "features.csv"), "--out", str(run), "--quiet", "--json")
    assert result.exit_code in (0, 3), result.output
    report = json.loads((run / "report.json").read_text())
    assert report["int8_fallback"]["from"] == "pruned" and "agrees with the Keras model" in (
        report["int8_fallback"]["reason"])
    assert report["parity"]["top10_overlap"] >= 0.8
    manifest = json.loads((run / "bundle" / "manifest.json").read_text())
    assert manifest["model"]["quantization"]["scheme"] == "post-training"
    assert "the bundle is the `pruned` student quantized after training" in (run / "report.md").read_text()
    # a patch follows the bundle: it starts from the pruned student, and passes parity
    patched = _invoke("catalog", "patch", str(run), "--add", str(build / "new.csv"), "--out", str(tmp_path / "p"),
                      "--json")
    assert patched.exit_code == 0, patched.output
    assert json.loads((tmp_path / "p" / "manifest.json").read_text())["build"]["catalog_patch"]["model"] == (
        "models/pruned")


def test_a_patch_against_another_log_is_refused(build, tmp_path):
    # the run's own log is read from its report; another log gives another catalog: refused
    other = tmp_path / "other.csv"  # 20 users on 10 items: item '5' exists, the catalog is smaller
    other.write_text("user_id,item_id,timestamp\n" + "".join(
        f"u{u},{(u + k) % 10 + 1},{100 * u + k}\n" for u in range(20) for k in range(6)))
    result = _invoke("catalog", "patch", str(build / "run"), "--retire", str(_retire_one(tmp_path)),
                     "--data", str(other), "--data-format", "csv", "--out", str(tmp_path / "out"))
    assert result.exit_code == 1 and "pass --data with the log the build trained on" in result.output, result.output
    assert not (tmp_path / "out").exists()


def _retire_one(tmp_path):
    (tmp_path / "retire.txt").write_text("5\n")
    return tmp_path / "retire.txt"
