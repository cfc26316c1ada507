"""The cold-item protocol: the time split, per-event gains, the content baseline; and the item
feature encoder folding into a plain model."""

from __future__ import annotations

import numpy as np
import pytest

from edge_rec.cold_items import ColdCatalog, ContentBaseline, _gains, cold_split
from edge_rec.data import InteractionLog
from edge_rec.data.item_features import ItemFeatures

DAY = 86_400


def _log(rows):
    users, items, days = zip(*rows, strict=True)
    return InteractionLog(np.array(users), np.array(items), np.array(days) * DAY, "test log")


LOG = _log([
    ("u1", "a", 0), ("u1", "b", 1), ("u2", "a", 2), ("u2", "c", 3), ("u3", "b", 4),
    ("u1", "c", 91), ("u1", "new", 95), ("u2", "new", 97), ("u4", "new", 98), ("u3", "a", 100),
])


def test_the_cut_holds_out_the_newest_share_of_the_time_and_its_new_items():
    split = cold_split(LOG, cold_share=0.1, history_length=2)
    assert split.cut_time == 90 * DAY and split.window_seconds == 10 * DAY
    assert split.cold_items == {"new"}
    assert len(split.train_log) == 5 and split.train_log.timestamps.max() < split.cut_time
    # every event after the cut whose user has a past; u4 has none; histories are cut to 2
    assert [(u, t, h) for u, t, h, _ in split.events] == [
        ("u1", "c", ("a", "b")), ("u1", "new", ("b", "c")), ("u2", "new", ("a", "c")), ("u3", "a", ("b",))]


def test_a_log_without_real_time_cannot_be_split():
    with pytest.raises(ValueError, match="same time"):
        cold_split(_log([("u", "a", 1), ("u", "b", 1)]), cold_share=0.1, history_length=2)


def test_gains_exclude_the_history_and_break_ties_at_random():
    rng = np.random.default_rng(0)
    scores = np.tile(np.arange(30, dtype=np.float32), (2, 1))  # higher index, higher score
    histories = np.array([[0, 29], [0, 0]])
    ndcg, hr = _gains(scores.copy(), np.array([28, 28]), histories, rng)
    assert ndcg[0] == 1.0  # 29 is seen, so 28 ranks first
    assert ndcg[1] == pytest.approx(1 / np.log2(3))
    flat = np.zeros((400, 30), dtype=np.float32)  # a ranker that scores every item alike
    ndcg, hr = _gains(flat, np.full(400, 5), np.zeros((400, 1), dtype=np.int64), rng)
    assert 0.2 < hr.mean() < 0.5  # about 10 of 28 candidates, not every time first


def test_the_content_baseline_ranks_the_targets_genres_by_recent_popularity():
    split = cold_split(LOG, cold_share=0.1, history_length=2)
    catalog = ColdCatalog(["<pad>", "<oov>", "a", "b", "c", "new"], cold_start=5)
    features = ItemFeatures("f.csv", {"genres": "categorical"},
                            {"a": {"genres": "x"}, "b": {"genres": "y"}, "c": {"genres": "x|z"}, "new": {"genres": "z"}})
    baseline = ContentBaseline(split, catalog, features, list(split.events))
    scores = baseline.scores(slice(0, 4))
    # the event "u2 -> new" (day 97): genre z holds c and new; in the window (days 87-97) c was
    # seen once and new once (day 95), so both lead every item outside the genre
    row = scores[2]
    assert min(row[4], row[5]) > max(row[2], row[3])
    # the event "u1 -> c" (day 91): genre x|z -> a, c (and new, sharing z) lead b
    assert min(scores[0][[2, 4, 5]]) > scores[0][3]


def test_folding_item_features_keeps_every_score():
    from edge_rec.config import StudentConfig, TeacherConfig
    from edge_rec.data.item_features import ItemTokens
    from edge_rec.models import build_student, build_teacher
    from edge_rec.models.item_encoder import fold_item_features

    rng = np.random.default_rng(0)
    catalog, history = 40, 6
    tokens = ItemTokens(rng.integers(0, 64, (catalog, 4)).astype(np.int32),
                        rng.uniform(0, 0.25, (catalog, 4)).astype(np.float32), 64, id_dropout=0.5)
    ids = rng.integers(0, catalog, (5, history)).astype(np.int32)
    student_cfg = StudentConfig(embedding_dim=8, hidden=(8,), tie_output=True)
    trained = build_student(student_cfg, catalog, history, item_tokens=tokens)
    plain = build_student(student_cfg, catalog, history, sequence=False)
    table = fold_item_features(trained, plain)
    assert table.shape == (64, 8)
    np.testing.assert_allclose(plain(ids)[0].numpy(), trained(ids)[0].numpy()[:, -1], atol=1e-5)
    # training drops id parts (so outputs differ), inference never does
    assert not np.allclose(trained(ids, training=True)[0].numpy(), trained(ids, training=True)[0].numpy())
    teacher_cfg = TeacherConfig(hidden=8, blocks=1, heads=2)
    teacher = build_teacher(teacher_cfg, catalog, history, item_tokens=tokens)
    serving = build_teacher(teacher_cfg, catalog, history, sequence=False)
    fold_item_features(teacher, serving)
    np.testing.assert_allclose(serving(ids)[0].numpy(), teacher(ids)[0].numpy()[:, -1], atol=1e-5)
