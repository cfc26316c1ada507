"""The int8-friendly student: allowed layers only, causal vs serving pooling, save/reload, warm start."""

from __future__ import annotations

import numpy as np
import pytest

from edge_rec.config import StudentConfig, TeacherConfig
from edge_rec.keras_shim import keras
from edge_rec.models import CUSTOM_OBJECTS, build_student, build_teacher, student_serving_model
from edge_rec.models.warm_start import pca_project, warm_start_student

C, L = 40, 6


def _histories(rows: int = 5, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    x = rng.integers(2, C, size=(rows, L)).astype(np.int32)
    for r in range(rows):
        x[r, : r % L] = 0  # left padding of varying length
    return x


def _randomize_pooling(model: keras.Model, seed: int = 1) -> None:
    rng = np.random.default_rng(seed)
    for pooling in (layer for layer in model.layers if layer.__class__.__name__ == "SequencePooling"):
        if pooling.weights:
            pooling.set_weights([rng.normal(size=L).astype(np.float32)])


def test_student_uses_only_int8_friendly_layers_and_only_embeddings_read_ids():
    model = build_student(StudentConfig(), C, L, sequence=False)
    kinds = {layer.__class__.__name__ for layer in model.layers}
    assert kinds <= {"InputLayer", "Embedding", "SequencePooling", "Concatenate", "Dropout", "Dense"}
    readers = [node.layer for node in model.get_layer("history")._outbound_nodes]
    assert sorted(layer.name for layer in readers) == ["item_embedding", "mask"]
    assert model.output_names == ["logits", "hidden"]
    mask = model.get_layer("mask")
    assert not mask.trainable
    table = mask.get_weights()[0]
    assert table.shape == (C, 1) and table[0, 0] == 0.0 and np.all(table[1:] == 1.0)


@pytest.mark.parametrize("pooling", ["mean", "position"])
def test_sequence_last_position_equals_serving_output(pooling):
    cfg = StudentConfig(embedding_dim=8, hidden=(12,), pooling=pooling)
    sequence = build_student(cfg, C, L, sequence=True)
    _randomize_pooling(sequence)
    serving = student_serving_model(sequence, cfg, C, L)
    x = _histories()
    seq_logits, seq_hidden = sequence(x, training=False)
    logits, hidden = serving(x, training=False)
    assert seq_logits.shape == (5, L, C) and logits.shape == (5, C)
    np.testing.assert_allclose(seq_logits.numpy()[:, -1], logits.numpy(), atol=1e-5)
    np.testing.assert_allclose(seq_hidden.numpy()[:, -1], hidden.numpy(), atol=1e-5)


def test_sequence_mode_is_causal():
    cfg = StudentConfig(embedding_dim=8, hidden=(12,))
    model = build_student(cfg, C, L, sequence=True)
    x = _histories(rows=2)
    changed = x.copy()
    changed[:, -1] = (changed[:, -1] + 1 - 2) % (C - 2) + 2
    before, after = model(x)[0].numpy(), model(changed)[0].numpy()
    np.testing.assert_allclose(before[:, :-1], after[:, :-1], atol=1e-6)
    assert not np.allclose(before[:, -1], after[:, -1])


def test_mean_pooling_is_the_plain_masked_mean():
    cfg = StudentConfig(embedding_dim=8, hidden=(), pooling="mean")
    model = build_student(cfg, C, L, sequence=False)
    x = _histories()
    table = model.get_layer("item_embedding").get_weights()[0]
    expected = np.stack([table[row[row != 0]].mean(axis=0) for row in x])
    np.testing.assert_allclose(model(x)[1].numpy(), expected, atol=1e-6)


def test_learned_position_pooling_is_the_weighted_mean_and_zero_for_all_padding():
    # the serving pooling multiplies by rsqrt(denominator) twice (no Div: tflite-runtime 2.14 has
    # no int8 DIV); it must equal the plain weighted mean in float
    cfg = StudentConfig(embedding_dim=8, hidden=(), pooling="position")
    model = build_student(cfg, C, L, sequence=False)
    _randomize_pooling(model)
    x = np.concatenate([_histories(6), np.zeros((1, L), np.int32)])
    table = model.get_layer("item_embedding").get_weights()[0]
    pooling = next(layer for layer in model.layers if layer.__class__.__name__ == "SequencePooling")
    weights = pooling.distance_weights().numpy()[::-1]
    expected = np.stack([(table[row] * (weights * (row != 0))[:, None]).sum(0)
                         / max((weights * (row != 0)).sum(), 1e-30) for row in x])
    pooled = model(x)[1].numpy()
    np.testing.assert_allclose(pooled, expected, rtol=1e-5, atol=1e-6)
    assert np.all(pooled[-1] == 0.0) and np.isfinite(pooled).all()


def test_negative_decays_are_refused():
    with pytest.raises(ValueError, match="initial_decay"):
        build_student(StudentConfig(initial_decay=-1.0), C, L)


def test_saved_and_reloaded_student_gives_the_same_scores(tmp_path):
    cfg = StudentConfig(embedding_dim=8, hidden=(12,))
    model = build_student(cfg, C, L, sequence=False)
    _randomize_pooling(model)
    path = tmp_path / "model.keras"
    model.save(path)
    reloaded = keras.models.load_model(path, custom_objects=CUSTOM_OBJECTS)
    x = _histories()
    np.testing.assert_allclose(reloaded(x)[0].numpy(), model(x)[0].numpy(), atol=1e-6)
    clone = keras.models.clone_model(model)  # rebuilt from config, as TF-MOT does
    clone.set_weights(model.get_weights())
    np.testing.assert_allclose(clone(x)[0].numpy(), model(x)[0].numpy(), atol=1e-6)


def test_pca_projection_keeps_the_leading_components():
    rng = np.random.default_rng(0)
    basis = rng.normal(size=(2, 10))
    table = rng.normal(size=(50, 2)) * [5.0, 2.0] @ basis + 0.001 * rng.normal(size=(50, 10))
    projected = pca_project(table, 2)
    centred = table - table.mean(axis=0)
    # two components reproduce almost all the variance, and distances are preserved
    assert projected.shape == (50, 2)
    assert np.var(projected, axis=0).sum() / np.var(centred, axis=0).sum() > 0.999
    assert np.linalg.norm(projected[0] - projected[1]) == pytest.approx(
        np.linalg.norm(centred[0] - centred[1]), rel=1e-3
    )


def test_warm_start_copies_the_teacher_geometry_and_checks_the_catalog():
    teacher = build_teacher(TeacherConfig(hidden=16, blocks=1, heads=2), C, L)
    student = build_student(StudentConfig(embedding_dim=4, hidden=(8,)), C, L)
    warm_start_student(student, teacher)
    source = teacher.get_layer("item_embedding").get_weights()[0]
    target = student.get_layer("item_embedding").get_weights()[0]
    expected = pca_project(source, 4)
    # the same up to the global rescaling
    scale = np.linalg.norm(target) / np.linalg.norm(expected)
    np.testing.assert_allclose(target, expected * scale, atol=1e-5)
    other = build_student(StudentConfig(embedding_dim=4, hidden=(8,)), C + 1, L)
    with pytest.raises(ValueError, match="same vocabulary"):
        warm_start_student(other, teacher)


def test_tied_output_scores_against_the_item_embedding_table(tmp_path):
    cfg = StudentConfig(embedding_dim=8, hidden=(8,), tie_output=True)
    sequence = build_student(cfg, C, L, sequence=True)
    _randomize_pooling(sequence)
    bias = sequence.get_layer("logits")
    bias.set_weights([np.random.default_rng(3).normal(size=C).astype(np.float32)])
    serving = student_serving_model(sequence, cfg, C, L)
    x = _histories()
    logits, hidden = serving(x, training=False)
    table = serving.get_layer("item_embedding").get_weights()[0]
    expected = hidden.numpy() @ table.T + bias.get_weights()[0]
    np.testing.assert_allclose(logits.numpy(), expected, rtol=1e-5, atol=1e-5)
    seq_logits, _ = sequence(x, training=False)
    np.testing.assert_allclose(seq_logits.numpy()[:, -1], logits.numpy(), atol=1e-5)
    # the output costs one bias per item, not a second C x E matrix
    untied = build_student(StudentConfig(embedding_dim=8, hidden=(8,)), C, L, sequence=False)
    assert untied.count_params() - serving.count_params() == 8 * C
    serving.save(tmp_path / "tied.keras")
    reloaded = keras.models.load_model(tmp_path / "tied.keras", custom_objects=CUSTOM_OBJECTS)
    np.testing.assert_allclose(reloaded(x)[0].numpy(), logits.numpy(), atol=1e-6)


def test_tied_output_needs_the_last_hidden_width_to_match_the_embedding():
    with pytest.raises(ValueError, match=r"hidden = \[16\]"):
        build_student(StudentConfig(embedding_dim=16, hidden=(12,), tie_output=True), C, L)
    model = build_student(StudentConfig(embedding_dim=6, hidden=(), tie_output=True), C, L, sequence=False)
    assert model.outputs[0].shape[-1] == C
