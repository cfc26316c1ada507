"""device_runtime.metrics against hand-computed cases and a brute-force reference ranking."""

from __future__ import annotations

import math

import numpy as np
import pytest
from conftest import run_without_tensorflow

from device_runtime.metrics import (
    EVAL_DEPTH,
    evaluate_ranked,
    gains_at_positions,
    per_user_gains,
    rank_scores,
    target_positions,
)


def _reference_rank(scores, seen, depth):
    """Brute force: stable sort of every row by descending score, exclusions removed."""
    out = np.full((scores.shape[0], depth), -1, dtype=np.int64)
    for r, row in enumerate(scores):
        order = [int(i) for i in np.argsort(-row, kind="stable")
                 if i >= 2 and i not in set(np.asarray(seen[r]).tolist())]
        out[r, : min(depth, len(order))] = order[:depth]
    return out


def test_rank_excludes_pad_oov_and_seen_and_orders_by_score():
    scores = np.array([[9.0, 8.0, 0.1, 0.5, 0.3, 0.9, 0.2]])
    ranked = rank_scores(scores, [np.array([5])], depth=4)
    assert ranked.dtype == np.int32
    assert ranked.tolist() == [[3, 4, 6, 2]]


def test_rank_fills_with_minus_one_when_catalog_is_exhausted():
    scores = np.array([[0.0, 0.0, 1.0, 2.0, 3.0]])
    ranked = rank_scores(scores, [np.array([4, 0])], depth=6)
    assert ranked.tolist() == [[3, 2, -1, -1, -1, -1]]


def test_ties_go_to_lower_index_even_at_the_cut():
    # ten items all tied: the top 3 must be the three lowest indices, in order
    scores = np.zeros((2, 12))
    scores[1, 7] = 1.0
    ranked = rank_scores(scores, [np.array([], dtype=np.int32), np.array([3])], depth=3)
    assert ranked.tolist() == [[2, 3, 4], [7, 2, 4]]


def test_minus_infinity_is_a_score_not_an_exclusion():
    scores = np.array([[0.0, 0.0, -np.inf, 1.0, -np.inf]])
    ranked = rank_scores(scores, [np.array([4])], depth=3)
    assert ranked.tolist() == [[3, 2, -1]]


def test_rank_matches_brute_force_on_tied_integer_scores_across_blocks():
    rng = np.random.default_rng(3)
    scores = rng.integers(0, 5, size=(700, 40)).astype(np.float32)  # many ties, > one block
    seen = [rng.choice(40, size=rng.integers(0, 10), replace=False) for _ in range(700)]
    np.testing.assert_array_equal(rank_scores(scores, seen, depth=25), _reference_rank(scores, seen, 25))


def test_rank_refuses_nan_and_bad_seen():
    with pytest.raises(ValueError, match="NaN"):
        rank_scores(np.array([[0.0, 0.0, np.nan]]), [np.array([])])
    with pytest.raises(ValueError, match="outside the catalog"):
        rank_scores(np.zeros((1, 5)), [np.array([5])])
    with pytest.raises(ValueError, match="rows"):
        rank_scores(np.zeros((2, 5)), [np.array([])])


def test_evaluate_ranked_hand_computed():
    ranked = np.array([
        [5, 6, 7, 8],  # target 5 at position 0
        [6, 7, 5, 8],  # target 5 at position 2
        [6, 7, 8, 9],  # target 5 absent
        [6, 7, 8, 5],  # target 5 at position 3: beyond k=2, inside the list
    ])
    targets = np.array([5, 5, 5, 5])
    m = evaluate_ranked(ranked, targets, catalog_size=12, k=2)
    assert set(m) == {"hr@2", "ndcg@2", "mrr", "coverage@2", "users"}
    assert m["hr@2"] == pytest.approx(1 / 4)
    assert m["ndcg@2"] == pytest.approx(1 / 4)
    assert m["mrr"] == pytest.approx((1 + 1 / 3 + 0 + 1 / 4) / 4)
    assert m["coverage@2"] == pytest.approx(len({5, 6, 7}) / 10)
    assert m["users"] == 4
    m3 = evaluate_ranked(ranked, targets, catalog_size=12, k=3)
    assert m3["hr@3"] == pytest.approx(2 / 4)
    assert m3["ndcg@3"] == pytest.approx((1 + 1 / math.log2(4)) / 4)


def test_coverage_ignores_fill_and_reserved_indices():
    ranked = np.array([[2, -1, -1], [0, 1, 3]])
    m = evaluate_ranked(ranked, np.array([2, 9]), catalog_size=6, k=3)
    assert m["coverage@3"] == pytest.approx(2 / 4)
    assert m["hr@3"] == pytest.approx(0.5)


