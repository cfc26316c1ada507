"""The averaged teacher: one model whose logits are the mean of its members', usable wherever a
teacher is (OutputHead, the Distiller, save/load)."""

from __future__ import annotations

import numpy as np
import pytest

from edge_rec.config import DistillConfig, TeacherConfig
from edge_rec.distill.distiller import Distiller
from edge_rec.keras_shim import keras
from edge_rec.models import CUSTOM_OBJECTS, build_teacher
from edge_rec.models.averaged_teacher import average_teachers
from edge_rec.models.output_head import OutputHead, item_embedding_table

C, L = 30, 6


def _members(*, tied: bool, sequence: bool = True) -> list[keras.Model]:
    members = []
    for seed, hidden in ((0, 16), (1, 8), (2, 16)):
        keras.utils.set_random_seed(seed)
        cfg = TeacherConfig(hidden=hidden, blocks=1, heads=2, dropout=0.1, tie_output=tied)
        model = build_teacher(cfg, C, L, sequence=sequence)
        # a non-zero output bias, so averaging the biases is checked too
        layer = model.get_layer("logits")
        layer.bias.assign(np.random.default_rng(seed).normal(size=C).astype(np.float32))
        members.append(model)
    return members


def _histories() -> np.ndarray:
    x = np.random.default_rng(0).integers(2, C, size=(5, L)).astype(np.int32)
    x[1, :4] = 0
    return x


@pytest.mark.parametrize("tied", [True, False])
@pytest.mark.parametrize("sequence", [True, False])
def test_logits_are_the_mean_of_the_members_and_hidden_their_concatenation(tied, sequence):
    members = _members(tied=tied, sequence=sequence)
    averaged = average_teachers(members, name="averaged")
    x = _histories()
    logits, hidden = averaged(x, training=False)
    outputs = [m(x, training=False) for m in members]
    np.testing.assert_allclose(logits.numpy(), np.mean([o[0].numpy() for o in outputs], axis=0), atol=1e-5)
    np.testing.assert_allclose(hidden.numpy(), np.concatenate([o[1].numpy() for o in outputs], axis=-1),
                               atol=1e-6)
    assert hidden.shape[-1] == 16 + 8 + 16


def test_output_head_scores_positions_and_candidates_like_the_full_model():
    averaged = average_teachers(_members(tied=True), name="averaged")
    head = OutputHead(averaged)
    assert head.split and head.can_score_candidates
    x = _histories()
    where = np.array([[0, 5], [1, 4], [3, 2]], dtype=np.int64)
    logits, _ = averaged(x, training=False)
    picked, hidden = head.at_positions(x, where, training=False)
    full = logits.numpy()[where[:, 0], where[:, 1]]
    np.testing.assert_allclose(picked.numpy(), full, atol=1e-5)
    positives = np.array([3, 7, 9])
    negatives = np.array([2, 11, 29])
    candidates = head.candidate_logits(hidden, positives, negatives).numpy()
    np.testing.assert_allclose(candidates[:, 0], full[np.arange(3), positives], atol=1e-5)
    np.testing.assert_allclose(candidates[:, 1:], full[:, negatives], atol=1e-5)


@pytest.mark.slow
def test_relation_term_reads_the_first_members_table_and_the_members_stay_frozen_in_a_distiller():
    members = _members(tied=True)
    averaged = average_teachers(members, name="averaged")
    assert item_embedding_table(averaged) is item_embedding_table(members[0])
    student = build_teacher(TeacherConfig(hidden=8, blocks=1, heads=2), C, L)
    cfg = DistillConfig(hint_weight=0.5, relation_weight=1.0)
    distiller = Distiller(student, averaged, cfg)
    distiller.compile(optimizer=keras.optimizers.Adam(1e-2))
    before = [w.numpy().copy() for w in averaged.weights]
    x = _histories()
    y = np.roll(x, -1, axis=1)
    y[:, -1] = 3
    distiller.fit(x, y, epochs=2, verbose=0)
    for old, new in zip(before, averaged.weights, strict=True):
        np.testing.assert_array_equal(old, new.numpy())


def test_saved_and_reloaded_it_gives_the_same_logits(tmp_path):
    averaged = average_teachers(_members(tied=True), name="averaged")
    averaged.save(tmp_path / "averaged.keras")
    reloaded = keras.models.load_model(tmp_path / "averaged.keras", custom_objects=CUSTOM_OBJECTS)
    x = _histories()
    np.testing.assert_allclose(reloaded(x)[0].numpy(), averaged(x)[0].numpy(), atol=1e-6)


def test_members_of_different_catalogs_are_refused():
    small = build_teacher(TeacherConfig(hidden=8, blocks=1, heads=2), C - 1, L)
    with pytest.raises(ValueError, match="members differ"):
        average_teachers([*_members(tied=True)[:1], small], name="averaged")


@pytest.mark.slow
def test_the_serving_form_converts_to_tflite_and_ranks_like_keras():
    from converters.tflite import convert_to_tflite, run_tflite

    averaged = average_teachers(_members(tied=True, sequence=False), name="averaged_serving")
    flatbuffer = convert_to_tflite(averaged, "float32", history_length=L, top_k=10)
    x = _histories()
    ids, _ = run_tflite(flatbuffer, x)
    logits = averaged(x, training=False)[0].numpy()[:, 2:]  # PAD and OOV are never recommended
    np.testing.assert_array_equal(ids[:, 0], np.argmax(logits, axis=1) + 2)


@pytest.mark.slow
def test_a_member_that_did_not_learn_is_left_out_of_the_average():
    from edge_rec import stages
    from edge_rec.config import DataConfig, FitConfig

    data = stages.prepare_data(DataConfig(source="synthetic-tv", synthetic_users=300, synthetic_items=60,
                                          history_length=L), seed=0)
    cfg = TeacherConfig(hidden=16, blocks=1, heads=2, members=1, fit=FitConfig(epochs=3, batch_size=32))
    good = stages.train_teacher(data, cfg, seed=0, quiet=True).serving_model
    bad = keras.models.clone_model(good)
    bad.set_weights(good.get_weights())
    noise = np.random.default_rng(0).normal(scale=100.0, size=data.catalog_size).astype(np.float32)
    bad.get_layer("logits").bias.assign(noise)  # ranks by noise: as good as random
    assert stages._members_to_average([bad, good], data)[0] == (1,)
    assert stages._members_to_average([good, good], data)[0] == (0,)  # no gain from a copy: fewer wins
