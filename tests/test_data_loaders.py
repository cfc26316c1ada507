"""Loading MovieLens and CSV logs, format detection, and errors for bad input."""

from __future__ import annotations

import numpy as np
import pytest
from conftest import run_without_tensorflow
from fixtures.movielens_formats import (
    movielens_like_triples,
    write_movielens_1m,
    write_movielens_100k,
    write_movielens_latest,
)

from edge_rec.data import (
    DataFormatError,
    InteractionLog,
    detect_format,
    load_interactions,
    write_interactions_csv,
)


def _as_set(log: InteractionLog):
    return set(zip(log.users.tolist(), log.items.tolist(), log.timestamps.tolist(), strict=True))


def _expected(users, items, interactions, min_per_user=5):
    u, i, _r, t = movielens_like_triples(users, items, interactions, min_per_user=min_per_user)
    return set(zip(map(str, u.tolist()), map(str, i.tolist()), t.tolist(), strict=True))


@pytest.mark.parametrize(
    ("writer", "name", "fmt"),
    [
        (write_movielens_1m, "ratings.dat", "movielens-1m"),
        (write_movielens_latest, "ratings.csv", "movielens-latest"),
    ],
)
def test_movielens_formats_are_detected_and_loaded(tmp_path, writer, name, fmt):
    path = writer(tmp_path / name)
    assert detect_format(path) == fmt
    log = load_interactions(path)
    assert len(log) == 600
    assert log.timestamps.dtype == np.int64
    assert _as_set(log) == _expected(30, 40, 600)
    assert fmt in log.source and str(path) in log.source
    assert log.skipped_lines == 0


def test_movielens_100k_is_detected_and_loaded(tmp_path):
    path = write_movielens_100k(tmp_path / "u.data", users=20, items=30, interactions=500)
    assert detect_format(path) == "movielens-100k"
    log = load_interactions(path, "movielens-100k")
    assert _as_set(log) == _expected(20, 30, 500, min_per_user=20)


def test_generic_csv_with_named_columns_delimiter_and_titles(tmp_path):
    path = tmp_path / "plays.csv"
    path.write_text(
        "ts;device;show;title\n"
        "100;a;x1;Show One\n"
        "\n"
        "90;b;x2;\n"
        "110;a;x2;Show Two\n",
        encoding="utf-8",
    )
    kwargs = dict(user_col="device", item_col="show", time_col="ts", delimiter=";")
    assert detect_format(path, **kwargs) == "csv"
    log = load_interactions(path, **kwargs)
    assert log.users.tolist() == ["a", "b", "a"]
    assert log.items.tolist() == ["x1", "x2", "x2"]
    assert log.timestamps.tolist() == [100, 90, 110]
    assert log.titles == {"x1": "Show One", "x2": "Show Two"}


def test_write_interactions_csv_round_trips_titles_with_commas(tmp_path):
    log = InteractionLog(
        users=np.array(["u1", "u2"]),
        items=np.array(["7", "8"]),
        timestamps=np.array([5, 6]),
        source="test",
        titles={"7": 'Seven, "the" movie', "8": "Eight"},
    )
    out = write_interactions_csv(log, tmp_path / "sub" / "log.csv")
    assert out.read_text(encoding="utf-8").splitlines()[0] == "user_id,item_id,timestamp,title"
    assert [p.name for p in out.parent.iterdir()] == ["log.csv"]  # no temp file left behind
    back = load_interactions(out)
    assert _as_set(back) == _as_set(log)
    assert back.titles == log.titles


def test_malformed_line_names_file_line_and_expectation(tmp_path):
    path = tmp_path / "u.data"
    path.write_text("1\t2\t5\t100\n1\t3\t4\t101\n2\t3\t4\n", encoding="utf-8")
    with pytest.raises(DataFormatError) as err:
        load_interactions(path, "movielens-100k")
    message = str(err.value)
    assert f"{path}:3:" in message
    assert "found 3 field(s)" in message and "4 tab-separated fields" in message


def test_non_numeric_timestamp_is_reported_with_line_number(tmp_path):
    path = tmp_path / "ratings.dat"
    path.write_text("1::2::5::100\n1::3::4::yesterday\n", encoding="utf-8")
    with pytest.raises(DataFormatError, match=r"ratings\.dat:2: timestamp 'yesterday'.*not an integer"):
        load_interactions(path)


def test_skip_mode_skips_and_counts_bad_lines(tmp_path):
    path = tmp_path / "u.data"
    path.write_text("1\t2\t5\t100\n1\t3\t4\tx\n\t3\t4\t9\n2\t3\t4\n2\t4\t4\t102\n", encoding="utf-8")
    log = load_interactions(path, on_bad_line="skip")
    assert log.skipped_lines == 3
    assert log.items.tolist() == ["2", "4"]
    assert log.timestamps.tolist() == [100, 102]


def test_only_bad_lines_in_skip_mode_is_an_error(tmp_path):
    path = tmp_path / "u.data"
    path.write_text("1\t2\t5\tx\n", encoding="utf-8")
    with pytest.raises(DataFormatError):  # undetectable: not numeric
        load_interactions(path, on_bad_line="skip")
    with pytest.raises(DataFormatError, match="no valid lines found"):
        load_interactions(path, "movielens-100k", on_bad_line="skip")


@pytest.mark.parametrize("content", ["", "\n\n  \n"])
def test_empty_file_is_an_error(tmp_path, content):
    path = tmp_path / "empty.csv"
    path.write_text(content, encoding="utf-8")
    with pytest.raises(DataFormatError, match=r"empty\.csv: empty file"):
        load_interactions(path)
    with pytest.raises(DataFormatError, match="empty file"):
        load_interactions(path, "csv")


