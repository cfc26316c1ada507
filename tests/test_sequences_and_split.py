"""prepare_dataset (filtering, ordering, indexing) and the leave-last-out split, by hand."""

from __future__ import annotations

import numpy as np
import pytest

from edge_rec.data import InteractionLog, LeaveLastOutSplit, left_pad, prepare_dataset
from edge_rec.data.split import MIN_VALIDATION_USERS, validation_sample


def _log(rows, titles=None):
    users, items, stamps = zip(*rows, strict=True)
    return InteractionLog(np.array(users), np.array(items), np.array(stamps), "hand", titles=titles)


# user u1 watches a, b, c, d, e (shuffled rows, a tie at t=3 keeps file order: c before b)
ROWS = [
    ("u1", "d", 4), ("u1", "a", 1), ("u1", "c", 3), ("u1", "b", 3), ("u1", "e", 5),
    ("u2", "a", 10), ("u2", "b", 11), ("u2", "c", 12),
    ("u3", "a", 7), ("u3", "z", 8),  # too short: dropped
]


def test_sequences_are_chronological_stable_and_indexed_by_popularity():
    ds = prepare_dataset(_log(ROWS), min_user_interactions=3, min_item_interactions=1)
    # counts after filtering: a 2, b 2, c 2, d 1, e 1 -> ties by id
    assert ds.vocab.ids == ["<pad>", "<oov>", "a", "b", "c", "d", "e"]
    assert ds.user_ids == ["u1", "u2"]
    idx = ds.vocab.index
    assert ds.sequences[0].tolist() == [idx(x) for x in "acbde"]
    assert ds.sequences[1].tolist() == [idx(x) for x in "abc"]
    assert ds.num_interactions == 8


def test_filtering_iterates_until_stable():
    rows = [
        ("u1", "a", 1), ("u1", "b", 2), ("u1", "c", 3),
        ("u2", "a", 1), ("u2", "b", 2), ("u2", "x", 3),
        ("u3", "a", 1), ("u3", "b", 2), ("u3", "c", 3),
    ]
    # x (1 play) goes; then u2 has 2 items and goes; then a, b, c still have >= 2 plays
    ds = prepare_dataset(_log(rows), min_user_interactions=3, min_item_interactions=2)
    assert ds.user_ids == ["u1", "u3"]
    assert ds.vocab.ids[2:] == ["a", "b", "c"]
    # one round more: with min_item 3, c (2 plays) goes, then every user is too short
    with pytest.raises(ValueError, match="no interactions left"):
        prepare_dataset(_log(rows), min_user_interactions=3, min_item_interactions=3)


def test_min_user_interactions_below_three_is_refused():
    with pytest.raises(ValueError, match=">= 3"):
        prepare_dataset(_log(ROWS), min_user_interactions=2)


def test_titles_follow_the_vocabulary():
    ds = prepare_dataset(_log(ROWS, {"a": "Alpha"}), min_user_interactions=3, min_item_interactions=1)
    assert ds.vocab.titles[ds.vocab.index("a")] == "Alpha"


def test_left_pad():
    out = left_pad([np.array([5, 6, 7]), np.array([], dtype=np.int32), np.array([9])], 2)
    assert out.dtype == np.int32
    assert out.tolist() == [[6, 7], [0, 0], [0, 9]]


@pytest.fixture
def split():
    rows = [("u1", x, t) for t, x in enumerate("abcdef")] + [("u2", x, t) for t, x in enumerate("bca")]
    ds = prepare_dataset(_log(rows), min_user_interactions=3, min_item_interactions=1)
    return ds, ds.split()


def _ids(ds, row):
    return [ds.vocab.item_id(i) if i else "." for i in row]


def test_train_sequences_and_popularity(split):
    ds, sp = split
    assert [_ids(ds, s) for s in sp.train_sequences] == [list("abcd"), ["b"]]
    pop = sp.popularity()
    assert pop.shape == (ds.vocab.size,)
    assert pop[0] == pop[1] == 0
    assert pop[ds.vocab.index("b")] == 2 and pop[ds.vocab.index("e")] == 0


def test_sequence_examples_shift_by_one_and_pad(split):
    ds, sp = split
    inputs, targets = sp.sequence_examples(3)
    assert inputs.dtype == targets.dtype == np.int32
    assert _ids(ds, inputs[0]) == list("abc") and _ids(ds, targets[0]) == list("bcd")
    assert inputs[1].tolist() == [0, 0, 0] and targets[1].tolist() == [0, 0, 0]
    inputs5, targets5 = sp.sequence_examples(5)
    assert _ids(ds, inputs5[0]) == [".", ".", "a", "b", "c"]
    assert _ids(ds, targets5[0]) == [".", ".", "b", "c", "d"]


def test_training_windows_make_every_training_item_but_the_first_a_target_once(split):
    ds, sp = split  # training sequences: abcd and b
    assert [_ids(ds, w) for w in sp.training_windows(3)] == [list("abcd"), ["b"]]  # short: whole
    assert [_ids(ds, w) for w in sp.training_windows(2)] == [list("bcd"), list("ab"), ["b"]]
    assert [_ids(ds, w) for w in sp.training_windows(1)] == [list("cd"), list("bc"), list("ab"), ["b"]]
    assert sp.training_windows(2) is sp.training_windows(2)  # cut once per length, read by every fit
    inputs, targets = sp.sequence_examples(2)  # one row per window, not one per user
    assert [_ids(ds, r) for r in inputs] == [list("bc"), list(".a"), list("..")]
    assert [_ids(ds, r) for r in targets] == [list("cd"), list(".b"), list("..")]
    with pytest.raises(ValueError, match="history length"):
        sp.training_windows(0)


