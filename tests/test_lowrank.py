"""Low-rank factorization of the student's output layer by truncated SVD."""

from __future__ import annotations

import numpy as np
import pytest

from edge_rec.compress.lowrank import factorize_output_layer, low_rank_report
from tests import tiny_student


@pytest.fixture(scope="module")
def student():
    return tiny_student.trained_serving_student(epochs=2)


def test_output_is_the_rank_r_approximation(student):
    factorized = factorize_output_layer(student, rank=4)
    assert factorized.output_names == ["logits", "hidden"]
    histories, _ = tiny_student.clustered_histories(16, seed=7)
    hidden = student.predict(histories, verbose=0)[1]
    kernel, bias = student.get_layer("logits").get_weights()
    u, s, vt = np.linalg.svd(kernel, full_matrices=False)
    expected = hidden @ ((u[:, :4] * s[:4]) @ vt[:4]) + bias
    logits, new_hidden = factorized.predict(histories, verbose=0)
    np.testing.assert_allclose(new_hidden, hidden, atol=1e-5)
    np.testing.assert_allclose(logits, expected, atol=1e-4)
    assert factorized.get_layer("logits_factor").get_weights()[0].shape == (16, 4)


def test_report_counts_parameters_and_error_falls_with_rank(student):
    reports = [low_rank_report(student, factorize_output_layer(student, rank)) for rank in (2, 6)]
    low, high = reports
    assert low.layer == "logits" and low.kernel_shape == (16, tiny_student.CATALOG)
    assert low.layer_params_before == 16 * 42 + 42
    assert low.layer_params_after == 2 * (16 + 42) + 42
    assert low.params_before - low.params_after == low.layer_params_before - low.layer_params_after
    assert high.relative_error < low.relative_error
    assert 0 < low.energy_kept < high.energy_kept <= 1
    assert low.param_ratio < high.param_ratio < 1


def test_source_model_is_unchanged(student):
    before = [w.copy() for w in student.get_weights()]
    factorize_output_layer(student, rank=3)
    for old, new in zip(before, student.get_weights(), strict=True):
        np.testing.assert_array_equal(old, new)


@pytest.mark.parametrize("rank", [0, 16, 12, 2.0])
def test_rank_that_cannot_shrink_the_layer_is_refused(student, rank):
    with pytest.raises(ValueError, match="lowrank.rank"):
        factorize_output_layer(student, rank=rank)
