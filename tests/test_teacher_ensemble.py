"""The ensemble teacher: EASE in closed form and cross-fitted, BlendedLogits in both modes and on
candidates (with and without out-of-fold matrices), the validation-chosen weight, distillation
from it, and saving it."""

from __future__ import annotations

import numpy as np
import pytest
from sequence_batch import padded_batch

from edge_rec.config import DistillConfig, StudentConfig, TeacherConfig
from edge_rec.distill.distiller import Distiller
from edge_rec.distill.negative_sampler import NegativeSampler
from edge_rec.distill.teacher_ensemble import blend_teacher, choose_item_item_weight
from edge_rec.distill.training import score_model
from edge_rec.distill.training_input import sequence_batches
from edge_rec.keras_shim import keras, set_global_seed, tf
from edge_rec.model_store import find_saved_model, load_saved_model, save_model_pair
from edge_rec.models import build_student, build_teacher
from edge_rec.models.ease import fit_item_item, history_scores, item_item_fit_bytes
from edge_rec.models.item_item_folds import (
    fit_out_of_fold,
    out_of_fold_bytes,
    row_folds,
    training_row_folds,
)
from edge_rec.models.output_head import OutputHead

C, L, B = 40, 6, 8


def _sequences(users: int = 200, seed: int = 0) -> list[np.ndarray]:
    rng = np.random.default_rng(seed)
    return [rng.choice(np.arange(2, C - 3), size=rng.integers(3, 12), replace=False) for _ in range(users)]