def test_evaluate_ranked_validates_arguments():
    with pytest.raises(ValueError, match="k must be"):
        evaluate_ranked(np.zeros((1, 3), int), np.array([2]), 10, k=4)
    with pytest.raises(ValueError, match="zero rows"):
        evaluate_ranked(np.zeros((0, 3), int), np.array([]), 10, k=2)


def test_scores_ranked_then_evaluated_end_to_end():
    scores = np.array([
        [0.0, 0.0, 0.9, 0.8, 0.7, 0.1],  # seen 2 -> ranking 3,4,5 -> target 4 at position 1
        [5.0, 5.0, 0.1, 0.2, 0.3, 0.4],  # ranking 5,4,3,2 -> target 2 at position 3
    ])
    seen = [np.array([2]), np.array([], dtype=np.int32)]
    m = evaluate_ranked(rank_scores(scores, seen), np.array([4, 2]), catalog_size=6, k=2)
    assert m["hr@2"] == pytest.approx(0.5)
    assert m["ndcg@2"] == pytest.approx((1 / math.log2(3)) / 2)
    assert m["mrr"] == pytest.approx((1 / 2 + 1 / 4) / 2)
    assert m["coverage@2"] == pytest.approx(len({3, 4, 5}) / 4)
    assert EVAL_DEPTH == 100


def test_metrics_module_runs_without_tensorflow_or_edge_rec():
    code = (
        "import sys, numpy as np\n"
        "from device_runtime.metrics import evaluate_ranked, rank_scores\n"
        "m = evaluate_ranked(rank_scores(np.eye(4), [np.array([])] * 4), np.array([2, 3, 2, 3]), 4, k=1)\n"
        "assert not any(k.split('.')[0] in ('edge_rec', 'converters') for k in sys.modules)\n"
        "print(m['hr@1'])\n"
    )
    proc = run_without_tensorflow(["-c", code])
    assert proc.returncode == 0, proc.stderr
    # rows 0 and 1 tie items 2 and 3 (lower index wins: 2); row 2 picks 2, row 3 picks 3
    assert float(proc.stdout) == pytest.approx(0.75)


def test_ranking_in_small_blocks_equals_ranking_in_one(monkeypatch):
    from device_runtime import metrics

    rng = np.random.default_rng(3)
    scores = rng.random((50, 300)).astype(np.float32)
    seen = [rng.choice(np.arange(2, 300), size=5, replace=False) for _ in range(50)]
    whole = rank_scores(scores, seen, depth=20)
    monkeypatch.setattr(metrics, "_BLOCK_CELLS", 8 * 300)  # 8-row blocks, the floor
    assert metrics.block_rows(300) == 8
    np.testing.assert_array_equal(rank_scores(scores, seen, depth=20), whole)


def test_target_positions_agree_with_the_ranked_lists():
    rng = np.random.default_rng(3)
    rows, catalog = 200, 40
    scores = rng.integers(0, 6, size=(rows, catalog)).astype(np.float32)  # many ties
    targets = rng.integers(0, catalog, size=rows)
    seen = [rng.choice(np.arange(2, catalog), size=rng.integers(0, 5), replace=False) for _ in range(rows)]
    positions = target_positions(scores, targets, seen)
    ranked = rank_scores(scores, seen, depth=catalog)
    for row in range(rows):
        found = np.flatnonzero(ranked[row] == targets[row])
        assert positions[row] == (found[0] if found.size else catalog)
    assert (positions == catalog).any() and (positions < 10).any()  # both cases exercised


def test_gains_at_positions_give_the_metrics_of_the_ranked_lists():
    rng = np.random.default_rng(4)
    rows, catalog, depth = 300, 60, 20
    scores = rng.integers(0, 8, size=(rows, catalog)).astype(np.float32)  # ties
    targets = rng.integers(0, catalog, size=rows)
    seen = [rng.choice(np.arange(2, catalog), size=rng.integers(0, 6), replace=False) for _ in range(rows)]
    positions = target_positions(scores, targets, seen)
    from_positions = gains_at_positions(positions, k=10, depth=depth)
    from_lists = per_user_gains(rank_scores(scores, seen, depth=depth), targets, k=10)
    assert set(from_positions) == set(from_lists)
    for name, values in from_lists.items():
        np.testing.assert_allclose(from_positions[name], values)
    assert (positions >= depth).any() and (positions < 10).any()  # beyond the list and in the top 10
