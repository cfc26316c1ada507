"""Paired bootstrap ratio: the point estimate, interval coverage, pairing, and bad input."""

from __future__ import annotations

import numpy as np
import pytest

from edge_rec.paired_bootstrap import paired_ratio


def test_a_clear_gain_is_better_and_noise_is_the_same():
    rng = np.random.default_rng(0)
    base = rng.random(2000)
    better = paired_ratio(base * 1.3, base, names=("big", "small"))
    assert better.ratio == pytest.approx(1.3) and better.verdict == "better"
    assert better.low < 1.3 + 1e-9 and better.high > 1.3 - 1e-9
    noise = paired_ratio(rng.random(2000), rng.random(2000))
    assert noise.low < 1.0 < noise.high and noise.verdict == "same"
    worse = paired_ratio(base * 0.5, base)
    assert worse.verdict == "worse" and worse.high < 1.0


def test_pairing_narrows_the_interval():
    rng = np.random.default_rng(1)
    users = rng.exponential(size=3000)  # users differ a lot; the models differ a little
    a = users * 1.05
    paired = paired_ratio(a, users)
    unpaired = paired_ratio(a, rng.permutation(users))
    assert paired.high - paired.low < (unpaired.high - unpaired.low) / 5


def test_bad_input_is_refused():
    with pytest.raises(ValueError, match="same users"):
        paired_ratio(np.ones(3), np.ones(4))
    with pytest.raises(ValueError, match="every user"):
        paired_ratio(np.ones(3), np.zeros(3))