def _batch(seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    return padded_batch(C, L, B, seed)


def _ensemble(weight: float = 0.7, folds: int = 0, tie_output: bool = False):
    """(base models, blended models, full matrix, out-of-fold matrices or None), random matrices."""
    set_global_seed(0)
    cfg = TeacherConfig(hidden=16, blocks=1, heads=2, dropout=0.0, tie_output=tie_output)
    sequence, serving = build_teacher(cfg, C, L), build_teacher(cfg, C, L, sequence=False)
    serving.set_weights(sequence.get_weights())
    rng = np.random.default_rng(1)
    matrices = rng.normal(size=(1 + folds, C, C)).astype(np.float16)
    matrices[:, 0] = 0  # PAD contributes nothing, as in a fitted model
    out_of_fold = matrices[1:] if folds else None
    blended = blend_teacher(sequence, serving, matrices[0], weight, out_of_fold)
    return (sequence, serving), blended, matrices[0].astype(np.float32), out_of_fold


def _running_rows(x: np.ndarray, matrix: np.ndarray, out_of_fold: np.ndarray | None) -> np.ndarray:
    """What sequence mode adds at each position: the running sum of the rows of the history, from
    the full matrix or from each row's out-of-fold matrix."""
    if out_of_fold is None:
        return np.cumsum(matrix[x], axis=1)
    fold = x.astype(np.int64).sum(axis=1) % out_of_fold.shape[0]
    return np.cumsum(out_of_fold.astype(np.float32)[fold[:, None], x], axis=1)


def test_ease_is_the_closed_form_ridge_solution_with_a_zero_diagonal():
    sequences = _sequences()
    matrix = fit_item_item(sequences, C, l2=10.0)
    assert matrix.dtype == np.float16 and matrix.shape == (C, C)
    users = np.zeros((len(sequences), C))
    for u, s in enumerate(sequences):
        users[u, s] = 1
    precision = np.linalg.inv(users.T @ users + 10.0 * np.eye(C))
    expected = -precision / np.diag(precision)[None, :]
    np.fill_diagonal(expected, 0)
    absent = ~users.any(axis=0)
    assert absent[[0, 1, C - 1]].all()  # PAD, OOV and the never-used tail
    expected[absent] = 0
    expected[:, absent] = 0
    np.testing.assert_allclose(matrix.astype(np.float64), expected, atol=2e-4)
    assert item_item_fit_bytes(C) == 6 * C * C
    with pytest.raises(ValueError, match="l2"):
        fit_item_item(sequences, C, l2=0.0)


def test_history_scores_sum_the_rows_of_the_history():
    matrix = np.arange(C * C, dtype=np.float16).reshape(C, C) / 1000
    matrix[0] = 0
    histories = np.array([[0, 0, 3, 5], [2, 2, 9, 1]])
    np.testing.assert_allclose(history_scores(matrix, histories),
                               [matrix[3] + matrix[5], 2 * matrix[2] + matrix[9] + matrix[1]], rtol=1e-3)


def test_training_rows_fold_by_the_rule_the_fit_uses():
    sequences = _sequences(users=50)
    folds = training_row_folds(sequences, L, 3)
    assert folds.shape == (50,) and set(folds) == {0, 1, 2}
    inputs, _ = next(iter(sequence_batches(sequences, L, batch_size=50, seed=0)))
    order = [next(u for u, s in enumerate(sequences) if np.array_equal(s[:-1][-L:], row[row > 0]))
             for row in inputs.numpy()]
    np.testing.assert_array_equal(row_folds(inputs, 3).numpy(), folds[order])  # in the graph, as in numpy
    with pytest.raises(ValueError, match="folds"):
        row_folds(inputs, 1)


def test_each_out_of_fold_matrix_is_fitted_without_its_fold():
    sequences = [*_sequences(), np.array([C - 3, C - 2, 2, 3])]  # the only user of items C-3, C-2
    folds = training_row_folds(sequences, L, 2)
    out_of_fold = fit_out_of_fold(sequences, C, 10.0, history_length=L, folds=2)
    assert out_of_fold.shape == (2, C, C) and out_of_fold.dtype == np.float16
    for k in range(2):
        others = [s for s, f in zip(sequences, folds, strict=True) if f != k]
        np.testing.assert_array_equal(out_of_fold[k], fit_item_item(others, C, 10.0))
    # what only that user consumed is learnt by the full fit and the other fold's, never by its own
    full, own = fit_item_item(sequences, C, 10.0), folds[-1]
    assert full[C - 3, C - 2] > 0 and out_of_fold[1 - own, C - 3, C - 2] > 0
    assert out_of_fold[own, C - 3, C - 2] == 0
    assert out_of_fold_bytes(C, 2) == 2 * 2 * C * C


@pytest.mark.parametrize(("folds", "tie_output"), [(0, False), (3, False), (0, True)])
def test_blended_logits_add_the_weighted_history_rows_in_both_modes(folds, tie_output):
    (sequence, serving), (blended_sequence, blended_serving), matrix, out_of_fold = _ensemble(0.7, folds, tie_output)
    x, _ = _batch()
    base_logits = sequence(x)[0].numpy()
    logits = blended_sequence(x)[0].numpy()
    running = _running_rows(x, matrix, out_of_fold)  # position t: rows of x[:, :t+1]
    np.testing.assert_allclose(logits, base_logits + 0.7 * running, rtol=1e-4, atol=1e-3)
    # serving (every evaluation) reads the full fit, whatever the training labels read
    serving_logits = base_logits[:, -1] + 0.7 * matrix[x].sum(axis=1)
    np.testing.assert_allclose(blended_serving(x)[0].numpy(), serving_logits, rtol=1e-4, atol=1e-3)
    np.testing.assert_allclose(score_model(blended_serving, x), serving_logits, rtol=1e-4, atol=1e-3)
    assert sequence(x)[0].numpy() == pytest.approx(base_logits)  # the input models are unchanged


@pytest.mark.parametrize("folds", [0, 3])
def test_head_of_the_ensemble_scores_positions_and_candidates_like_the_full_model(folds):
    _, (blended_sequence, _), _, _ = _ensemble(folds=folds)
    head = OutputHead(blended_sequence)
    assert head.split and head.reads_history and head.can_score_candidates
    x, y = _batch()
    where = tf.where(tf.not_equal(y, 0))
    full = tf.gather_nd(blended_sequence(x)[0], where).numpy()
    at_positions, hidden = head.at_positions(x, where, training=False)
    np.testing.assert_allclose(at_positions.numpy(), full, rtol=1e-4, atol=1e-3)
    positives = tf.gather_nd(y, where)
    negatives = tf.constant([2, 5, 7, 39], tf.int32)
    picked = head.candidate_logits(hidden, positives, negatives, ids=x, where=where).numpy()
    np.testing.assert_allclose(picked[:, 0], full[np.arange(len(full)), positives.numpy()], rtol=1e-4, atol=1e-3)
    np.testing.assert_allclose(picked[:, 1:], full[:, [2, 5, 7, 39]], rtol=1e-4, atol=1e-3)
    with pytest.raises(ValueError, match="ids and where"):
        head.candidate_logits(hidden, positives, negatives)


def test_the_chosen_weight_is_the_best_on_validation_and_zero_when_the_item_item_model_is_noise():
    rng = np.random.default_rng(0)
    users, catalog = 300, 50
    targets = rng.integers(2, catalog, size=users)
    histories = rng.integers(2, catalog, size=(users, 4))
    seen = [h.copy() for h in histories]
    teacher_noise = rng.normal(size=(users, catalog)).astype(np.float32)

    def teacher(rows):  # a weak teacher: noise with the target slightly lifted
        out = teacher_noise[: len(rows)].copy()
        out[np.arange(len(rows)), targets[: len(rows)]] += 1.0
        return out

    # an item-item model that points every history at its target: blending must help
    helpful = np.zeros((catalog, catalog), np.float16)
    helpful[histories[:, 0], targets] = 1.0
    ndcg = choose_item_item_weight(teacher, helpful, histories, targets, seen)
    best = max(ndcg, key=ndcg.get)
    assert best > 0 and ndcg[best] > ndcg[0.0] + 0.1
    # an item-item model of pure noise: weight 0 (the teacher alone) must be among the best
    noise = rng.normal(size=(catalog, catalog)).astype(np.float16)
    ndcg = choose_item_item_weight(teacher, noise, histories, targets, seen)
    assert ndcg[0.0] >= max(ndcg.values()) - 0.01


@pytest.mark.parametrize("sampled", [False, True])
def test_a_student_distils_from_the_ensemble_teacher(sampled):
    _, (blended_sequence, _), _, _ = _ensemble(folds=2)
    student = build_student(StudentConfig(embedding_dim=6, hidden=(8,), dropout=0.0), C, L)
    teacher_before = [w.copy() for w in blended_sequence.get_weights()]
    sampler = NegativeSampler(np.r_[0, 0, np.ones(C - 2)], 8) if sampled else None
    distiller = Distiller(student, blended_sequence, DistillConfig(alpha=0.5, beta=0.5, gamma=0.5, ranking_top_k=3),
                          sampler=sampler)
    assert (distiller.sampler is not None) == sampled
    distiller.compile(optimizer=keras.optimizers.Adam(1e-2))
    x, y = _batch()
    history = distiller.fit(x, y, batch_size=4, epochs=2, verbose=0)
    for name in ("loss", "ce", "kd", "hint", "rank"):
        assert np.isfinite(history.history[name]).all()
    for before, after in zip(teacher_before, blended_sequence.get_weights(), strict=True):
        np.testing.assert_array_equal(before, after)


def test_the_ensemble_teacher_saves_and_loads(tmp_path):
    _, (blended_sequence, blended_serving), _, _ = _ensemble(folds=2)
    x, _ = _batch()
    save_model_pair(tmp_path, serving=blended_serving, sequence=blended_sequence)
    for sequence in (False, True):
        reloaded = load_saved_model(find_saved_model(tmp_path, sequence=sequence))
        original = blended_sequence if sequence else blended_serving
        np.testing.assert_allclose(reloaded(x)[0].numpy(), original(x)[0].numpy(), rtol=1e-5, atol=1e-5)
        assert OutputHead(reloaded).reads_history
