"""Config loading: defaults, partial tables, profiles, and errors that name the file and field."""

from pathlib import Path

import pytest

from edge_rec.config import ConfigError, EdgeRecConfig, config_to_dict, load_config

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
        ("[distill]\nalpha = 3\n", "distill.alpha", "[0, 1]"),
        ("[teacher]\nkind = 'lstm'\n", "teacher.kind", "'sasrec' or 'gru'"),
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


def test_profiles_from_file_and_builtin(tmp_path):
    path = write(tmp_path, "[teacher]\nhidden = 64\n[profile.small.teacher]\nhidden = 16\n")
    assert load_config(path).teacher.hidden == 64
    assert load_config(path, profile="small").teacher.hidden == 16
    assert load_config(path, profile="quick").data.history_length == 20
    with pytest.raises(ConfigError, match="unknown profile 'nope'"):
        load_config(path, profile="nope")


def test_demo_config_loads_and_round_trips():
    cfg = load_config(REPO / "examples" / "tv" / "config.toml")
    assert cfg.data.source == "synthetic-tv"
    table = config_to_dict(cfg)
    assert table["student"]["hidden"] == list(cfg.student.hidden)
    assert load_config(REPO / "examples" / "tv" / "config.toml", profile="quick").teacher.fit.epochs == 2
