"""Sampled softmax: candidate logits equal the full layer's, logQ correction, accidental hits."""

from __future__ import annotations

import numpy as np
import pytest
from sequence_batch import padded_batch

from edge_rec.config import DistillConfig, SoftmaxConfig, StudentConfig, TeacherConfig
from edge_rec.distill.distiller import Distiller
from edge_rec.distill.negative_sampler import MASKED_LOGIT, NegativeSampler
from edge_rec.keras_shim import keras, set_global_seed, tf
from edge_rec.models import build_student, build_teacher
from edge_rec.models.output_head import OutputHead

C, L, B = 40, 6, 8


def _batch(seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    return padded_batch(C, L, B, seed)


@pytest.mark.parametrize("tie_output", [False, True])
def test_candidate_logits_are_the_full_layers_columns(tie_output):
    set_global_seed(0)
    teacher = build_teacher(TeacherConfig(hidden=16, blocks=1, heads=2, dropout=0.0, tie_output=tie_output), C, L)
    head = OutputHead(teacher)
    assert head.split and head.can_score_candidates
    assert (head.table is not None) == tie_output
    x, y = _batch()
    where = tf.where(tf.not_equal(y, 0))
    positives = tf.gather_nd(y, where)
    negatives = tf.constant([2, 5, 7, 39], tf.int32)
    full, hidden = head.at_positions(x, where, training=False)
    np.testing.assert_allclose(full.numpy(), tf.gather_nd(teacher(x)[0], where).numpy(), rtol=1e-5, atol=1e-5)
    picked = head.candidate_logits(hidden, positives, negatives).numpy()
    full = full.numpy()
    np.testing.assert_allclose(picked[:, 0], full[np.arange(len(full)), positives.numpy()], rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(picked[:, 1:], full[:, [2, 5, 7, 39]], rtol=1e-5, atol=1e-5)


def test_sampler_never_draws_zero_count_items_and_masks_accidental_hits():
    counts = np.zeros(C)
    counts[[3, 4, 10]] = [100.0, 1.0, 5.0]
    set_global_seed(0)
    sampler = NegativeSampler(counts, 64, power=1.0)
    drawn = sampler.sample().numpy()
    assert set(drawn) <= {3, 4, 10} and (drawn == 3).sum() > (drawn == 4).sum()
    positives = tf.constant([3, 10], tf.int32)
    negatives = tf.constant([3, 4, 10, 3] + [4] * 60, tf.int32)
    corrected = sampler.correct(tf.zeros([2, 65]), positives, negatives).numpy()
    assert corrected[0, 1] == MASKED_LOGIT and corrected[0, 4] == MASKED_LOGIT  # item 3 again
    assert corrected[1, 3] == MASKED_LOGIT and corrected[0, 0] != MASKED_LOGIT
    # logQ: a popular candidate's logit is lowered more than a rare one's
    assert corrected[1, 0] > corrected[0, 0]


def test_auto_mode_samples_only_above_the_catalog_threshold():
    cfg = SoftmaxConfig(mode="auto", negatives=100, auto_min_items=1000)
    assert cfg.sampled_negatives(1002) == 0 and cfg.sampled_negatives(1003) == 100
    assert SoftmaxConfig(mode="full").sampled_negatives(10**6) == 0
    assert SoftmaxConfig(mode="sampled", negatives=500).sampled_negatives(50) == 48


@pytest.mark.parametrize("ce_weight", [1.0, 0.5])
def test_sampled_distiller_trains_the_student(ce_weight):
    set_global_seed(0)
    student = build_student(StudentConfig(embedding_dim=6, hidden=(8,), dropout=0.0), C, L)
    teacher = build_teacher(TeacherConfig(hidden=16, blocks=1, heads=2, dropout=0.0), C, L)
    counts = np.r_[0.0, 0.0, np.arange(C - 2, 0, -1.0)]
    distiller = Distiller(
        student, teacher, DistillConfig(ce_weight=ce_weight, kd_weight=1.0 - ce_weight, rank_weight=0.5, ranking_top_k=3),
        sampler=NegativeSampler(counts, 16),
    )
    assert distiller.sampler is not None
    distiller.compile(optimizer=keras.optimizers.Adam(0.05))
    x, y = _batch()
    before = distiller.evaluate(x, y, batch_size=B, verbose=0, return_dict=True)
    distiller.fit(x, y, batch_size=B, epochs=5, verbose=0, shuffle=False)
    after = distiller.evaluate(x, y, batch_size=B, verbose=0, return_dict=True)
    assert np.isfinite(after["loss"]) and after["ce"] < before["ce"]


def test_teacher_candidates_are_its_top_items_outside_the_sampled_set():
    sampler = NegativeSampler(np.r_[0.0, 0.0, np.ones(C - 2)], 4)
    logits = np.zeros((3, C), np.float32)
    logits[0, [1, 5, 6]] = [9.0, 8.0, 7.0]  # OOV (1) is never a candidate
    logits[1, [6, 7, 8]] = [9.0, 8.0, 7.0]
    logits[2, [9, 5, 2]] = [9.0, 8.0, 7.0]
    extra = sampler.extra_candidates(tf.constant(logits), tf.constant([7, 30, 31, 32], tf.int32), 3).numpy()
    assert sorted(extra) == [2, 5, 6, 8, 9]  # unique, 7 already sampled, 1 reserved
    masked = NegativeSampler.mask_hits(tf.zeros([2, 3]), tf.constant([5, 9], tf.int32), tf.constant([5, 6, 9])).numpy()
    assert masked[0, 0] == MASKED_LOGIT and masked[1, 2] == MASKED_LOGIT and masked[0, 1] == 0.0


def test_teacher_candidates_change_only_the_teacher_terms():
    set_global_seed(0)
    student = build_student(StudentConfig(embedding_dim=6, hidden=(8,), dropout=0.0), C, L)
    teacher = build_teacher(TeacherConfig(hidden=16, blocks=1, heads=2, dropout=0.0), C, L)
    counts = np.r_[0.0, 0.0, np.arange(C - 2, 0, -1.0)]
    x, y = _batch()
    terms = {}
    for extra in (0, 5):
        cfg = DistillConfig(ce_weight=0.5, kd_weight=0.5, rank_weight=0.5, ranking_top_k=3, teacher_candidates=extra)
        distiller = Distiller(student, teacher, cfg, sampler=NegativeSampler(counts, 4))
        set_global_seed(1)  # the same sampled negatives for both
        terms[extra] = {k: float(v) for k, v in distiller.loss_terms(x, y, training=False).items()}
    assert terms[0]["ce"] == pytest.approx(terms[5]["ce"])  # CE stays on the sampled set
    assert terms[0]["kd"] != pytest.approx(terms[5]["kd"])  # KD now sees the teacher's top items
    assert all(np.isfinite(v) for v in terms[5].values())
