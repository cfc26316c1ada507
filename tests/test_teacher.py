"""The teacher: SASRec and GRU kinds, causal attention, padding masked, both modes, save/reload."""

from __future__ import annotations

import numpy as np
import pytest

from edge_rec.config import TeacherConfig
from edge_rec.keras_shim import keras
from edge_rec.models import CUSTOM_OBJECTS, build_teacher

C, L = 30, 6
SMALL = TeacherConfig(hidden=16, blocks=2, heads=2, dropout=0.1)


def _histories() -> np.ndarray:
    rng = np.random.default_rng(0)
    x = rng.integers(2, C, size=(4, L)).astype(np.int32)
    x[1, :3] = 0
    x[2, :5] = 0
    return x


@pytest.mark.parametrize("kind", ["sasrec", "gru"])
def test_shapes_and_serving_mode_is_the_last_position(kind):
    cfg = TeacherConfig(kind=kind, hidden=16, blocks=1, heads=2)
    sequence = build_teacher(cfg, C, L, sequence=True)
    serving = build_teacher(cfg, C, L, sequence=False)
    serving.set_weights(sequence.get_weights())
    x = _histories()
    logits, hidden = sequence(x)
    assert logits.shape == (4, L, C) and hidden.shape == (4, L, 16)
    assert sequence.output_names == ["logits", "hidden"]
    served_logits, served_hidden = serving(x)
    np.testing.assert_allclose(served_logits.numpy(), logits.numpy()[:, -1], atol=1e-5)
    np.testing.assert_allclose(served_hidden.numpy(), hidden.numpy()[:, -1], atol=1e-5)


def test_sasrec_attention_is_causal_and_ignores_padding():
    model = build_teacher(SMALL, C, L)
    x = _histories()
    later = x.copy()
    later[:, -1] = np.where(later[:, -1] == 2, 3, 2)
    np.testing.assert_allclose(model(x)[0].numpy()[:, :-1], model(later)[0].numpy()[:, :-1], atol=1e-5)
    # The padding positions carry no information: the output at real positions does not depend
    # on the (learned) embedding of the padding row.
    table = model.get_layer("item_embedding")
    before = model(x)[0].numpy()
    weights = table.get_weights()[0].copy()
    weights[0] += 3.0
    table.set_weights([weights])
    after = model(x)[0].numpy()
    real = x != 0
    np.testing.assert_allclose(before[real], after[real], atol=1e-4)


def test_sizes_come_from_the_config():
    small = build_teacher(TeacherConfig(hidden=16, blocks=1, heads=2), C, L)
    bigger = build_teacher(TeacherConfig(hidden=16, blocks=3, heads=2), C, L)
    assert sum("attention" in layer.name and layer.__class__.__name__ == "MultiHeadAttention"
               for layer in bigger.layers) == 3
    assert bigger.count_params() > small.count_params()
    with pytest.raises(ValueError, match="divisible"):
        build_teacher(TeacherConfig(hidden=15, heads=2), C, L)


def test_saved_and_reloaded_teacher_gives_the_same_scores(tmp_path):
    model = build_teacher(SMALL, C, L)
    path = tmp_path / "teacher.keras"
    model.save(path)
    reloaded = keras.models.load_model(path, custom_objects=CUSTOM_OBJECTS)
    x = _histories()
    np.testing.assert_allclose(reloaded(x)[0].numpy(), model(x)[0].numpy(), atol=1e-5)


def test_tied_output_scores_the_hidden_state_against_the_item_table():
    cfg = TeacherConfig(hidden=16, blocks=1, heads=2, dropout=0.0, tie_output=True)
    sequence, serving = build_teacher(cfg, C, L), build_teacher(cfg, C, L, sequence=False)
    serving.set_weights(sequence.get_weights())
    untied = build_teacher(TeacherConfig(hidden=16, blocks=1, heads=2, dropout=0.0, tie_output=False), C, L)
    assert untied.count_params() - sequence.count_params() == 16 * C  # no separate output kernel
    x = _histories()
    logits, hidden = sequence(x)
    table = sequence.get_layer("item_embedding").embeddings.numpy()
    bias = sequence.get_layer("logits").bias.numpy()
    np.testing.assert_allclose(logits.numpy(), hidden.numpy() @ table.T + bias, rtol=1e-4, atol=1e-4)
    np.testing.assert_allclose(serving(x)[0].numpy(), logits.numpy()[:, -1], atol=1e-5)


def test_the_gru_teacher_keeps_its_dense_output_whatever_tie_output_says():
    model = build_teacher(TeacherConfig(kind="gru", hidden=16, blocks=1, tie_output=True), C, L)
    assert isinstance(model.get_layer("logits"), keras.layers.Dense)
