"""Keras vs TFLite parity through the interpreter, and the threshold that fails a build."""

from __future__ import annotations

import dataclasses

import pytest

from converters.parity import (
    ParityError,
    ParityResult,
    check_parity,
    require_parity,
)
from converters.tflite import convert_to_tflite
from converters.tflite_evaluation import evaluate_tflite
from device_runtime.metrics import evaluate_ranked, rank_scores
from tests import tiny_student

L, C = tiny_student.HISTORY, tiny_student.CATALOG


@pytest.fixture(scope="module")
def student():
    return tiny_student.trained_serving_student(epochs=4)


@pytest.fixture(scope="module")
def eval_set():
    return tiny_student.eval_set(40, seed=2)


def convert(model, variant):
    calibration = tiny_student.clustered_histories(64, seed=11)[0]
    return convert_to_tflite(model, variant, history_length=L, top_k=20, representative_histories=calibration)


def test_float32_is_in_full_parity_and_ndcg_matches_the_shared_metrics(student, eval_set):
    result = check_parity(student, convert(student, "float32"), eval_set, C)
    assert result.users == 40 and result.k == 10
    assert result.top10_overlap == pytest.approx(1.0) and result.min_overlap == pytest.approx(1.0)
    logits = student.predict(eval_set.histories, verbose=0)[0]
    expected = evaluate_ranked(rank_scores(logits, eval_set.seen), eval_set.targets, C)
    assert result.keras_ndcg == pytest.approx(expected["ndcg@10"])
    assert result.tflite_ndcg == pytest.approx(result.keras_ndcg, abs=1e-6)
    assert result.keras_ndcg > 0.1  # the tiny model learned the clusters


def test_int8_agrees_on_the_tiny_model(student, eval_set):
    result = check_parity(student, convert(student, "int8"), eval_set, C)
    assert result.top10_overlap >= 0.8
    assert require_parity(result, 0.8) is result
    assert abs(result.tflite_ndcg - result.keras_ndcg) <= 0.1


def test_a_different_model_fails_parity_with_a_clear_message(student, eval_set):
    other = tiny_student.build_serving_student(seed=9)  # untrained: ranks unrelated items
    result = check_parity(student, convert(other, "float32"), eval_set, C)
    assert result.top10_overlap < 0.6
    with pytest.raises(ParityError, match=r"int8 TFLite model's top-10 agrees .* \(threshold 0\.80\)"):
        require_parity(result, 0.8)


def test_result_is_frozen_and_threshold_is_checked():
    result = ParityResult(top10_overlap=0.9, keras_ndcg=0.2, tflite_ndcg=0.19, users=3)
    with pytest.raises(dataclasses.FrozenInstanceError):
        result.users = 4
    with pytest.raises(ValueError, match="expected a number in"):
        require_parity(result, 1.5)


def test_mismatched_catalog_is_refused(student, eval_set):
    with pytest.raises(ValueError, match="catalog_size"):
        check_parity(student, b"", eval_set, C + 1)


def test_evaluate_tflite_top10_equals_the_parity_tflite_metrics(student, eval_set):
    """Seen items (<= 6) never exhaust the graph's top-20, so the served top-10 is the graph's
    and the report's @10 metrics equal parity's; only MRR may differ (fill beyond position 14)."""
    tflite = convert(student, "int8")
    popularity = list(range(C - 1, 1, -1))
    metrics = evaluate_tflite(tflite, eval_set, C, popularity_order=popularity)
    result = check_parity(student, tflite, eval_set, C)
    for key in ("hr@10", "ndcg@10", "coverage@10", "users"):
        assert metrics[key] == result.tflite_metrics[key], key
    assert metrics["mrr"] >= result.tflite_metrics["mrr"]  # the fill can only add found targets
    assert metrics["ndcg@10"] > 0.1  # the int8 model learned the clusters


def test_keras_side_is_ranked_chunk_by_chunk_with_the_same_result(student, eval_set, monkeypatch):
    tflite = convert(student, "int8")
    whole = check_parity(student, tflite, eval_set, C)
    chunks = []
    monkeypatch.setattr("converters.parity.scoring_rows", lambda catalog: chunks.append(catalog) or 7)
    chunked = check_parity(student, tflite, eval_set, C)
    assert chunks == [C]  # 40 users scored 7 at a time, never the whole [users, catalog] matrix
    assert chunked == whole
