"""Popularity rank and intra-list diversity on hand-made lists."""

from __future__ import annotations

import numpy as np
import pytest

from edge_rec.beyond_accuracy import (
    intra_list_diversity,
    item_sketches,
    popularity_rank_at_k,
    popularity_ranks,
)


def test_popularity_rank_of_the_most_popular_items():
    ranks = popularity_ranks(np.array([0, 0, 50, 40, 30, 20, 10.0]))
    assert ranks[2] == 1 and ranks[6] == 5
    ranked = np.array([[2, 3, 4], [6, 5, -1]])
    assert popularity_rank_at_k(ranked, ranks, k=3) == pytest.approx((2.0 + 4.5) / 2)


def test_diversity_is_zero_for_items_of_the_same_users_and_high_for_disjoint_users():
    # items 2 and 3 always consumed together; items 4 and 5 by disjoint groups of users
    sequences = [np.array([2, 3, 4])] * 20 + [np.array([2, 3, 5])] * 20
    sketches = item_sketches(sequences, catalog_size=6, seed=0)
    same = intra_list_diversity(np.array([[2, 3]]), sketches, k=2)
    assert same == pytest.approx(0.0, abs=1e-5)
    apart = intra_list_diversity(np.array([[4, 5]]), sketches, k=2)
    assert apart > 0.6
    assert intra_list_diversity(np.array([[2, -1]]), sketches, k=2) == 0.0  # no pair
