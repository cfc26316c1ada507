"""The command line behaves the same everywhere: shared options, fixed choices, clean stdout.

The end-to-end part trains a tiny student (one epoch), converts it with ``edge-rec convert`` (the
shared export workflow), and checks that the manifest's metrics equal what ``edge-rec benchmark
--eval-data`` measures on the bundle, that titles from ``--items`` reach items.tsv, and that
``--json`` output parses although progress bars and logs were on (they go to stderr).
"""

from __future__ import annotations

import csv
import json
import os
import subprocess
import sys

import pytest
from click.testing import CliRunner

from converters.tensorflow_env import VERBOSE_ENV
from device_runtime.bundle import verify_bundle
from edge_rec.cli import main
from edge_rec.data.titles import load_titles, titles_by_index
from tests.conftest import REPO_ROOT, run_without_tensorflow
from tests.tiny_config import tiny_config

TINY = tiny_config(convert={"parity_threshold": 0.5})

TRAINING_COMMANDS = (["build"], ["train-teacher"], ["distill", "--no-teacher"])


@pytest.fixture
def runner():
    return CliRunner()


# ---- options shared by every command --------------------------------------------------------

@pytest.mark.parametrize("command", [*TRAINING_COMMANDS, ["convert", "model"]])
def test_a_wrong_preset_lists_the_valid_ones(runner, tmp_path, command):
    result = runner.invoke(main, [*command, "--out", str(tmp_path / "o"), "--data", "synthetic-tvv"])
    assert result.exit_code == 2
    assert "synthetic-tvv" in result.output and "synthetic-tv, synthetic-speaker" in result.output


@pytest.mark.parametrize("command", [*TRAINING_COMMANDS, ["convert", "model"], ["data", "inspect", "x.csv"],
                                     ["benchmark", "."]])
def test_data_format_is_a_fixed_choice_everywhere(runner, tmp_path, command):
    out = [] if command[0] in ("data", "benchmark") else ["--out", str(tmp_path / "o")]
    result = runner.invoke(main, [*command, *out, "--data-format", "movielens-2m"])
    assert result.exit_code == 2, result.output
    assert "is not one of 'auto', 'movielens-100k'" in result.output


@pytest.mark.parametrize("command", TRAINING_COMMANDS)
def test_training_commands_share_preset_seed_quiet_and_skip_bad_lines(runner, command):
    help_text = runner.invoke(main, [*command[:1], "--help"]).output
    for option in ("--preset", "--seed", "--quiet", "--json", "--data-format", "--skip-bad-lines"):
        assert option in help_text, (command, option)


@pytest.mark.parametrize("command", TRAINING_COMMANDS)
def test_a_wrong_config_preset_lists_the_valid_ones(runner, tmp_path, command):
    result = runner.invoke(main, [*command, "--out", str(tmp_path / "o"), "--preset", "quik"])
    assert result.exit_code == 1
    assert "unknown preset 'quik'" in result.output and "quick" in result.output


def test_benchmark_profile_is_a_choice_or_a_toml_file(runner, tmp_path):
    result = runner.invoke(main, ["benchmark", str(tmp_path), "--profile", "laptop"])
    assert result.exit_code == 2
    assert "'laptop' is neither a built-in device profile (smart-speaker, tv)" in result.output


def test_benchmark_json_is_a_flag_and_output_takes_the_file(runner):
    help_text = runner.invoke(main, ["benchmark", "--help"]).output
    assert "--json " in help_text and "--output FILE" in help_text


@pytest.mark.parametrize("command", [["build"], ["convert", "model", "--data", "synthetic-tv"]])
def test_out_into_a_non_empty_folder_is_refused_without_overwrite(runner, tmp_path, command):
    out = tmp_path / "out"
    out.mkdir()
    (out / "notes.txt").write_text("mine")
    result = runner.invoke(main, [*command, "--out", str(out)])
    assert result.exit_code == 1
    assert "not empty" in result.output and "--overwrite" in result.output
    assert (out / "notes.txt").read_text() == "mine"


