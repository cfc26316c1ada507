"""The tf.data training input (:mod:`edge_rec.distill.training_input`): the same rows as
``sequence_examples``, every training window once per epoch, seeded shuffling, batch sizes and
step count."""

from __future__ import annotations

import numpy as np
import pytest

from edge_rec.data import InteractionLog, prepare_dataset
from edge_rec.distill.training_input import length_buckets, sequence_batches, steps_per_epoch

# train sequences of length 1 (nothing to predict), 2, exactly L + 1, and longer than L + 1
LENGTHS = [3, 4, 7, 12, 5, 9, 3, 6, 8, 20, 4]
L = 4


@pytest.fixture(scope="module")
def split():
    rng = np.random.default_rng(0)
    rows = [(f"u{u:02d}", f"i{rng.integers(0, 15)}", t) for u, n in enumerate(LENGTHS) for t in range(n)]
    users, items, stamps = zip(*rows, strict=True)
    log = InteractionLog(np.array(users), np.array(items), np.array(stamps), "hand")
    return prepare_dataset(log, min_user_interactions=3, min_item_interactions=1).split()


def _epoch(batches) -> tuple[list[np.ndarray], list[np.ndarray]]:
    inputs, targets = zip(*((x.numpy(), y.numpy()) for x, y in batches), strict=True)
    return list(inputs), list(targets)


def _rows(inputs: list[np.ndarray], targets: list[np.ndarray]) -> list[tuple[int, ...]]:
    """Every row of the batches, left-padded back to ``L`` columns."""
    def widen(batch: np.ndarray) -> np.ndarray:
        return np.pad(batch, ((0, 0), (L - batch.shape[1], 0)))

    rows = np.concatenate([np.concatenate([widen(x), widen(y)], axis=1) for x, y in zip(inputs, targets, strict=True)])
    return sorted(map(tuple, rows.tolist()))


def test_one_epoch_is_every_row_of_sequence_examples_once(split):
    expected_inputs, expected_targets = split.sequence_examples(L)
    inputs, targets = _epoch(sequence_batches(split.training_windows(L), L, 3, seed=0))
    assert all(x.dtype == np.int32 and 1 <= x.shape[1] <= L for x in inputs + targets)
    expected = sorted(map(tuple, np.concatenate([expected_inputs, expected_targets], axis=1).tolist()))
    assert _rows(inputs, targets) == expected


def test_a_batch_is_one_length_bucket_cut_to_its_longest_row(split):
    windows = split.training_windows(L)
    limits = length_buckets(L).tolist()
    assert limits == [2, L] and length_buckets(50).tolist() == [2, 4, 6, 8, 12, 16, 24, 32, 48, 50]
    inputs, targets = _epoch(sequence_batches(windows, L, 3, seed=0, bucketed=True))
    for x, y in zip(inputs, targets, strict=True):
        pairs = (y != 0).sum(axis=1)  # each row's real (input, target) pairs
        assert x.shape[1] == pairs.max()  # no all-padding column is left
        buckets = {int(np.searchsorted(limits, p)) for p in pairs}
        assert len(buckets) == 1  # one bucket per batch
    # the cut is only padding: a short batch's rows are the full rows' right-hand columns
    assert any(x.shape[1] < L for x in inputs)


