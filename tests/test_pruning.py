"""TF-MOT magnitude pruning of the student: wrapping, schedule, achieved sparsity, stripping."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from edge_rec.compress.pruning import (
    is_prunable,
    overall_sparsity,
    prune_student,
    pruning_callbacks,
    pruning_schedule,
    sparsity_levels,
    sparsity_report,
    strip_pruning,
)
from edge_rec.config import FitConfig, PruneConfig
from edge_rec.keras_shim import keras
from tests import tiny_student

STEPS_PER_EPOCH = 8  # 512 rows / batch 64


@pytest.fixture(scope="module")
def pruned_and_stripped():
    source = tiny_student.build_serving_student(seed=0)
    before = [w.copy() for w in source.get_weights()]
    cfg = PruneConfig(target_sparsity=0.5, frequency=2, min_weights=0, fit=FitConfig(epochs=2, batch_size=64))
    wrapped = prune_student(source, cfg, STEPS_PER_EPOCH)
    tiny_student.fit_last_position(wrapped, epochs=2, callbacks=pruning_callbacks())
    return source, before, wrapped, strip_pruning(wrapped)


def test_every_pruned_layer_reaches_target_within_two_points(pruned_and_stripped):
    _source, _before, _wrapped, stripped = pruned_and_stripped
    report = sparsity_report(stripped)
    assert set(report) == {"item_embedding", "hidden", "logits"}
    for layer, sparsity in report.items():
        assert abs(sparsity - 0.5) <= 0.02, (layer, sparsity)
    assert abs(overall_sparsity(stripped) - 0.5) <= 0.02


def test_mask_embedding_and_source_model_are_untouched(pruned_and_stripped):
    source, before, _wrapped, stripped = pruned_and_stripped
    mask = stripped.get_layer("mask").get_weights()[0]
    expected = np.ones_like(mask)
    expected[0] = 0.0
    np.testing.assert_array_equal(mask, expected)
    for old, new in zip(before, source.get_weights(), strict=True):
        np.testing.assert_array_equal(old, new)
    assert sparsity_report(source)["logits"] < 0.01


def test_stripped_model_is_plain_keras_with_same_outputs(pruned_and_stripped):
    _source, _before, wrapped, stripped = pruned_and_stripped
    assert not any(isinstance(layer, keras.layers.Wrapper) for layer in stripped.layers)
    assert stripped.output_names == ["logits", "hidden"]
    histories, _ = tiny_student.clustered_histories(16, seed=5)
    np.testing.assert_allclose(
        wrapped.predict(histories, verbose=0)[0], stripped.predict(histories, verbose=0)[0], atol=1e-5
    )


def test_tied_student_prunes_the_shared_table_once_and_keeps_the_tie():
    cfg = dataclasses.replace(tiny_student.STUDENT_CFG, hidden=(8,), tie_output=True)
    prune_cfg = PruneConfig(target_sparsity=0.5, frequency=2, min_weights=0, fit=FitConfig(epochs=2, batch_size=64))
    wrapped = prune_student(tiny_student.build_serving_student(seed=0, cfg=cfg), prune_cfg, STEPS_PER_EPOCH)
    tiny_student.fit_last_position(wrapped, epochs=2, callbacks=pruning_callbacks())
    stripped = strip_pruning(wrapped)
    report = sparsity_report(stripped)
    assert set(report) == {"item_embedding", "hidden"}  # the tied output has no kernel of its own
    assert abs(report["item_embedding"] - 0.5) <= 0.02
    histories, _ = tiny_student.clustered_histories(16, seed=5)
    logits, hidden = stripped.predict(histories, verbose=0)
    table = stripped.get_layer("item_embedding").get_weights()[0]
    bias = stripped.get_layer("logits").get_weights()[0]
    np.testing.assert_allclose(logits, hidden @ table.T + bias, rtol=1e-4, atol=1e-4)


def test_is_prunable_skips_frozen_one_column_embedding():
    model = tiny_student.build_serving_student()
    assert not is_prunable(model.get_layer("mask"))
    assert is_prunable(model.get_layer("item_embedding"))
    assert is_prunable(model.get_layer("logits"))
    assert not is_prunable(model.get_layer("pooling"))


def test_ladder_levels_are_evenly_spaced_up_to_the_target():
    assert sparsity_levels(PruneConfig(target_sparsity=0.5, fit=FitConfig(epochs=5))) == (0.1, 0.2, 0.3, 0.4, 0.5)
    assert sparsity_levels(PruneConfig(target_sparsity=0.6, initial_sparsity=0.2, fit=FitConfig(epochs=2))) == (0.4, 0.6)
    with pytest.raises(ValueError, match="initial <= target"):
        sparsity_levels(PruneConfig(target_sparsity=0.2, initial_sparsity=0.3))


def test_each_epoch_ramps_to_its_level_then_holds_the_masks():
    schedule = pruning_schedule(PruneConfig(target_sparsity=0.6, frequency=2, fit=FitConfig(epochs=3)), 10)
    steps = {step: schedule(step) for step in range(30)}
    sparsity = {step: float(value.numpy()) for step, (_, value) in steps.items()}
    pruned_at = [step for step, (flag, _) in steps.items() if bool(flag.numpy())]
    # epoch 1 ramps 0 -> 0.2 over its first 5 steps, epoch 2 0.2 -> 0.4, epoch 3 0.4 -> 0.6
    assert pruned_at == [0, 2, 4, 5, 10, 12, 14, 15, 20, 22, 24, 25]
    assert sparsity[5] == pytest.approx(0.2) and sparsity[9] == pytest.approx(0.2)
    assert sparsity[12] == pytest.approx(0.28) and sparsity[15] == pytest.approx(0.4)
    assert sparsity[29] == pytest.approx(0.6)
    with pytest.raises(ValueError, match="steps_per_epoch"):
        pruning_schedule(PruneConfig(), steps_per_epoch=0)


def test_prune_student_rejects_a_model_without_prunable_layers():
    ids = keras.Input((3,), dtype="int32", name="history")
    model = keras.Model(ids, keras.layers.Embedding(5, 1, trainable=False, name="mask")(ids))
    with pytest.raises(ValueError, match="no trainable Dense or Embedding"):
        prune_student(model, PruneConfig(), steps_per_epoch=10)


def test_layers_below_min_weights_stay_dense():
    source = tiny_student.build_serving_student(seed=0)
    hidden = source.get_layer("hidden").count_params()
    logits = source.get_layer("logits").count_params()
    assert hidden < logits
    cfg = PruneConfig(target_sparsity=0.5, frequency=2, min_weights=hidden + 1, fit=FitConfig(epochs=2, batch_size=64))
    wrapped = prune_student(source, cfg, STEPS_PER_EPOCH)
    tiny_student.fit_last_position(wrapped, epochs=2, callbacks=pruning_callbacks())
    report = sparsity_report(strip_pruning(wrapped))
    assert report["hidden"] < 0.01
    assert abs(report["logits"] - 0.5) <= 0.02
    with pytest.raises(ValueError, match="prune.min_weights"):
        prune_student(source, dataclasses.replace(cfg, min_weights=10**9), STEPS_PER_EPOCH)