def test_training_windows_on_long_random_sequences_cover_each_target_once():
    rng = np.random.default_rng(3)
    rows = [(f"u{u}", f"i{rng.integers(0, 30)}", t) for u in range(40) for t in range(int(rng.integers(3, 60)))]
    sp = prepare_dataset(_log(rows), min_user_interactions=3, min_item_interactions=1).split()
    for length in (1, 4, 7, 50):
        windows = sp.training_windows(length)
        assert all(1 <= len(w) <= length + 1 for w in windows)
        _, targets = sp.sequence_examples(length)
        # every training item but each user's first is one target, so the counts add up
        expected = np.bincount(np.concatenate([s[1:] for s in sp.train_sequences]), minlength=sp.catalog_size)
        np.testing.assert_array_equal(np.bincount(targets[targets > 0], minlength=sp.catalog_size), expected)


def test_prefix_examples_are_every_prefix(split):
    ds, sp = split
    histories, targets = sp.prefix_examples(2)
    assert histories.shape == (3, 2) and targets.shape == (3,)
    assert [_ids(ds, h) for h in histories] == [[".", "a"], ["a", "b"], ["b", "c"]]
    assert _ids(ds, targets) == list("bcd")


def test_eval_sets_hold_full_history_as_seen(split):
    ds, sp = split
    valid = sp.eval_set("valid", 2)
    assert _ids(ds, valid.targets) == ["e", "c"]
    assert [_ids(ds, h) for h in valid.histories] == [["c", "d"], [".", "b"]]
    assert _ids(ds, valid.seen[0]) == list("abcd")  # all of it, not only the last 2
    test = sp.eval_set("test", 2)
    assert _ids(ds, test.targets) == ["f", "a"]
    assert [_ids(ds, h) for h in test.histories] == [["d", "e"], ["b", "c"]]
    assert _ids(ds, test.seen[0]) == list("abcde") and len(test) == 2
    with pytest.raises(ValueError, match="'valid' or 'test'"):
        sp.eval_set("train", 2)


def test_sample_prefixes_equals_picking_rows_of_every_prefix(split):
    _, sp = split
    histories, _ = sp.prefix_examples(3)
    for count in (1, 4, len(histories) + 5):
        picked = np.sort(np.random.default_rng(7).choice(len(histories), size=min(count, len(histories)), replace=False))
        sampled = sp.sample_prefixes(3, count, np.random.default_rng(7))
        np.testing.assert_array_equal(sampled, histories[picked])


def test_validation_sample_takes_a_share_but_never_fewer_than_the_minimum():
    assert validation_sample(500, 1.0).tolist() == list(range(500))
    assert len(validation_sample(500, 0.1)) == 500  # fewer users than the minimum: all
    assert len(validation_sample(10_000, 0.1)) == MIN_VALIDATION_USERS
    sample = validation_sample(30_000, 0.1)
    assert len(sample) == 3000 and np.all(np.diff(sample) > 0) and sample.max() < 30_000
    assert sample.tolist() == validation_sample(30_000, 0.1).tolist()  # the same users every time
    assert sample.tolist() != list(range(3000))  # drawn, not the first ones
    for share in (0.0, -0.5, 1.5):
        with pytest.raises(ValueError, match="validation share"):
            validation_sample(100, share)


def test_users_outside_the_validation_sample_train_on_their_second_to_last_item():
    rows = [("u1", x, t) for t, x in enumerate("abcdef")] + [("u2", x, t) for t, x in enumerate("bcae")]
    ds = prepare_dataset(_log(rows), min_user_interactions=3, min_item_interactions=1)
    sp = LeaveLastOutSplit(ds, validation_users=np.array([1]))  # only u2 validates
    assert [_ids(ds, s) for s in sp.train_sequences] == [list("abcde"), list("bc")]
    valid = sp.eval_set("valid", 4)
    assert len(valid) == 1 and _ids(ds, [valid.targets[0]]) == ["a"]
    assert _ids(ds, valid.histories[0]) == [".", ".", "b", "c"]
    test = sp.eval_set("test", 4)
    assert len(test) == 2 and _ids(ds, test.targets) == ["f", "e"]
    assert [_ids(ds, s) for s in ds.split().train_sequences] == [list("abcd"), list("bc")]


def test_a_sized_build_validates_on_a_sample_and_trains_on_the_others_second_to_last_items():
    from edge_rec.config import config_from_dict
    from edge_rec.stages import prepare_sized_data

    cfg = config_from_dict({"data": {"source": "synthetic-speaker", "synthetic_users": 2500, "synthetic_items": 300}})
    _, data, _ = prepare_sized_data(cfg)
    users = len(data.dataset.sequences)
    assert users > MIN_VALIDATION_USERS
    summary = data.summary()
    assert summary["validation_users"] == MIN_VALIDATION_USERS and summary["test_users"] == users
    held = set(data.split.validation_users.tolist())
    lengths = [len(t) - len(s) for t, s in zip(data.split.train_sequences, data.dataset.sequences, strict=True)]
    assert all(cut == (-2 if u in held else -1) for u, cut in enumerate(lengths))
    assert len(data.split.eval_set("valid", 5)) == MIN_VALIDATION_USERS
