"""`edge-rec data generate` and `edge-rec data inspect`."""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner
from conftest import run_without_tensorflow
from fixtures.movielens_formats import write_movielens_100k

from edge_rec.cli import main
from edge_rec.data import load_interactions


@pytest.fixture
def runner():
    return CliRunner()


def test_generate_writes_a_loadable_csv(runner, tmp_path):
    out = tmp_path / "tv.csv"
    result = runner.invoke(
        main, ["data", "generate", "--preset", "synthetic-tv", "--out", str(out),
               "--seed", "2", "--users", "50", "--items", "60"]
    )
    assert result.exit_code == 0, result.output
    assert "50 users" in result.output and str(out) in result.output
    assert out.read_text(encoding="utf-8").splitlines()[0] == "user_id,item_id,timestamp,title"
    log = load_interactions(out)
    assert len(set(log.users.tolist())) == 50
    assert log.titles


def test_generate_json_and_determinism(runner, tmp_path):
    outputs = []
    for name in ("a.csv", "b.csv"):
        result = runner.invoke(
            main, ["data", "generate", "--preset", "synthetic-speaker", "--out",
                   str(tmp_path / name), "--users", "30", "--items", "40", "--json"]
        )
        assert result.exit_code == 0, result.output
        outputs.append(json.loads(result.output))
    assert outputs[0]["interactions"] == outputs[1]["interactions"] > 0
    assert (tmp_path / "a.csv").read_bytes() == (tmp_path / "b.csv").read_bytes()


def test_generate_rejects_unknown_preset(runner, tmp_path):
    result = runner.invoke(main, ["data", "generate", "--preset", "radio", "--out", str(tmp_path / "x.csv")])
    assert result.exit_code != 0
    assert not (tmp_path / "x.csv").exists()


def test_inspect_movielens_100k_shape(runner, tmp_path):
    path = write_movielens_100k(tmp_path / "u.data")  # 943 users, 1682 items, 100000 ratings
    result = runner.invoke(main, ["data", "inspect", str(path), "--json"])
    assert result.exit_code == 0, result.output
    stats = json.loads(result.output)
    assert (stats["users"], stats["items"], stats["interactions"]) == (943, 1682, 100000)
    assert stats["density"] == pytest.approx(100000 / (943 * 1682))
    assert stats["length_p10"] >= 20 and stats["length_max"] >= stats["length_p90"]
    assert 0 < stats["top1pct_share"] < 1 and stats["top1pct_items"] == 17


def test_inspect_text_report(runner, tmp_path):
    path = tmp_path / "plays.csv"
    path.write_text("user_id,item_id,timestamp\na,x,1\na,y,2\nb,x,3\n", encoding="utf-8")
    result = runner.invoke(main, ["data", "inspect", str(path)])
    assert result.exit_code == 0, result.output
    for expected in ("users:         2", "items:         2", "interactions:  3", "density:       75.0000%",
                     "p50 1.5", "top 1% of items (1) get 66.7%"):
        assert expected in result.output


def test_inspect_bad_file_is_a_one_line_error(runner, tmp_path):
    path = tmp_path / "u.data"
    path.write_text("1\t2\t5\t100\n1\t3\t4\tnoon\n", encoding="utf-8")
    result = runner.invoke(main, ["data", "inspect", str(path)])
    assert result.exit_code != 0
    assert "Traceback" not in result.output
    error_lines = [line for line in result.output.splitlines() if line.strip()]
    assert len(error_lines) == 1 and error_lines[0].startswith("Error:")
    assert f"{path}:2:" in error_lines[0]
    skipped = runner.invoke(main, ["data", "inspect", str(path), "--skip-bad-lines", "--json"])
    assert skipped.exit_code == 0, skipped.output
    assert json.loads(skipped.output)["skipped_lines"] == 1


def test_inspect_csv_column_options_and_missing_file(runner, tmp_path):
    path = tmp_path / "plays.tsv"
    path.write_text("when|who|what\n1|a|x\n", encoding="utf-8")
    result = runner.invoke(main, ["data", "inspect", str(path), "--format", "csv", "--json",
                                  "--user-col", "who", "--item-col", "what", "--time-col", "when",
                                  "--delimiter", "|"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.output)["interactions"] == 1
    missing = runner.invoke(main, ["data", "inspect", str(tmp_path / "absent.csv")])
    assert missing.exit_code != 0 and "no such file" in missing.output


def test_data_commands_run_without_tensorflow(tmp_path):
    out = tmp_path / "tv.csv"
    gen = run_without_tensorflow(["-m", "edge_rec.cli", "data", "generate", "--out", str(out),
                                  "--users", "20", "--items", "30"])
    assert gen.returncode == 0, gen.stderr
    proc = run_without_tensorflow(["-m", "edge_rec.cli", "data", "inspect", str(out), "--json"])
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout)["users"] == 20
