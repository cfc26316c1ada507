"""Config loading: defaults, partial tables, profiles, and errors that name the file and field."""

from pathlib import Path

import pytest

from edge_rec.config import (
    ConfigError,
    EdgeRecConfig,
    StudentConfig,
    config_from_dict,
    config_to_dict,
    load_config,
)

REPO = Path(__file__).resolve().parents[1]


def write(tmp_path, text):
    path = tmp_path / "cfg.toml"
    path.write_text(text)
    return path


def test_defaults_when_no_file():
    assert load_config(None) == EdgeRecConfig()


def test_partial_nested_table_keeps_other_defaults(tmp_path):
    cfg = load_config(write(tmp_path, "seed = 3\n[teacher.fit]\nepochs = 4\n[student]\nhidden = [8, 4]\n"))
    assert cfg.seed == 3
    assert cfg.teacher.fit.epochs == 4
    assert cfg.teacher.fit.batch_size == EdgeRecConfig().teacher.fit.batch_size
    assert cfg.student.hidden == (8, 4)


@pytest.mark.parametrize(
    ("text", "field", "expected"),
    [
        ("[student]\nhiden = 3\n", "student", "unknown key(s) hiden"),
        ("[teacher.fit]\nepochs = 'x'\n", "teacher.fit.epochs", "expected an integer"),
        ("[distill]\nkd_weight = -1\n", "distill.kd_weight", "a number >= 0"),
        ("[distill]\nalpha = 0.5\n", "distill", "alpha is now distill.ce_weight"),
        ("[teacher]\nkind = 'lstm'\n", "teacher.kind", "'sasrec' or 'gru'"),
        ("[data]\nvalidation_share = 0\n", "data.validation_share", "(0, 1]"),
        ("[convert]\nvariants = ['int4']\n", "convert.variants", "subset"),
        ("[student]\ntie_output = true\nembedding_dim = 8\nhidden = [4]\n", "student.hidden", "equal to student.embedding_dim (8)"),
    ],
)
def test_bad_values_name_file_and_field(tmp_path, text, field, expected):
    path = write(tmp_path, text)
    with pytest.raises(ConfigError) as info:
        load_config(path)
    message = str(info.value)
    assert str(path) in message and field in message and expected in message


def test_invalid_toml_and_missing_file(tmp_path):
    with pytest.raises(ConfigError, match="not valid TOML"):
        load_config(write(tmp_path, "[data\n"))
    with pytest.raises(ConfigError, match="no such config file"):
        load_config(tmp_path / "missing.toml")


def test_presets_from_file_and_builtin(tmp_path):
    path = write(tmp_path, "[teacher]\nhidden = 64\n[preset.small.teacher]\nhidden = 16\n")
    assert load_config(path).teacher.hidden == 64
    assert load_config(path, preset="small").teacher.hidden == 16
    assert load_config(path, preset="quick").data.history_length == 20
    with pytest.raises(ConfigError, match="unknown preset 'nope'"):
        load_config(path, preset="nope")


def test_demo_config_loads_and_round_trips():
    cfg = load_config(REPO / "examples" / "tv" / "config.toml")
    assert cfg.data.source == "synthetic-tv"
    table = config_to_dict(cfg)
    assert table["student"]["hidden"] == list(cfg.student.hidden)
    assert load_config(REPO / "examples" / "tv" / "config.toml", preset="quick").teacher.fit.epochs == 2


@pytest.mark.parametrize(("toml", "field"), [
    ("[teacher]\nhidden = -4", "teacher.hidden"),
    ("[teacher]\nmembers = 0", "teacher.members"),
    ("[teacher]\nfit = { epochs = 0 }", "teacher.fit.epochs"),
    ("[student]\nfit = { learning_rate = 0.0 }", "student.fit.learning_rate"),
    ("[data]\nmin_user_interactions = 1", "data.min_user_interactions"),
    ("[teacher]\nhidden = 30\nheads = 4", "teacher.hidden"),
    ("[prune]\nfit = { schedule = \"linear\" }", "prune.fit.schedule"),
    ("time_budget = \"soon\"", "time_budget"),
    ("[softmax]\nmode = \"approx\"", "softmax.mode"),
    ("[student]\nalone_dropout = 1.0", "student.alone_dropout"),
])
def test_out_of_range_values_are_refused_at_load_naming_file_and_field(tmp_path, toml, field):
    path = tmp_path / "bad.toml"
    path.write_text(toml)
    with pytest.raises(ConfigError) as err:
        load_config(path)
    assert str(path) in str(err.value) and field in str(err.value)


