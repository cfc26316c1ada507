"""Vocabulary: reserved indices, lookups, unknown ids, titles."""

from __future__ import annotations

import numpy as np
import pytest

from edge_rec.data import OOV_INDEX, PAD_INDEX, Vocabulary


def test_reserved_indices_and_size():
    vocab = Vocabulary(["b", "a", "c"])
    assert (PAD_INDEX, OOV_INDEX) == (0, 1)
    assert vocab.size == len(vocab) == 5
    assert vocab.ids == ["<pad>", "<oov>", "b", "a", "c"]


def test_lookups_in_both_directions_and_unknown_ids():
    vocab = Vocabulary(["b", "a", "c"])
    assert vocab.index("a") == 3
    assert vocab.index("zzz") == OOV_INDEX
    assert vocab.index("<pad>") == OOV_INDEX  # reserved tokens are not items
    indices = vocab.indices(["c", "nope", "b"])
    assert indices.dtype == np.int32 and indices.tolist() == [4, 1, 2]
    assert [vocab.item_id(i) for i in range(5)] == vocab.ids
    with pytest.raises(IndexError, match="outside the vocabulary"):
        vocab.item_id(5)


def test_integer_ids_are_compared_as_strings():
    vocab = Vocabulary(["10", "7"])
    assert vocab.index(7) == 3
    assert vocab.indices([10, "10"]).tolist() == [2, 2]


def test_titles_are_aligned_with_indices():
    vocab = Vocabulary(["x", "y"], {"y": "Why", "other": "ignored"})
    assert vocab.titles == ["", "", "", "Why"]


def test_ids_are_copies():
    vocab = Vocabulary(["x"])
    vocab.ids.append("y")
    assert vocab.size == 3


def test_duplicate_and_reserved_ids_are_refused():
    with pytest.raises(ValueError, match="unique"):
        Vocabulary(["x", "x"])
    with pytest.raises(ValueError, match="reserved"):
        Vocabulary(["<oov>"])