def test_batches_and_steps(split):
    windows = split.training_windows(L)
    batches = sequence_batches(windows, L, 4, seed=0, bucketed=True)
    inputs, _ = _epoch(batches)
    sizes = sorted(x.shape[0] for x in inputs)
    pairs = np.clip(np.array([len(w) - 1 for w in windows]), 0, L)
    per_bucket = np.bincount(np.searchsorted(length_buckets(L), pairs))
    expected = sorted(s for n in per_bucket for s in [4] * (n // 4) + ([n % 4] if n % 4 else []))
    assert sizes == expected
    assert len(sizes) == steps_per_epoch(windows, L, 4, bucketed=True) == int(batches.cardinality())
    assert steps_per_epoch([], L, 4) == 1
    with pytest.raises(ValueError, match="batch_size"):
        steps_per_epoch(windows, L, 0)


def test_without_buckets_batches_are_the_shuffled_rows_in_order(split):
    """The default: every batch but the last holds batch_size rows, in the order a plain
    shuffle-then-batch gives (each cut to its longest row)."""
    windows = split.training_windows(L)
    batches = sequence_batches(windows, L, 4, seed=0)
    inputs, targets = _epoch(batches)
    n = len(windows)
    assert [x.shape[0] for x in inputs] == [4] * (n // 4) + ([n % 4] if n % 4 else [])
    assert len(inputs) == steps_per_epoch(windows, L, 4) == int(batches.cardinality())
    for x, y in zip(inputs, targets, strict=True):
        assert x.shape[1] == max(1, int((y != 0).sum(axis=1).max()))


def test_shuffling_is_seeded_and_changes_every_epoch(split):
    def orders(seed):
        batches = sequence_batches(split.train_sequences, L, 64, seed=seed)
        return [[row for x in _epoch(batches)[0] for row in x.tolist()] for _ in range(2)]

    first, second = orders(7)
    assert orders(7) == [first, second]  # the same seed, the same order of every epoch
    assert first != second  # a new order each epoch
    assert orders(8)[0] != first


@pytest.mark.slow
def test_training_on_the_pipeline_is_repeatable_and_times_its_validation(split):
    from edge_rec.config import FitConfig, TeacherConfig
    from edge_rec.distill.training import train_sequence_model
    from edge_rec.keras_shim import set_global_seed
    from edge_rec.models import build_teacher

    def fit(seed: int):
        set_global_seed(0)
        model = build_teacher(TeacherConfig(hidden=8, blocks=1, heads=1), split.catalog_size, L, sequence=True)
        return train_sequence_model(
            model, None, split, fit=FitConfig(epochs=2, batch_size=4, patience=5), history_length=L,
            quiet=True, seed=seed,
        )

    first, again, other = fit(1), fit(1), fit(2)
    assert first.epochs_run == 2 and first.history["loss"] == again.history["loss"]
    assert other.history["loss"] != first.history["loss"]  # the seed orders the batches
    assert 0 < first.validation_seconds < first.seconds


def test_the_trainer_feeds_every_training_window(split, monkeypatch):
    from edge_rec.config import FitConfig, TeacherConfig
    from edge_rec.distill import training
    from edge_rec.keras_shim import set_global_seed
    from edge_rec.models import build_teacher

    fed = []

    def spy(sequences, *args, **kwargs):
        fed.append([np.asarray(s).tolist() for s in sequences])
        return sequence_batches(sequences, *args, **kwargs)

    monkeypatch.setattr(training, "sequence_batches", spy)
    set_global_seed(0)
    model = build_teacher(TeacherConfig(hidden=8, blocks=1, heads=1), split.catalog_size, L, sequence=True)
    training.train_sequence_model(model, None, split, fit=FitConfig(epochs=1, batch_size=4), history_length=L,
                                  quiet=True, seed=0)
    windows = [w.tolist() for w in split.training_windows(L)]
    assert fed == [windows] and len(windows) > len(split.train_sequences)  # the long users' older items too


def test_epoch_validation_equals_ranking_the_whole_catalog(split):
    from device_runtime.metrics import evaluate_ranked
    from edge_rec.config import TeacherConfig
    from edge_rec.distill.training import rank_model, validation_metrics
    from edge_rec.keras_shim import set_global_seed
    from edge_rec.models import build_teacher

    set_global_seed(0)
    model = build_teacher(TeacherConfig(hidden=8, blocks=1, heads=1), split.catalog_size, L, sequence=True)
    valid = split.eval_set("valid", L)
    fast = validation_metrics(model, valid, chunk=4)
    ranked = evaluate_ranked(rank_model(model, valid), valid.targets, split.catalog_size)
    assert fast == pytest.approx({name: ranked[name] for name in ("hr@10", "ndcg@10", "mrr")})
    assert 0 < fast["mrr"] < 1


@pytest.mark.parametrize("kind", ["teacher", "student"])
def test_cutting_padding_columns_changes_no_real_position(kind):
    """A batch cut to its longest row gives every real position the outputs of the full width."""
    from edge_rec.config import StudentConfig, TeacherConfig
    from edge_rec.keras_shim import set_global_seed
    from edge_rec.models import build_student, build_teacher
    from edge_rec.models.history_length import history_length_of

    set_global_seed(0)
    length, catalog = 8, 30
    if kind == "teacher":
        model = build_teacher(TeacherConfig(hidden=8, blocks=2, heads=2), catalog, length, sequence=True)
    else:
        model = build_student(StudentConfig(embedding_dim=8, hidden=(6,)), catalog, length, sequence=True)
    full = np.zeros((3, length), np.int32)
    full[0, -3:], full[1, -1:], full[2, -2:] = [5, 6, 7], [9], [3, 4]
    logits_full, hidden_full = (t.numpy() for t in model(full, training=False))
    logits_cut, hidden_cut = (t.numpy() for t in model(full[:, -3:], training=False))
    np.testing.assert_allclose(logits_cut, logits_full[:, -3:], rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(hidden_cut, hidden_full[:, -3:], rtol=1e-5, atol=1e-5)
    assert history_length_of(model) == length


def test_scoring_a_sequence_model_by_length_equals_its_serving_form(split):
    """Validation scores a sequence-mode model shortest rows first, each batch cut to its longest
    history; the scores are the serving model's (fixed width, nothing cut), row for row."""
    from edge_rec.config import TeacherConfig
    from edge_rec.distill.training import score_model
    from edge_rec.keras_shim import set_global_seed
    from edge_rec.models import build_teacher

    set_global_seed(0)
    cfg = TeacherConfig(hidden=8, blocks=1, heads=1)
    sequence = build_teacher(cfg, split.catalog_size, L, sequence=True)
    serving = build_teacher(cfg, split.catalog_size, L, sequence=False)
    serving.set_weights(sequence.get_weights())
    histories = split.eval_set("test", L).histories
    assert len({int(n) for n in np.count_nonzero(histories, axis=1)}) > 1  # rows of several lengths
    np.testing.assert_allclose(score_model(sequence, histories, batch_size=3),
                               score_model(serving, histories, batch_size=3), rtol=1e-5, atol=1e-5)
