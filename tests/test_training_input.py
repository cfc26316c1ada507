"""The tf.data training input (:mod:`edge_rec.distill.training_input`): the same rows as
``sequence_examples``, every training window once per epoch, seeded shuffling, batch sizes and
step count."""

from __future__ import annotations

import numpy as np
import pytest

from edge_rec.data import InteractionLog, prepare_dataset
from edge_rec.distill.training_input import sequence_batches, steps_per_epoch

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


def _rows(inputs: np.ndarray, targets: np.ndarray) -> list[tuple[int, ...]]:
    return sorted(map(tuple, np.concatenate([inputs, targets], axis=1).tolist()))


def test_one_epoch_is_every_row_of_sequence_examples_once(split):
    expected_inputs, expected_targets = split.sequence_examples(L)
    inputs, targets = _epoch(sequence_batches(split.training_windows(L), L, 3, seed=0))
    assert all(x.dtype == np.int32 and x.shape[1] == L for x in inputs + targets)
    assert _rows(np.concatenate(inputs), np.concatenate(targets)) == _rows(expected_inputs, expected_targets)


def test_batches_and_steps(split):
    users = len(split.train_sequences)
    batches = sequence_batches(split.train_sequences, L, 4, seed=0)
    inputs, _ = _epoch(batches)
    sizes = [x.shape[0] for x in inputs]
    assert sizes == [4, 4, users - 8] and len(sizes) == steps_per_epoch(users, 4) == int(batches.cardinality())
    assert steps_per_epoch(0, 4) == 1 and steps_per_epoch(8, 4) == 2 and steps_per_epoch(9, 4) == 3
    with pytest.raises(ValueError, match="batch_size"):
        steps_per_epoch(8, 0)


def test_shuffling_is_seeded_and_changes_every_epoch(split):
    def orders(seed):
        batches = sequence_batches(split.train_sequences, L, 64, seed=seed)
        return [np.concatenate(_epoch(batches)[0]).tolist() for _ in range(2)]

    first, second = orders(7)
    assert orders(7) == [first, second]  # the same seed, the same order of every epoch
    assert first != second  # a new order each epoch
    assert orders(8)[0] != first


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