def test_explicit_keys_are_recorded_and_sizing_fills_the_rest():
    from edge_rec.sizing import LogShape, size_for_log

    cfg = config_from_dict({"teacher": {"hidden": 32, "fit": {"epochs": 3}}})
    assert {"teacher.hidden", "teacher.fit.epochs"} <= cfg.explicit
    shape = LogShape(users=20_000, items=9000, interactions=200_000, median_length=7, p90_length=16)
    sized, choices = size_for_log(cfg, shape)
    assert sized.teacher.hidden == 32 and sized.teacher.fit.epochs == 3  # the user's values stay
    assert sized.data.history_length == 20 and sized.teacher.dropout == 0.5
    assert sized.student.fit.batch_size == 64 and sized.explicit == cfg.explicit
    # the students' cosine decay runs to its end: no early stop before the last epoch
    assert sized.student.fit.patience == sized.student.fit.epochs == 20
    # the student trained alone gets its own dropout; the distilled one keeps the default
    assert sized.student.alone_dropout == 0.3 and sized.student.dropout == StudentConfig().dropout
    assert sized.student.trained_alone().dropout == 0.3
    own = config_from_dict({"student": {"alone_dropout": 0.2}})
    assert size_for_log(own, shape)[0].student.alone_dropout == 0.2
    # measured with the rule's 20 epochs: a config with its own student epochs keeps one dropout
    short = config_from_dict({"student": {"fit": {"epochs": 8}}})
    assert size_for_log(short, shape)[0].student.alone_dropout is None
    assert {c.key for c in choices} >= {"data.history_length", "teacher.dropout", "data.validation_share"}
    assert "teacher.hidden" not in {c.key for c in choices}
    # a sample of the users validates, the others train on their second-to-last item
    assert sized.data.validation_share == 0.2
    reason = next(c.reason for c in choices if c.key == "data.validation_share")
    assert "4,000 of 20,000 users validate" in reason
    kept = config_from_dict({"data": {"validation_share": 1.0}})  # the user's choice stays
    assert size_for_log(kept, shape)[0].data.validation_share == 1.0
    big = LogShape(users=2000, items=500, interactions=2_000_000, median_length=200, p90_length=900)
    sized_big, _ = size_for_log(config_from_dict({}), big)
    assert sized_big.data.history_length == 50 and sized_big.teacher.hidden == 128
    assert sized_big.student.fit.batch_size == 16
    # dropout follows the histories' length, not the log's size (SASRec: 0.5 short, 0.2 long)
    assert sized_big.teacher.dropout == 0.2
    long_small = LogShape(users=2000, items=2000, interactions=160_000, median_length=60, p90_length=150)
    sized_long, _ = size_for_log(config_from_dict({}), long_small)
    assert sized_long.teacher.dropout == 0.2 and sized_long.teacher.hidden == 64
    # averaged teachers while members x interactions stays within 1M: 2 (at most), then 1
    assert sized.teacher.members == 2 and sized_long.teacher.members == 2
    middle = LogShape(users=20_000, items=9000, interactions=600_000, median_length=7, p90_length=16)
    assert size_for_log(config_from_dict({}), middle)[0].teacher.members == 1
    assert sized_big.teacher.members == 1
    one = config_from_dict({"teacher": {"members": 1}})  # the user's choice stays
    assert size_for_log(one, shape)[0].teacher.members == 1
    # the wide student while its int8 file stays under 2 MB, else the narrow one
    assert (sized.student.embedding_dim, sized.student.hidden) == (32, (24,))
    assert (sized_big.student.embedding_dim, sized_big.student.hidden) == (32, (24,))  # 500 items
    huge = LogShape(users=20_000, items=40_000, interactions=400_000, median_length=7, p90_length=16)
    assert (size_for_log(config_from_dict({}), huge)[0].student.embedding_dim,
            size_for_log(config_from_dict({}), huge)[0].student.hidden) == (16, (12,))
    # setting any of the student's widths (or tying its output) keeps the rule off all of them
    tied = config_from_dict({"student": {"tie_output": True, "embedding_dim": 12, "hidden": [12]}})
    assert size_for_log(tied, shape)[0].student.hidden == (12,)
    only_dim = config_from_dict({"student": {"embedding_dim": 8}})
    assert size_for_log(only_dim, shape)[0].student.hidden == EdgeRecConfig().student.hidden


def test_the_resolver_records_which_layer_set_each_key(tmp_path):
    from edge_rec.config import config_provenance, resolve_config
    from edge_rec.sizing import LogShape, size_for_log

    path = write(tmp_path, "[teacher]\nhidden = 64\n[preset.small.teacher]\nblocks = 1\n")
    cfg = resolve_config(path, preset="small", flags={"seed": 9, "teacher": {"hidden": 32}})
    shape = LogShape(users=5000, items=3000, interactions=100_000, median_length=8.0, p90_length=20.0)
    sized, choices = size_for_log(cfg, shape)
    layers = {key: entry["layer"] for key, entry in config_provenance(sized).items()}
    assert layers["teacher.hidden"] == "flag" and config_provenance(sized)["teacher.hidden"]["value"] == 32
    assert layers["teacher.blocks"] == "preset small" and layers["seed"] == "flag"
    assert layers["teacher.fit.schedule"].startswith("log: ") and layers["qat.fit.epochs"] == "default"
    assert {c.key for c in choices} <= {k for k, v in layers.items() if v.startswith("log: ")}
    assert "teacher.fit.schedule" not in sized.explicit and "teacher.blocks" in sized.explicit


def test_config_show_prints_each_value_with_its_layer(tmp_path):
    import json

    from click.testing import CliRunner

    from edge_rec.cli import main

    path = write(tmp_path, "seed = 4\n")
    result = CliRunner().invoke(main, ["config", "show", "--config", str(path), "--preset", "quick", "--json"])
    assert result.exit_code == 0, result.output
    shown = json.loads(result.stdout)
    assert shown["seed"] == {"value": 4, "layer": f"file {path}"}
    assert shown["data.history_length"] == {"value": 20, "layer": "preset quick"}
    bad = write(tmp_path, "[teacher]\nheads = 0\n")
    result = CliRunner().invoke(main, ["config", "show", "--config", str(bad)])
    assert result.exit_code == 1 and "teacher.heads: expected an integer >= 1" in result.output
    assert "Traceback" not in result.output
