"""``edge-rec train-teacher`` and ``edge-rec distill`` end to end on a tiny synthetic log."""

from __future__ import annotations

import json

import numpy as np
import pytest
from click.testing import CliRunner

from edge_rec.cli import main
from tests.tiny_config import tiny_config

pytestmark = pytest.mark.slow  # trains a teacher and two students

TINY = tiny_config(
    data={"synthetic_users": 150, "synthetic_items": 80, "history_length": 8},
    student={"embedding_dim": 4, "dropout": 0.1, "alone_dropout": 0.4, "fit": {"epochs": 2}},
    distill={"ce_weight": 0.5, "kd_weight": 0.5, "hint_weight": 0.1, "rank_weight": 0.1},
)


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    root = tmp_path_factory.mktemp("cli")
    config = root / "tiny.toml"
    config.write_text(TINY)
    runner = CliRunner()
    teacher = runner.invoke(
        main, ["train-teacher", "--config", str(config), "--data", "synthetic-tv",
               "--out", str(root / "teacher"), "--quiet", "--json"],
    )
    assert teacher.exit_code == 0, teacher.output
    return root, config, json.loads(teacher.output.strip().splitlines()[-1])


def test_train_teacher_writes_model_config_and_metrics(trained):
    root, _, printed = trained
    out = root / "teacher"
    assert {p.name for p in out.iterdir()} == {"model.keras", "sequence_model.keras", "config.json", "metrics.json"}
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["stage"] == "teacher" and metrics["epochs_run"] == 1
    assert len(metrics["history"]["loss"]) == 1 and len(metrics["history"]["val_ndcg@10"]) == 1
    assert metrics["params"] > 0
    assert printed["test"] == metrics["test"]
    # a tiny log gets the averaged teacher of the sizing rule: two members, their seeds recorded
    assert [m["seed"] for m in metrics["members"]] == [3, 1003]
    assert 0.0 <= metrics["averaged_val_ndcg@10"] <= 1.0
    assert json.loads((out / "config.json").read_text())["teacher"]["hidden"] == 16
    # the recorded test metrics are those of the saved serving model on the same split
    from edge_rec import stages
    from edge_rec.config import load_config
    from edge_rec.keras_shim import keras
    from edge_rec.models import CUSTOM_OBJECTS

    cfg = load_config(root / "tiny.toml")
    data = stages.prepare_data(cfg.data, seed=cfg.seed, path="synthetic-tv")
    serving = keras.models.load_model(out / "model.keras", custom_objects=CUSTOM_OBJECTS)
    recomputed = stages.evaluate_keras(serving, data)
    assert recomputed["ndcg@10"] == pytest.approx(metrics["test"]["ndcg@10"], abs=1e-6)
    assert recomputed["users"] == metrics["test"]["users"] > 100


def test_distill_and_no_teacher_share_the_code_path(trained):
    root, config, _ = trained
    runner = CliRunner()
    distilled = runner.invoke(
        main, ["distill", "--config", str(config), "--teacher", str(root / "teacher"),
               "--out", str(root / "student"), "--temperature", "3", "--quiet"],
    )
    assert distilled.exit_code == 0, distilled.output
    baseline = runner.invoke(
        main, ["distill", "--config", str(config), "--no-teacher", "--out", str(root / "baseline"), "--quiet"],
    )
    assert baseline.exit_code == 0, baseline.output
    student = json.loads((root / "student" / "metrics.json").read_text())
    alone = json.loads((root / "baseline" / "metrics.json").read_text())
    assert set(student["history"]) >= {"loss", "ce", "kd", "hint", "rank", "val_ndcg@10"}
    assert np.isfinite(student["history"]["kd"]).all() and len(student["history"]["kd"]) == 2
    assert "kd" not in alone["history"] and alone["stage"] == "student_baseline"
    used = json.loads((root / "student" / "config.json").read_text())["distill"]
    assert used["temperature"] == 3.0 and used["ce_weight"] == 0.5
    assert json.loads((root / "baseline" / "config.json").read_text())["distill"]["ce_weight"] == 1.0
    assert student["params"] == alone["params"] < student["teacher_params"]
    # the student trained alone has its own dropout (no soft labels regularise it)
    from edge_rec.keras_shim import keras

    def dropout_rates(run: str) -> list[float]:
        model = keras.models.load_model(root / run / "sequence_model.keras", compile=False)
        return [layer.rate for layer in model.layers if isinstance(layer, keras.layers.Dropout)]

    assert dropout_rates("student") == [0.1] and dropout_rates("baseline") == [0.4]


def test_saved_student_reloads_with_the_same_scores(trained):
    root, _, _ = trained
    from edge_rec.distill.training import score_model
    from edge_rec.keras_shim import keras
    from edge_rec.models import CUSTOM_OBJECTS

    path = root / "student" / "model.keras"
    if not path.exists():
        pytest.skip("runs after test_distill_and_no_teacher_share_the_code_path")
    serving = keras.models.load_model(path, custom_objects=CUSTOM_OBJECTS)
    sequence = keras.models.load_model(root / "student" / "sequence_model.keras")
    histories = np.random.default_rng(0).integers(0, serving.outputs[0].shape[-1], size=(7, 8)).astype(np.int32)
    np.testing.assert_allclose(score_model(serving, histories), score_model(sequence, histories), atol=1e-5)
    assert all("projection" not in layer.name for layer in serving.layers)


def test_bad_input_is_reported_clearly(tmp_path, trained):
    root, config, _ = trained
    runner = CliRunner()
    both = runner.invoke(main, ["distill", "--config", str(config), "--out", str(tmp_path / "x")])
    assert both.exit_code != 0 and "--no-teacher" in both.output
    missing = runner.invoke(
        main, ["train-teacher", "--config", str(config), "--data", str(tmp_path / "nope.csv"), "--out", str(tmp_path / "y")]
    )
    assert missing.exit_code != 0 and "no such file" in missing.output
    bad = runner.invoke(main, ["distill", "--config", str(config), "--teacher", str(root / "teacher"), "--kd-weight", "-2",
                               "--out", str(tmp_path / "z")])
    assert bad.exit_code != 0 and "distill.kd_weight: expected a number >= 0" in bad.output
    # a teacher that learned second-to-last items this run would validate on is refused
    other = root / "other_share.toml"
    other.write_text(TINY.replace("history_length = 8", "history_length = 8\nvalidation_share = 0.5"))
    share = runner.invoke(main, ["distill", "--config", str(other), "--teacher", str(root / "teacher"),
                                 "--out", str(tmp_path / "w")])
    assert share.exit_code == 1 and "data.validation_share = 0.2" in share.output and "0.5" in share.output
    assert not (tmp_path / "w").exists()
