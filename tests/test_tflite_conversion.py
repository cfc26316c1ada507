"""Keras serving model -> TFLite variants: signature, ops, weight dtypes, ranking agreement."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from converters.tflite import (
    VARIANTS,
    ConversionError,
    convert_to_tflite,
    describe_tflite,
    run_tflite,
)
from edge_rec.models import build_student
from tests import tiny_student

L, C, K = tiny_student.HISTORY, tiny_student.CATALOG, 12


@pytest.fixture(scope="module")
def student():
    return tiny_student.trained_serving_student(epochs=4)


@pytest.fixture(scope="module")
def calibration():
    return tiny_student.clustered_histories(64, seed=11)[0]


@pytest.fixture(scope="module")
def converted(student, calibration):
    return {
        variant: convert_to_tflite(
            student, variant, history_length=L, top_k=K, representative_histories=calibration
        )
        for variant in VARIANTS
    }


def keras_top(model, histories, k):
    logits = model.predict(histories, verbose=0)[0][:, 2:]
    return np.argsort(-logits, axis=1, kind="stable")[:, :k] + 2


@pytest.mark.parametrize("variant", VARIANTS)
def test_signature_is_as_documented(converted, variant):
    info = describe_tflite(converted[variant])
    assert info.signatures == {"serving_default": {"inputs": ["history"], "outputs": ["top_ids", "top_scores"]}}
    assert info.inputs == {"history": ((1, L), "int32")}
    assert info.outputs == {"top_ids": ((1, K), "int32"), "top_scores": ((1, K), "float32")}
    assert "TOPK_V2" in info.ops


@pytest.mark.parametrize("variant", VARIANTS)
def test_every_variant_runs_and_ranks_like_keras(converted, student, variant):
    histories = tiny_student.eval_set(40, seed=2).histories
    ids, scores = run_tflite(converted[variant], histories)
    assert ids.shape == (40, K) and ids.dtype == np.int32 and scores.dtype == np.float32
    assert ids.min() >= 2 and ids.max() < C
    assert np.all(np.diff(scores, axis=1) <= 0)
    expected = keras_top(student, histories, 10)
    overlap = np.mean([len(set(a[:10]) & set(b)) / 10 for a, b in zip(ids, expected, strict=True)])
    assert overlap >= (0.99 if variant in ("float32", "float16") else 0.8), overlap


@pytest.mark.parametrize("variant", VARIANTS)
def test_every_variant_runs_on_an_all_padding_history(converted, variant):
    ids, scores = run_tflite(converted[variant], np.zeros((2, L), np.int32))
    assert ids.min() >= 2 and ids.max() < C and np.all(np.isfinite(scores))
    assert len(set(ids[0])) == K


def test_weight_dtypes_per_variant(converted):
    weights = {v: set(describe_tflite(converted[v]).weight_dtypes.values()) for v in VARIANTS}
    assert weights["float32"] == {"float32"}
    assert "float16" in weights["float16"]
    assert weights["dynamic"] == {"float32"}  # below the converter's 1024-element threshold
    assert weights["int8"] == {"int8"}, weights["int8"]
    tensors = describe_tflite(converted["int8"]).tensor_dtypes
    assert "int8" in tensors.values()


def test_dynamic_variant_stores_large_weights_as_int8():
    catalog = 130  # logits kernel 16 x 130 and embedding 130 x 8 exceed the 1024-element threshold
    model = build_student(tiny_student.STUDENT_CFG, catalog, L, sequence=False)
    info = describe_tflite(convert_to_tflite(model, "dynamic", history_length=L, top_k=10))
    large = {name: dtype for name, dtype in info.weight_dtypes.items() if "logits" in name or "item_embedding" in name}
    assert large and set(large.values()) == {"int8"}, info.weight_dtypes
    assert "float32" in info.tensor_dtypes.values()  # activations stay float


def test_tied_student_converts_with_the_table_folded_into_constants(calibration):
    cfg = dataclasses.replace(tiny_student.STUDENT_CFG, embedding_dim=8, hidden=(8,), tie_output=True)
    model = tiny_student.trained_serving_student(epochs=4, cfg=cfg)
    histories = tiny_student.eval_set(40, seed=2).histories
    expected = keras_top(model, histories, 10)
    for variant in ("float32", "int8"):
        data = convert_to_tflite(model, variant, history_length=L, top_k=K, representative_histories=calibration)
        info = describe_tflite(data)
        # the catalog-ids lookup is folded: no RANGE op, one id GATHER per id-reading Embedding
        assert "RANGE" not in info.ops and info.ops.count("GATHER") == 2, info.ops
        assert info.ops.count("FULLY_CONNECTED") == 2, info.ops
        if variant == "int8":
            assert set(info.weight_dtypes.values()) == {"int8"}, info.weight_dtypes
        ids, _ = run_tflite(data, histories)
        overlap = np.mean([len(set(a[:10]) & set(b)) / 10 for a, b in zip(ids, expected, strict=True)])
        assert overlap >= (0.99 if variant == "float32" else 0.8), (variant, overlap)


def test_pad_and_oov_are_never_recommended_even_when_they_score_highest(calibration):
    model = tiny_student.build_serving_student(seed=3)
    kernel, bias = model.get_layer("logits").get_weights()
    bias[:2] = 50.0
    model.get_layer("logits").set_weights([kernel, bias])
    raw_top = np.argmax(model.predict(calibration[:4], verbose=0)[0], axis=1)
    assert set(raw_top) <= {0, 1}
    for variant in ("float32", "int8"):
        data = convert_to_tflite(model, variant, history_length=L, top_k=C - 2, representative_histories=calibration)
        ids, _ = run_tflite(data, calibration[:4])
        assert sorted(ids[0]) == list(range(2, C)), variant


def test_sparsity_encoding_converts_and_runs(student, calibration):
    dense = convert_to_tflite(student, "float32", history_length=L, top_k=K)
    sparse = convert_to_tflite(student, "float32", history_length=L, top_k=K, sparsity_encoding=True)
    histories = calibration[:8]
    np.testing.assert_array_equal(run_tflite(dense, histories)[0], run_tflite(sparse, histories)[0])
    int8 = convert_to_tflite(
        student, "int8", history_length=L, top_k=K, representative_histories=calibration, sparsity_encoding=True
    )
    assert run_tflite(int8, histories)[0].shape == (8, K)


def test_errors_name_what_was_expected(student, calibration):
    with pytest.raises(ConversionError, match="variant: expected one of"):
        convert_to_tflite(student, "int4", history_length=L, top_k=K)
    with pytest.raises(ConversionError, match="representative_histories: the int8 variant needs"):
        convert_to_tflite(student, "int8", history_length=L, top_k=K)
    with pytest.raises(ConversionError, match=r"representative_histories: item indices must lie in \[0, 41\]"):
        convert_to_tflite(student, "int8", history_length=L, top_k=K, representative_histories=calibration + C)
    with pytest.raises(ConversionError, match="top_k: expected an integer in"):
        convert_to_tflite(student, "float32", history_length=L, top_k=C)
    with pytest.raises(ConversionError, match="expected \\(None, 7\\)"):
        convert_to_tflite(student, "float32", history_length=L + 1, top_k=K)
    sequence = build_student(tiny_student.STUDENT_CFG, C, L, sequence=True)
    with pytest.raises(ConversionError, match="student_serving_model"):
        convert_to_tflite(sequence, "float32", history_length=L, top_k=K)