def test_tab_delimiter_is_decoded(runner, tmp_path):
    log = tmp_path / "log.tsv"
    log.write_text("user_id\titem_id\ttimestamp\n" + "".join(f"u{u}\ti{t}\t{t}\n" for u in range(3) for t in range(4)))
    result = runner.invoke(main, ["data", "inspect", str(log), "--data-format", "csv", "--delimiter", "\\t", "--json"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["interactions"] == 12
    result = runner.invoke(main, ["data", "inspect", str(log), "--delimiter", "ab"])
    assert result.exit_code == 2 and "expected one character" in result.output


@pytest.mark.parametrize("command", [["train-teacher"], ["distill", "--no-teacher"], ["build"]])
def test_training_on_a_device_only_install_says_what_to_install(tmp_path, command):
    proc = run_without_tensorflow(["-m", "edge_rec.cli", *command, "--out", str(tmp_path / "o"),
                                   "--data", "synthetic-tv"])
    assert proc.returncode == 1
    assert "install edge-rec[train]" in proc.stderr and "Traceback" not in proc.stderr


# ---- titles ---------------------------------------------------------------------------------

@pytest.mark.parametrize(("name", "text", "encoding"), [
    ("u.item", "1|Toy Story (1995)|01-Jan-1995||http://x|0|1\n2|GoldenEye (1995)|01-Jan-1995||http://y|1|0\n",
     "latin-1"),
    ("movies.dat", "1::Toy Story (1995)::Animation\n2::GoldenEye (1995)::Action\n", "latin-1"),
    ("movies.csv", 'movieId,title,genres\n1,Toy Story (1995),Animation\n2,"GoldenEye, (1995)",Action\n', "utf-8"),
    ("titles.csv", "\ufeffitem_id,title\n1,Toy Story (1995)\n2,GoldenEye (1995)\n", "utf-8"),
])
def test_titles_files(tmp_path, name, text, encoding):
    path = tmp_path / name
    path.write_text(text, encoding=encoding)
    titles = load_titles(path)
    assert titles["1"] == "Toy Story (1995)" and titles["2"].startswith("GoldenEye")
    assert titles_by_index(["<pad>", "<oov>", "2", "9"], titles, ["", "", "old", "kept"]) == [
        "", "", titles["2"], "kept"]


def test_a_titles_file_without_an_id_column_names_the_file(tmp_path):
    path = tmp_path / "t.csv"
    path.write_text("name,title\na,b\n")
    with pytest.raises(ValueError, match=r"t\.csv:1: expected a MovieLens .* got header \['name', 'title'\]"):
        load_titles(path)


# ---- end to end: distill -> convert -> benchmark --------------------------------------------

@pytest.mark.slow
def test_convert_json_manifest_titles_and_benchmark_agree(runner, tmp_path):
    config = tmp_path / "tiny.toml"
    config.write_text(TINY)
    log = tmp_path / "log.csv"
    assert runner.invoke(main, ["data", "generate", "--users", "160", "--items", "120", "--seed", "3",
                                "--out", str(log)]).exit_code == 0
    student = tmp_path / "student"
    result = runner.invoke(main, ["distill", "--config", str(config), "--data", str(log), "--no-teacher",
                                  "--out", str(student), "--seed", "5", "--json"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["stage"] == "student_baseline"  # progress bars went to stderr
    assert json.loads((student / "config.json").read_text())["seed"] == 5  # --seed overrides the config

    item_ids = sorted({row["item_id"] for row in csv.DictReader(log.open())})
    items = tmp_path / "u.item"
    items.write_text("".join(f"{i}|Film {i} (1995)|01-Jan-1995||http://x\n" for i in item_ids), encoding="latin-1")
    bundle = tmp_path / "bundle"
    result = runner.invoke(main, ["convert", str(student), "--out", str(bundle), "--data", str(log),
                                  "--items", str(items), "--json"])
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout)
    verified = verify_bundle(bundle)
    manifest = verified.manifest
    assert manifest.model.quantization == {"variant": "int8", "scheme": "post-training", "sparsity_encoding": False}
    assert manifest.metrics == summary["metrics"] and manifest.build["seed"] == 5
    assert all(verified.titles[i] == f"Film {item} (1995)" for i, item in enumerate(verified.item_ids) if i >= 2)

    proc = run_without_tensorflow(["-m", "edge_rec.cli", "benchmark", str(bundle), "--eval-data", str(log),
                                   "--runs", "5", "--warmup", "1", "--json"], timeout=300)
    assert proc.returncode == 0, proc.stderr
    measured = json.loads(proc.stdout)["targets"][0]["metrics"]
    for key in ("hr@10", "ndcg@10", "mrr", "coverage@10"):
        assert round(measured[key], 4) == round(manifest.metrics[key], 4), key


# ---- a quiet console unless --verbose -------------------------------------------------------

NOISY_SCRIPT = """
import numpy as np
from edge_rec.keras_shim import keras, tf
from converters.tflite import convert_to_tflite, run_tflite
ids = keras.Input((4,), dtype="int32", name="history")
pooled = keras.layers.GlobalAveragePooling1D()(keras.layers.Embedding(12, 4)(ids))
model = keras.Model(ids, keras.layers.Dense(12, name="logits")(pooled))
model.save("MODEL")
model = keras.models.load_model("MODEL")
tf.config.list_physical_devices()
calibration = np.random.default_rng(0).integers(2, 12, size=(8, 4)).astype(np.int32)
flatbuffer = convert_to_tflite(model, "int8", history_length=4, top_k=5, representative_histories=calibration)
run_tflite(flatbuffer, calibration[:2])
tf.lite.Interpreter(model_content=flatbuffer)
print("done")
"""
NOISE = ("I0000", "cuInit", "fully_quantize", "XNNPACK", "is deprecated", "oneDNN")


@pytest.mark.slow
@pytest.mark.parametrize("verbose", [False, True])
def test_tensorflow_noise_is_hidden_unless_verbose(tmp_path, verbose):
    script = tmp_path / "noisy.py"
    script.write_text(NOISY_SCRIPT.replace("MODEL", str(tmp_path / "m.keras")))
    env = {k: v for k, v in os.environ.items() if k not in ("TF_CPP_MIN_LOG_LEVEL", VERBOSE_ENV)}
    env.update(PYTHONPATH=str(REPO_ROOT), **({VERBOSE_ENV: "1"} if verbose else {}))
    proc = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, env=env, timeout=300)
    assert proc.returncode == 0 and proc.stdout.strip() == "done", proc.stderr
    if verbose:
        assert "fully_quantize" in proc.stderr and "is deprecated" in proc.stderr
    else:
        assert not [word for word in NOISE if word in proc.stderr], proc.stderr


def test_convert_of_a_run_directory_takes_the_student_the_build_shipped(tmp_path):
    import json as json_module

    from edge_rec.run_directory import run_dir_stages

    assert run_dir_stages(tmp_path) == ("qat", "pruned", "student", "student_baseline")
    (tmp_path / "report.json").write_text(json_module.dumps({"shipped_student": {"stage": "student_baseline"}}))
    assert run_dir_stages(tmp_path) == ("qat", "pruned", "student_baseline", "student")
    # a bundle quantized after training (QAT failed parity) came from the pruned student: that first
    (tmp_path / "report.json").write_text(json_module.dumps(
        {"shipped_student": {"stage": "student"}, "int8_fallback": {"from": "pruned", "reason": "parity"}}))
    assert run_dir_stages(tmp_path) == ("pruned", "qat", "student", "student_baseline")