def test_header_only_csv_is_an_error(tmp_path):
    path = tmp_path / "ratings.csv"
    path.write_text("userId,movieId,rating,timestamp\n", encoding="utf-8")
    with pytest.raises(DataFormatError, match="no interactions found"):
        load_interactions(path)


def test_wrong_explicit_format_says_what_the_file_looks_like(tmp_path):
    path = write_movielens_100k(tmp_path / "u.data", users=20, items=30, interactions=500)
    with pytest.raises(DataFormatError) as err:
        load_interactions(path, "movielens-1m")
    message = str(err.value)
    assert f"{path}:1:" in message
    assert "looks like movielens-100k" in message and "--format movielens-100k" in message


def test_undetectable_format_explains_how_to_choose(tmp_path):
    path = tmp_path / "mystery.txt"
    path.write_text("who,what,when\na,b,1\n", encoding="utf-8")
    with pytest.raises(DataFormatError) as err:
        load_interactions(path)
    assert "cannot tell the format" in str(err.value) and "--format" in str(err.value)
    log = load_interactions(path, "csv", user_col="who", item_col="what", time_col="when")
    assert len(log) == 1


def test_csv_missing_column_names_the_header_and_the_options(tmp_path):
    path = tmp_path / "plays.csv"
    path.write_text("user_id,item_id,when\na,b,1\n", encoding="utf-8")
    with pytest.raises(DataFormatError, match=r"plays\.csv:1: header .* lacks column\(s\) timestamp.*--time-col"):
        load_interactions(path, "csv")


def test_missing_and_binary_files(tmp_path):
    with pytest.raises(DataFormatError, match="no such file"):
        load_interactions(tmp_path / "absent.csv")
    binary = tmp_path / "model.bin"
    binary.write_bytes(b"\xff\xfe\x00\x81garbage")
    with pytest.raises(DataFormatError, match="not UTF-8"):
        load_interactions(binary)


def test_unknown_format_and_policy_are_value_errors(tmp_path):
    path = write_movielens_1m(tmp_path / "ratings.dat")
    with pytest.raises(ValueError, match="unknown format"):
        load_interactions(path, "parquet")
    with pytest.raises(ValueError, match="on_bad_line"):
        load_interactions(path, on_bad_line="ignore")


def test_data_layer_is_numpy_only(tmp_path):
    path = write_movielens_1m(tmp_path / "ratings.dat")
    code = (
        "import sys\n"
        "from edge_rec.data import load_interactions, prepare_dataset\n"
        f"ds = prepare_dataset(load_interactions({str(path)!r}))\n"
        "assert not any(m.split('.')[0] in ('tensorflow', 'tf_keras', 'converters') for m in sys.modules)\n"
        "print(len(ds.user_ids))\n"
    )
    proc = run_without_tensorflow(["-c", code])
    assert proc.returncode == 0, proc.stderr
    assert int(proc.stdout) == 30


@pytest.mark.parametrize("stamp", [str(2**63), str(-(2**63) - 1), "1" + "0" * 30])
@pytest.mark.parametrize("name, lines", [
    ("ratings.dat", "1::2::5::100\n1::3::4::{stamp}\n2::3::4::101\n"),
    ("ratings.csv", "userId,movieId,rating,timestamp\n1,2,5,100\n1,3,4,{stamp}\n2,3,4,101\n"),
])
def test_timestamp_out_of_int64_is_a_clean_error_or_skipped(tmp_path, stamp, name, lines):
    path = tmp_path / name
    path.write_text(lines.format(stamp=stamp), encoding="utf-8")
    line_no = 2 if name == "ratings.dat" else 3
    with pytest.raises(DataFormatError, match=rf"{name}:{line_no}: timestamp .* in field 4 is out of range"):
        load_interactions(path)
    log = load_interactions(path, on_bad_line="skip")
    assert log.skipped_lines == 1 and log.timestamps.tolist() == [100, 101]


def test_int64_limits_themselves_are_accepted(tmp_path):
    path = tmp_path / "ratings.dat"
    path.write_text(f"1::2::5::{2**63 - 1}\n1::3::4::{-(2**63)}\n", encoding="utf-8")
    assert load_interactions(path).timestamps.tolist() == [2**63 - 1, -(2**63)]


@pytest.mark.parametrize("name, content", [
    ("ratings.csv", "userId,movieId,rating,timestamp\n1,2,5,100\n1,3,4,101\n"),
    ("u.data", "1\t2\t5\t100\n1\t3\t4\t101\n"),
])
def test_utf8_byte_order_mark_is_accepted(tmp_path, name, content):
    path = tmp_path / name
    path.write_bytes(b"\xef\xbb\xbf" + content.encode("utf-8"))
    log = load_interactions(path)
    assert log.items.tolist() == ["2", "3"] and log.users.tolist() == ["1", "1"]


@pytest.mark.parametrize("line, field", [("1\x00x::3::4::101", "user id in field 1"),
                                         ("1::3\x00::4::101", "item id in field 2")])
def test_nul_bytes_in_ids_are_refused(tmp_path, line, field):
    path = tmp_path / "ratings.dat"
    path.write_text(f"1::2::5::100\n{line}\n", encoding="utf-8")
    with pytest.raises(DataFormatError, match=rf"ratings\.dat:2: {field} contains a NUL byte"):
        load_interactions(path)
    log = load_interactions(path, on_bad_line="skip")
    assert log.skipped_lines == 1 and "\x00" not in "".join(log.items.tolist() + log.users.tolist())
