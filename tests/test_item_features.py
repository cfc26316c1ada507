"""Item features: reading and checking a features file, inferring kinds, tokens and weights."""

from __future__ import annotations

import numpy as np
import pytest

from edge_rec.data.errors import DataFormatError
from edge_rec.data.item_features import FeatureSpec, load_item_features


def _write(tmp_path, text: str):
    path = tmp_path / "features.csv"
    path.write_text(text, encoding="utf-8")
    return path


MOVIES = (
    "movieId,title,genres,year\n"
    "1,Toy Story (1995),Adventure|Animation|Children,1995\n"
    "2,Jumanji (1995),Adventure|Children|Fantasy,1995\n"
    "3,Heat (1995),Action|Crime|Thriller,1995\n"
    "4,The Matrix (1999),Action|Sci-Fi,1999\n"
    "5,Toy Story 2 (1999),Adventure|Animation|Children,\n"
)


def test_kinds_are_inferred_and_tokens_weigh_each_column_equally(tmp_path):
    features = load_item_features(_write(tmp_path, MOVIES))
    assert features.kinds == {"title": "text", "genres": "categorical", "year": "numeric"}
    spec = FeatureSpec.fit(features, buckets=4096, max_tokens=32, numeric_bins=2)
    tokens = spec.item_tokens(features.values["1"])
    assert abs(sum(w for _, w in tokens) - 1.0) < 1e-6
    assert all(0 < t < 4096 for t, _ in tokens)
    ids, weights = spec.token_matrix([features.values["1"], features.values["5"], None])
    assert ids.shape == (3, 32) and weights.dtype == np.float32
    # two Toy Story films share their genre tokens and title words; an item without features has none
    shared = set(ids[0][weights[0] > 0]) & set(ids[1][weights[1] > 0])
    assert len(shared) >= 3
    assert weights[2].sum() == 0 and ids[2].sum() == 0
    # the missing year: two columns present, each half of the weight
    assert abs(weights[1].sum() - 1.0) < 1e-6


def test_tokens_are_stable_across_fits_and_a_saved_spec_tokenizes_the_same(tmp_path):
    features = load_item_features(_write(tmp_path, MOVIES))
    spec = FeatureSpec.fit(features, buckets=512, max_tokens=16, numeric_bins=4)
    spec.save(tmp_path / "spec.json")
    again = FeatureSpec.load(tmp_path / "spec.json")
    assert again == spec
    rows = list(features.values.values())
    np.testing.assert_array_equal(spec.token_matrix(rows)[0], again.token_matrix(rows)[0])


def test_declared_kinds_win_over_inference(tmp_path):
    features = load_item_features(_write(tmp_path, "item_id,year:categorical,title\n1,1995,A\n2,1999,B\n"))
    assert features.kinds["year"] == "categorical"
    assert load_item_features(_write(tmp_path, "item_id,code\n1,7\n2,9\n"), kinds={"code": "text"}).kinds == {
        "code": "text"}


@pytest.mark.parametrize("text, message", [
    ("", "empty"),
    ("name,genres\nA,B\n", "id column"),
    ("item_id\n1\n", "at least one feature column"),
    ("item_id,genres:colour\n1,A\n", "unknown kind 'colour'"),
    ("item_id,genres\n1,A\n2,B,C\n", "features.csv:3: expected 2 fields"),
    ("item_id,genres\n1,A\n2,B\n1,C\n", "features.csv:4: item '1' appears again (first at line 2)"),
    ("item_id,year:numeric\n1,1995\n2,soon\n", "features.csv:3: column 'year' is numeric, got 'soon'"),
    ("item_id,genres\n", "no rows"),
])
def test_bad_files_are_refused_naming_the_line(tmp_path, text, message):
    with pytest.raises(DataFormatError, match=message.replace("(", r"\(").replace(")", r"\)")):
        load_item_features(_write(tmp_path, text))


def test_a_patch_file_must_describe_items_as_training_did(tmp_path):
    spec = FeatureSpec.fit(load_item_features(_write(tmp_path, MOVIES)), buckets=64, max_tokens=8, numeric_bins=2)
    one_row = load_item_features(_write(tmp_path, "movieId,title,genres,year\n9,New (2020),Drama,2020\n"),
                                 kinds=spec.kinds)
    spec.check_columns(one_row)  # read with the spec's kinds, one row is enough
    assert spec.token_matrix([one_row.values["9"]])[1].sum() == pytest.approx(1.0)
    with pytest.raises(DataFormatError, match="expected the column 'year'"):
        spec.check_columns(load_item_features(_write(tmp_path, "movieId,title,genres\n9,New (2020),Drama\n"),
                                              kinds=spec.kinds))
    with pytest.raises(DataFormatError, match="reads as text"):
        spec.check_columns(load_item_features(_write(tmp_path, "movieId,title,genres,year:text\n9,N,Drama,2020\n"),
                                              kinds=spec.kinds))
