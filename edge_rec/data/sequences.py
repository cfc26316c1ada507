"""Chronological per-user item sequences built from an interaction log."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from device_runtime.bundle_schema import FIRST_ITEM_INDEX
from edge_rec.data.factorize import factorize
from edge_rec.data.interactions import InteractionLog
from edge_rec.data.vocabulary import PAD_INDEX, Vocabulary

if TYPE_CHECKING:
    from edge_rec.data.split import LeaveLastOutSplit

#: Leave-last-out needs one training, one validation and one test item per user.
MIN_SEQUENCE_LENGTH = 3


@dataclass(frozen=True, eq=False)
class SequenceDataset:
    """Every kept user's item indices in chronological order (oldest first), over ``vocab``.

    ``user_ids[i]`` owns ``sequences[i]`` (an ``int32`` array of indices >= 2, length >= 3).
    """

    vocab: Vocabulary
    user_ids: list[str]
    sequences: list[np.ndarray]

    @property
    def num_interactions(self) -> int:
        """Total length of all sequences."""
        return int(sum(len(s) for s in self.sequences))

    def split(self, validation_share: float = 1.0) -> LeaveLastOutSplit:
        """The leave-last-out split of this dataset (see :class:`LeaveLastOutSplit`), validating on
        ``validation_share`` of the users (:func:`~edge_rec.data.split.validation_sample`)."""
        from edge_rec.data.split import LeaveLastOutSplit, validation_sample

        return LeaveLastOutSplit(self, validation_sample(len(self.sequences), validation_share))


def left_pad(sequences: Sequence[np.ndarray], length: int) -> np.ndarray:
    """Stack the last ``length`` items of each sequence into ``int32[N, length]``, left-padded with 0."""
    if length < 1:
        raise ValueError(f"history length must be >= 1, got {length}")
    out = np.full((len(sequences), length), PAD_INDEX, dtype=np.int32)
    for row, seq in enumerate(sequences):
        tail = seq[-length:] if len(seq) else seq
        if len(tail):
            out[row, length - len(tail):] = tail
    return out


def _kcore(user_codes: np.ndarray, item_codes: np.ndarray, min_user: int, min_item: int) -> np.ndarray:
    """Mask of interactions kept after repeatedly dropping rare users and items until stable."""
    keep = np.ones(user_codes.shape[0], dtype=bool)
    n_users = int(user_codes.max()) + 1 if user_codes.size else 0
    n_items = int(item_codes.max()) + 1 if item_codes.size else 0
    while True:
        user_counts = np.bincount(user_codes[keep], minlength=n_users)
        item_counts = np.bincount(item_codes[keep], minlength=n_items)
        new_keep = keep & (user_counts[user_codes] >= min_user) & (item_counts[item_codes] >= min_item)
        if new_keep.sum() == keep.sum():
            return new_keep
        keep = new_keep


def prepare_dataset(
    log: InteractionLog, *, min_user_interactions: int = 5, min_item_interactions: int = 5
) -> SequenceDataset:
    """Filter ``log`` and build chronological per-user sequences over a new vocabulary.

    Filtering is a k-core: users with fewer than ``min_user_interactions`` and items with
    fewer than ``min_item_interactions`` interactions are dropped, repeatedly, until every
    remaining user and item meets its minimum. Repeated (user, item) interactions are kept.
    Items are indexed by descending interaction count (ties: item id order), so index 2 is
    the most popular item. Each sequence is sorted by timestamp, stable on ties (file order).
    Users are ordered by id. Raises ``ValueError`` when nothing is left or
    ``min_user_interactions`` < 3 (leave-last-out needs three items per user).
    """
    if min_user_interactions < MIN_SEQUENCE_LENGTH:
        raise ValueError(
            f"min_user_interactions must be >= {MIN_SEQUENCE_LENGTH} (a train, a validation and "
            f"a test item per user), got {min_user_interactions}"
        )
    if min_item_interactions < 1:
        raise ValueError(f"min_item_interactions must be >= 1, got {min_item_interactions}")
    user_names, user_codes = factorize(log.users)
    item_names, item_codes = factorize(log.items)
    keep = _kcore(user_codes, item_codes, min_user_interactions, min_item_interactions)
    if not keep.any():
        raise ValueError(
            f"{log.source}: no interactions left after keeping users with >= "
            f"{min_user_interactions} and items with >= {min_item_interactions} interactions "
            f"({len(log)} before filtering); lower the minimum counts"
        )
    user_codes, item_codes, stamps = user_codes[keep], item_codes[keep], log.timestamps[keep]

    item_counts = np.bincount(item_codes, minlength=len(item_names))
    kept_items = np.flatnonzero(item_counts)
    # descending count; np.unique already sorted names, so a stable sort breaks ties by id
    order = kept_items[np.argsort(-item_counts[kept_items], kind="stable")]
    index_of_code = np.zeros(len(item_names), dtype=np.int32)
    index_of_code[order] = np.arange(FIRST_ITEM_INDEX, FIRST_ITEM_INDEX + len(order), dtype=np.int32)
    vocab = Vocabulary(item_names[order].tolist(), log.titles)

    by_user_time = np.lexsort((stamps, user_codes))  # stable: ties keep file order
    sorted_users = user_codes[by_user_time]
    sorted_items = index_of_code[item_codes[by_user_time]]
    starts = np.flatnonzero(np.r_[True, sorted_users[1:] != sorted_users[:-1]])
    sequences = np.split(sorted_items, starts[1:])
    user_ids = user_names[sorted_users[starts]].tolist()
    return SequenceDataset(vocab=vocab, user_ids=user_ids, sequences=sequences)
