"""`edge-rec build` end to end on a tiny synthetic log: report schema, artifacts, bundle, gate."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from device_runtime import Recommender
from device_runtime.bundle import verify_bundle
from edge_rec.cli import main
from edge_rec.quality_gate import evaluate_gate
from tests.conftest import run_without_tensorflow
from tests.tiny_config import tiny_config

pytestmark = pytest.mark.slow  # a whole build: the slowest module of the suite

TINY = tiny_config(
    teacher={"members": 2},
    lowrank={"enabled": True, "rank": 4, "fit": {"epochs": 1, "batch_size": 32}},
    gate={"max_ndcg_drop": 0.5},
    reverse_popularity={"depth": 20},
)

REQUIRED_STAGES = (
    "popularity", "teacher", "student_baseline", "student", "pruned", "qat", "tflite_float32", "tflite_int8"
)


@pytest.fixture(scope="module")
def build_run(tmp_path_factory):
    """The tiny build, with a toy pass (:mod:`tests.toy_pass`) registered beside the built-in ones:
    no other edit makes it validated, budgeted, run and reported."""
    from edge_rec.passes import unregister
    from tests.toy_pass import register_toy_pass

    register_toy_pass()
    try:
        return _build(tmp_path_factory)
    finally:
        unregister("reverse_popularity")


def _build(tmp_path_factory):
    root = tmp_path_factory.mktemp("build")
    config = root / "tiny.toml"
    config.write_text(TINY)
    run_dir = root / "run"
    result = CliRunner().invoke(main, ["build", "--config", str(config), "--out", str(run_dir), "--quiet", "--json"])
    return result, run_dir


def test_build_exits_zero_and_prints_the_report(build_run):
    result, run_dir = build_run
    assert result.exit_code == 0, result.output
    printed = json.loads(result.stdout)
    assert printed == json.loads((run_dir / "report.json").read_text())


def test_report_has_the_documented_shape(build_run):
    _, run_dir = build_run
    report = json.loads((run_dir / "report.json").read_text())
    assert report["schema"] == 1
    assert {"users", "items", "interactions", "test_users"} <= set(report["dataset"])
    assert set(REQUIRED_STAGES) <= set(report["stages"])
    for name in REQUIRED_STAGES:
        stage = report["stages"][name]
        assert {"params", "size_bytes", "gzip_bytes", "sparsity", "metrics"} <= set(stage), name
        assert {"hr@10", "ndcg@10", "mrr", "coverage@10"} <= set(stage["metrics"]), name
        rates = ("hr@10", "ndcg@10", "mrr", "coverage@10", "diversity@10")
        assert all(0.0 <= stage["metrics"][key] <= 1.0 for key in rates), name
        assert stage["metrics"]["popularity_rank@10"] >= 5.5, name  # 5.5 = the top-10 themselves
    assert report["stages"]["popularity"]["metrics"]["popularity_rank@10"] < 30
    pairs = {(c["numerator"], c["denominator"]): c for c in report["comparisons"]}
    shipped = report["shipped_student"]["stage"]
    assert shipped in ("student", "student_baseline") and report["gate"]["reference"] == shipped
    assert ("teacher", "student_baseline") in pairs and ("tflite_int8", shipped) in pairs
    for c in pairs.values():
        assert c["low"] <= c["ratio"] <= c["high"] and c["users"] == report["dataset"]["test_users"]
    # two teachers from their own seeds, averaged
    members = report["stages"]["teacher"]["members"]
    assert [m["seed"] for m in members] == [3, 1003] and all(m["epochs_run"] == 1 for m in members)
    assert 0.0 < report["stages"]["teacher"]["averaged_val_ndcg@10"] <= 1.0
    assert "Teacher: 2 teachers trained" in (run_dir / "report.md").read_text()
    assert any(m["averaged"] for m in members)
    for name in REQUIRED_STAGES[1:]:  # every converted model stage has a TFLite size, gzip smaller than raw
        assert 0 < report["stages"][name]["gzip_bytes"] < report["stages"][name]["size_bytes"]
    assert report["stages"]["pruned"]["sparsity"] == pytest.approx(0.5, abs=0.02)
    choice = report["stages"]["pruned"]["sparsity_choice"]  # one level: kept whatever it cost
    assert choice["chosen_sparsity"] == 0.5 and len(choice["levels_tried"]) == 1
    assert "Pruning kept sparsity 0.50" in (run_dir / "report.md").read_text()
    # the low-rank stage factorizes the output layer: fewer parameters, a smaller file
    assert report["stages"]["lowrank"]["params"] < report["stages"]["student"]["params"]
    assert report["stages"]["lowrank"]["size_bytes"] < report["stages"]["student"]["size_bytes"]
    assert report["stages"]["lowrank"]["rank"] == 4
    assert report["parity"]["top10_overlap"] >= 0.6  # the build enforced parity_threshold = 0.6
    # the gate compares the int8 bundle with the shipped float student (max drop 0.5 here)
    shipped_ndcg = report["stages"][shipped]["metrics"]["ndcg@10"]
    drop = (shipped_ndcg - report["stages"]["tflite_int8"]["metrics"]["ndcg@10"]) / shipped_ndcg
    assert report["gate"]["passed"] is (drop <= 0.5)
    assert Path(report["bundle"]["path"]) == run_dir / "bundle"
    assert (run_dir / "report.md").read_text().startswith("# edge-rec build report")


def test_chart_is_drawn_when_matplotlib_is_installed(build_run):
    pytest.importorskip("matplotlib", reason="chart.png needs the plot extra (matplotlib)")
    _, run_dir = build_run
    assert (run_dir / "chart.png").stat().st_size > 1000


def test_tflite_stages_are_measured_by_running_them(build_run):
    _, run_dir = build_run
    report = json.loads((run_dir / "report.json").read_text())
    float32 = report["stages"]["tflite_float32"]
    assert float32["size_bytes"] == report["stages"]["student"]["size_bytes"]
    assert float32["size_bytes"] == (run_dir / "tflite" / "float32.tflite").stat().st_size
    # int8 is smaller than float32 and was evaluated on its own (its numbers are its own)
    int8 = report["stages"]["tflite_int8"]
    assert int8["size_bytes"] < float32["size_bytes"]
    # ... by the rule the bundle serves by: `edge-rec benchmark --eval-data` on the bundle (through
    # Recommender.recommend, popularity fill included) measures the same numbers
    proc = run_without_tensorflow(["-m", "edge_rec.cli", "benchmark", str(run_dir / "bundle"), "--eval-data",
                                   str(run_dir / "data" / "interactions.csv"), "--runs", "5", "--warmup", "1",
                                   "--json", "--quiet"], timeout=300)
    assert proc.returncode == 0, proc.stderr
    measured = json.loads(proc.stdout)["targets"][0]["metrics"]
    for key in ("hr@10", "ndcg@10", "mrr", "coverage@10"):
        assert round(measured[key], 4) == round(int8["metrics"][key], 4), key
    assert verify_bundle(run_dir / "bundle").manifest.metrics == int8["metrics"]


def test_run_directory_records_config_versions_and_models(build_run):
    _, run_dir = build_run
    run = json.loads((run_dir / "run.json").read_text())
    assert run["status"] == "ok" and run["seed"] == 3
    assert run["versions"]["tensorflow"]
    assert {"teacher", "student", "pruned", "qat", "bundle"} <= set(run["timings_s"])
    assert json.loads((run_dir / "config.json").read_text())["data"]["history_length"] == 12
    for stage in ("teacher", "student_baseline", "student", "pruned", "qat"):
        assert any((run_dir / "models" / stage).glob("model.*")), stage
    assert (run_dir / "data" / "interactions.csv").is_file()


def test_bundle_verifies_and_serves(build_run):
    _, run_dir = build_run
    bundle = verify_bundle(run_dir / "bundle")
    assert bundle.manifest.history_length == 12
    rec = Recommender.load(run_dir / "bundle")
    history = list(bundle.item_ids[:3])
    result = rec.recommend(history, k=5)
    assert len(result) == 5 and not set(history) & {r.item_id for r in result}


def test_convert_cli_turns_a_saved_student_into_a_float32_bundle(build_run, tmp_path):
    _, run_dir = build_run
    out = tmp_path / "bundle32"
    result = CliRunner().invoke(
        main,
        ["convert", str(run_dir / "models" / "student"), "--out", str(out), "--quantize", "float32",
         "--top-k", "500", "--data", str(run_dir / "data" / "interactions.csv"),
         "--parity-threshold", "0.99", "--json"],
    )
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout)
    assert summary["parity"]["top10_overlap"] >= 0.99
    assert verify_bundle(out).manifest.model.quantization["variant"] == "float32"
    assert summary["top_k"] == verify_bundle(out).manifest.catalog_size - 2  # capped at the catalog


def test_convert_cli_reports_a_missing_model_cleanly(tmp_path):
    result = CliRunner().invoke(main, ["convert", str(tmp_path / "nope"), "--out", str(tmp_path / "b"),
                                       "--data", "synthetic-tv"])
    assert result.exit_code != 0
    assert "no such model" in result.output and "Traceback" not in result.output
    assert not (tmp_path / "b").exists()


def test_build_exits_3_when_the_gate_fails_after_writing_the_report(build_run, monkeypatch):
    import dataclasses

    from edge_rec import pipeline
    from edge_rec.commands.build import GATE_FAILED_EXIT

    _, run_dir = build_run
    from edge_rec.report import BuildReport

    report = BuildReport.load(run_dir)
    failed = evaluate_gate({"student": 0.5, "tflite_int8": 0.1}, {}, report.gate["max_ndcg_drop"] / 100)
    result = pipeline.BuildResult(run_dir, run_dir / "bundle", report, {"json": run_dir / "report.json"}, failed)
    monkeypatch.setattr(pipeline, "run_build", lambda *a, **k: dataclasses.replace(result))
    out = CliRunner().invoke(main, ["build", "--out", str(run_dir), "--overwrite"])
    assert out.exit_code == GATE_FAILED_EXIT == 3
    assert "quality gate FAILED" in out.output and "bundle:" in out.output


def test_a_registered_toy_pass_is_validated_budgeted_run_and_reported(build_run, tmp_path):
    from edge_rec.config import ConfigError, load_config
    from edge_rec.passes import unregister
    from edge_rec.pipeline import time_budget_for, workflow
    from tests.toy_pass import register_toy_pass

    _, run_dir = build_run
    report = json.loads((run_dir / "report.json").read_text())
    row = report["stages"]["reverse_popularity"]  # run, recorded after the teacher, before the bundle
    stages = list(report["stages"])
    assert stages.index("teacher") < stages.index("reverse_popularity") < stages.index("student_baseline")
    assert row["depth"] == 20 and 0.0 <= row["metrics"]["ndcg@10"] <= 1.0
    assert "| reverse_popularity | the least popular items first: a toy pass |" in (run_dir / "report.md").read_text()
    assert report["config"]["reverse_popularity"] == {"depth": 20, "enabled": True}
    register_toy_pass()
    try:
        bad = tmp_path / "bad.toml"
        bad.write_text("[reverse_popularity]\ndepth = 0\n")
        with pytest.raises(ConfigError, match=r"bad.toml: reverse_popularity.depth: expected an integer >= 1"):
            load_config(bad)
        cfg = load_config(None)
        budget = time_budget_for(cfg, workflow(cfg))
        assert budget.shares["reverse_popularity"] == 0.01
        off = tmp_path / "off.toml"
        off.write_text("[reverse_popularity]\nenabled = false\n")
        assert "reverse_popularity" not in [step.name for step in workflow(load_config(off))]
    finally:
        unregister("reverse_popularity")


def test_the_report_reads_back_through_its_typed_reader_unchanged(build_run, tmp_path):
    from edge_rec.report import BuildReport, ReportError

    _, run_dir = build_run
    written = json.loads((run_dir / "report.json").read_text())
    report = BuildReport.load(run_dir)
    assert report.to_dict() == written  # one writer, one reader: a round trip changes nothing
    assert report.stages["teacher"].ndcg == written["stages"]["teacher"]["metrics"]["ndcg@10"]
    assert report.shipped_student == written["shipped_student"]["stage"]
    assert report.comparison("teacher", "student_baseline")["ratio"] > 0
    bad = tmp_path / "report.json"
    bad.write_text(json.dumps({**written, "schema": 99}))
    with pytest.raises(ReportError, match="report schema 99"):
        BuildReport.load(bad)
