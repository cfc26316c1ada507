"""The Distiller: plain CE equivalence, frozen teacher, every loss term alive, no projection exported."""

from __future__ import annotations

import numpy as np
import pytest
from sequence_batch import padded_batch

from edge_rec.config import DistillConfig, StudentConfig, TeacherConfig
from edge_rec.distill.distiller import Distiller
from edge_rec.keras_shim import keras, set_global_seed
from edge_rec.models import build_student, build_teacher

C, L, B = 30, 6, 8
STUDENT = StudentConfig(embedding_dim=6, hidden=(8,), dropout=0.0)
TEACHER = TeacherConfig(hidden=16, blocks=1, heads=2, dropout=0.0)


def _batch(seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    return padded_batch(C, L, B, seed)


def _models():
    set_global_seed(0)
    return build_student(STUDENT, C, L), build_teacher(TEACHER, C, L)


def test_cross_entropy_alone_equals_a_plainly_compiled_student():
    student, teacher = _models()
    x, y = _batch()
    assert (y == 0).any()  # the ignore index is exercised
    distiller = Distiller(student, teacher, DistillConfig(ce_weight=1.0, kd_weight=0.0))
    distiller.compile(optimizer=keras.optimizers.SGD(0.0))
    ours = distiller.evaluate(x, y, batch_size=B, verbose=0, return_dict=True)["loss"]
    student.compile(
        optimizer="sgd",
        loss={"logits": keras.losses.SparseCategoricalCrossentropy(from_logits=True, ignore_class=0)},
    )
    plain = student.evaluate(x, {"logits": y}, batch_size=B, verbose=0, return_dict=True)["loss"]
    assert ours == pytest.approx(plain, rel=1e-5)
    # ... and without a teacher the configured weights are irrelevant: CE alone.
    alone = Distiller(student, None, DistillConfig(ce_weight=0.3))
    alone.compile(optimizer=keras.optimizers.SGD(0.0))
    assert alone.evaluate(x, y, batch_size=B, verbose=0, return_dict=True)["loss"] == pytest.approx(plain, rel=1e-5)


def test_fit_leaves_the_teacher_unchanged_and_moves_the_student():
    student, teacher = _models()
    teacher_before = [w.copy() for w in teacher.get_weights()]
    student_before = [w.copy() for w in student.get_weights()]
    x, y = _batch()
    distiller = Distiller(student, teacher, DistillConfig(ce_weight=0.5, kd_weight=0.5, hint_weight=0.5, rank_weight=0.5, ranking_top_k=3))
    distiller.compile(optimizer=keras.optimizers.Adam(1e-2))
    history = distiller.fit(x, y, batch_size=4, epochs=2, verbose=0)
    for name in ("loss", "ce", "kd", "hint", "rank"):
        assert len(history.history[name]) == 2 and np.isfinite(history.history[name]).all()
    for before, after in zip(teacher_before, teacher.get_weights(), strict=True):
        np.testing.assert_array_equal(before, after)
    changed = [not np.array_equal(b, a) for b, a in zip(student_before, student.get_weights(), strict=True)]
    assert changed[0]  # item embedding
    np.testing.assert_array_equal(student.get_layer("mask").get_weights()[0], student_before[1])  # frozen


@pytest.mark.parametrize("term", ["ce", "kd", "hint", "rank", "relation"])
def test_each_term_alone_is_finite_and_moves_the_student(term):
    student, teacher = _models()
    weights = {name: float(name == term) for name in ("ce", "kd", "hint", "rank", "relation")}
    distiller = Distiller(
        student, teacher, DistillConfig(temperature=2.0, ranking_top_k=4), term_weights=weights
    )
    distiller.compile(optimizer=keras.optimizers.SGD(0.5))
    x, y = _batch()
    before = distiller.evaluate(x, y, batch_size=B, verbose=0, return_dict=True)
    assert set(before) == {"loss", term} and np.isfinite(before["loss"]) and before["loss"] > 0
    moved = "item_embedding" if term == "relation" else "hidden"  # relation acts on item geometry only
    weights_before = student.get_layer(moved).get_weights()[0].copy()
    distiller.fit(x, y, batch_size=B, epochs=3, verbose=0, shuffle=False)
    after = distiller.evaluate(x, y, batch_size=B, verbose=0, return_dict=True)
    assert not np.array_equal(weights_before, student.get_layer(moved).get_weights()[0])
    assert after["loss"] < before["loss"]


def test_kd_term_is_zero_when_student_matches_teacher():
    student, teacher = _models()
    distiller = Distiller(teacher, teacher, DistillConfig(ce_weight=0.0, kd_weight=1.0, temperature=3.0))
    terms = distiller.loss_terms(*_batch(), training=False)
    assert float(terms["kd"]) == pytest.approx(0.0, abs=1e-5)


def test_projection_belongs_to_the_distiller_not_the_exported_student(tmp_path):
    student, teacher = _models()
    params = student.count_params()
    distiller = Distiller(student, teacher, DistillConfig(ce_weight=0.5, kd_weight=0.5, hint_weight=1.0))
    distiller.compile(optimizer=keras.optimizers.Adam(1e-2))
    distiller.fit(*_batch(), batch_size=B, epochs=1, verbose=0)
    assert distiller.projection is not None and distiller.projection.trainable_weights
    assert all("projection" not in layer.name for layer in student.layers)
    assert student.count_params() == params
    student.save(tmp_path / "student.keras")
    reloaded = keras.models.load_model(tmp_path / "student.keras")
    assert [layer.name for layer in reloaded.layers] == [layer.name for layer in student.layers]


def test_distillation_terms_without_a_teacher_are_refused():
    student, _ = _models()
    with pytest.raises(ValueError, match="no teacher"):
        Distiller(student, None, DistillConfig(), term_weights={"ce": 0.5, "kd": 0.5})


def test_relation_term_is_zero_for_the_same_item_geometry_and_positive_otherwise():
    from edge_rec.distill.losses import relation_distillation
    from edge_rec.keras_shim import tf

    rng = np.random.default_rng(0)
    table = tf.constant(rng.normal(size=(C, 16)), tf.float32)
    items = tf.constant([2, 5, 9, 11], tf.int32)
    rotation, _ = np.linalg.qr(rng.normal(size=(16, 16)))
    rotated = table @ tf.constant(rotation, tf.float32) * 3.0  # same cosines, other space and scale
    assert float(relation_distillation(table, rotated, items)) == pytest.approx(0.0, abs=1e-5)
    other = tf.constant(rng.normal(size=(C, 6)), tf.float32)  # a narrower, unrelated student space
    assert float(relation_distillation(table, other, items)) > 0.01


def test_loss_terms_are_registered_objects_with_their_own_weight_key_and_flags():
    from click.testing import CliRunner

    from edge_rec.cli import main
    from edge_rec.distill.loss_terms import LOSS_TERMS, LossTerm, register_term, term_weights

    assert list(LOSS_TERMS) == ["ce", "kd", "hint", "rank", "relation"]
    weights = term_weights(DistillConfig(ce_weight=0.2, kd_weight=0.9, relation_weight=0.1), has_teacher=True)
    assert weights == {"ce": 0.2, "kd": 0.9, "hint": 0.0, "rank": 0.0, "relation": 0.1}  # independent
    assert term_weights(DistillConfig(), has_teacher=False) == {"ce": 1.0, "kd": 0.0, "hint": 0.0, "rank": 0.0,
                                                                "relation": 0.0}

    class Toy(LossTerm):
        name, weight_key = "toy", "toy_weight"

    with pytest.raises(ValueError, match="DistillConfig has no weight key 'toy_weight'"):
        register_term(Toy())
    with pytest.raises(ValueError, match="already registered"):
        register_term(LOSS_TERMS["kd"])
    for command in ("distill", "build"):
        help_text = CliRunner().invoke(main, [command, "--help"]).output
        assert all(f"--{name}-weight" in help_text for name in LOSS_TERMS), command


def test_with_positions_per_step_a_step_weighs_each_position_alike_whatever_the_batch_holds():
    x, y = _batch()
    positions = float(np.count_nonzero(y))

    def update(per_step):
        """How one SGD train_step moves the student's output bias."""
        student, _ = _models()
        distiller = Distiller(student, None, DistillConfig(), positions_per_step=per_step)
        distiller.compile(optimizer=keras.optimizers.SGD(learning_rate=0.1))
        before = student.trainable_variables[-1].numpy().copy()
        distiller.train_step((x, y))
        return student.trainable_variables[-1].numpy() - before

    mean_step = update(None)
    assert np.abs(mean_step).max() > 0
    # dividing the step's summed loss by its own count of positions is the per-batch mean ...
    np.testing.assert_allclose(update(positions), mean_step, rtol=1e-4, atol=1e-7)
    # ... by a constant twice as large halves the step of a batch holding half the usual positions
    np.testing.assert_allclose(update(2 * positions), 0.5 * mean_step, rtol=1e-4, atol=1e-7)
    with pytest.raises(ValueError, match="positions_per_step"):
        Distiller(_models()[0], None, DistillConfig(), positions_per_step=0.0)


def test_positions_per_step_is_every_epoch_target_over_the_steps():
    from edge_rec.distill.training_input import positions_per_step, steps_per_epoch

    rows = [np.arange(2, 2 + n) for n in (2, 3, 9, 9, 4)]  # 1, 2, 5, 5, 3 targets at L = 5
    for bucketed in (False, True):
        steps = steps_per_epoch(rows, 5, 2, bucketed=bucketed)
        assert positions_per_step(rows, 5, 2, bucketed=bucketed) == pytest.approx(16 / steps)
