"""Leave-last-out split: last item test, second-to-last validation (for a sample of users), the
rest training."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

from edge_rec.data.sequences import left_pad
from edge_rec.data.vocabulary import OOV_INDEX, PAD_INDEX

if TYPE_CHECKING:
    from edge_rec.data.sequences import SequenceDataset

EVAL_SPLITS = ("valid", "test")
#: The fewest users a validation sample holds (all of them on smaller logs): early stopping and
#: every choice made on validation compare NDCG@10 over these users.
MIN_VALIDATION_USERS = 2000
#: The validation sample does not follow the training seed: a teacher and a student trained with
#: different seeds on the same log must agree on which users' second-to-last items are held out.
VALIDATION_SAMPLE_SEED = 0
#: The most validation users scored each epoch (a fixed sample of them, drawn with
#: :data:`VALIDATION_SAMPLE_SEED`). Every validation user's second-to-last item stays held out of
#: training; scoring all of them each epoch costs as much as the epoch itself on a large log (the
#: shared log without filters: 30,901 users x 23,700 items: about as long as a teacher epoch), while
#: 10,000 users measure NDCG@10 to about 3 % (and epoch-to-epoch changes, on the same users, far
#: closer).
MAX_SCORED_VALIDATION_USERS = 10_000


def validation_count(users: int, share: float) -> int:
    """How many of ``users`` validate: ``share`` of them, but at least :data:`MIN_VALIDATION_USERS`
    (all of them when fewer)."""
    if not 0.0 < share <= 1.0:
        raise ValueError(f"validation share must be in (0, 1], got {share}")
    return min(users, max(math.ceil(share * users), MIN_VALIDATION_USERS))


def validation_sample(users: int, share: float) -> np.ndarray:
    """Sorted indices of the :func:`validation_count` users whose second-to-last item validates,
    drawn with :data:`VALIDATION_SAMPLE_SEED`; every user, in order, when that is all of them."""
    count = validation_count(users, share)
    if count == users:
        return np.arange(users)
    return np.sort(np.random.default_rng(VALIDATION_SAMPLE_SEED).choice(users, size=count, replace=False))


@dataclass(frozen=True, eq=False)
class EvalSet:
    """One evaluation target per user (per validation user for the validation split).

    ``histories`` int32[U, L] (left-padded, last real item at column L-1), ``targets`` int32[U],
    ``seen[i]`` every item index of user i's FULL history (not only the last L), to exclude
    from the ranking.
    """

    histories: np.ndarray
    targets: np.ndarray
    seen: list[np.ndarray]

    def __len__(self) -> int:
        """Number of users (rows)."""
        return int(self.targets.shape[0])


class LeaveLastOutSplit:
    """Per user: ``seq[-1]`` tests. A validation user's ``seq[-2]`` validates and ``seq[:-2]``
    trains; every other user trains on ``seq[:-1]``, so the models learn from that user's
    newest item before the test one.

    ``validation_users`` (sorted user indices; default: every user, the classic split) is usually
    :func:`validation_sample`. Built by :meth:`SequenceDataset.split`; every sequence has at least
    3 items, so every user has a training item, a test target and, if sampled, a validation target.
    """

    def __init__(self, dataset: SequenceDataset, validation_users: np.ndarray | None = None) -> None:
        short = [u for u, s in zip(dataset.user_ids, dataset.sequences) if len(s) < 3]
        if short:
            raise ValueError(
                f"{len(short)} user(s) have fewer than 3 items (e.g. {short[0]!r}); "
                "leave-last-out needs a train, a validation and a test item per user"
            )
        self.dataset = dataset
        self.vocab = dataset.vocab
        self.catalog_size = dataset.vocab.size
        users = len(dataset.sequences)
        self.validation_users = (np.arange(users) if validation_users is None
                                 else np.asarray(validation_users, dtype=np.int64))
        validates = np.zeros(users, dtype=bool)
        validates[self.validation_users] = True
        self.train_sequences: list[np.ndarray] = [
            s[:-2] if held else s[:-1] for s, held in zip(dataset.sequences, validates)
        ]
        self._windows: dict[int, list[np.ndarray]] = {}  # training_windows, per history length

    @property
    def scored_validation_users(self) -> np.ndarray:
        """Sorted indices of the validation users the validation split scores: all of them, or a
        fixed sample of :data:`MAX_SCORED_VALIDATION_USERS` when there are more."""
        users = self.validation_users
        if len(users) <= MAX_SCORED_VALIDATION_USERS:
            return users
        rng = np.random.default_rng(VALIDATION_SAMPLE_SEED)
        return np.sort(rng.choice(users, size=MAX_SCORED_VALIDATION_USERS, replace=False))

    def popularity(self) -> np.ndarray:
        """Interaction counts per index over the training sequences, float64[C]; 0 for PAD/OOV."""
        counts = np.bincount(
            np.concatenate(self.train_sequences), minlength=self.catalog_size
        ).astype(np.float64)
        counts[[PAD_INDEX, OOV_INDEX]] = 0.0
        return counts

    def popularity_order(self) -> list[int]:
        """Real item indices, most popular in training first (ties: lower index first).

        This is the cold-start order a bundle carries for empty or all-unknown histories.
        """
        order = np.argsort(-self.popularity(), kind="stable")
        return [int(i) for i in order if i > OOV_INDEX]

    def training_windows(self, length: int) -> list[np.ndarray]:
        """The rows every model trains on: each training sequence cut, from its newest item back,
        into windows of at most ``length + 1`` items that overlap by one item, so every training
        item but a user's first is a target exactly once (a window's first item is input only).

        A sequence of at most ``length + 1`` items is one window (itself); a longer one is
        several, newest first. Keeping only each user's newest window would drop every older
        target: on the shared real log (history 20) about 15 % of the training targets, on
        MovieLens-like logs (hundreds of items per user, history 50) most of them. Cut once per
        length: every fit (teacher members, students, pruning, QAT) reads the same list.
        """
        if length < 1:
            raise ValueError(f"history length must be >= 1, got {length}")
        if length in self._windows:
            return self._windows[length]
        windows = []
        for seq in self.train_sequences:
            end = len(seq)
            while True:
                windows.append(seq[max(0, end - length - 1) : end])
                end -= length
                if end < 2:  # no (input, target) pair left before this window
                    break
        self._windows[length] = windows
        return windows

    def sequence_examples(self, length: int) -> tuple[np.ndarray, np.ndarray]:
        """Whole-sequence training examples for models that predict every position at once.

        Returns ``(inputs, targets)``, both int32[W, length], one row per window of
        :meth:`training_windows`: ``inputs`` = ``window[:-1]``, ``targets`` = ``window[1:]``,
        left-padded with 0. ``targets[w, t]`` is the item after ``inputs[w, :t+1]``; target 0
        means ignore.
        """
        windows = self.training_windows(length)
        return left_pad([w[:-1] for w in windows], length), left_pad([w[1:] for w in windows], length)

    def prefix_examples(self, length: int) -> tuple[np.ndarray, np.ndarray]:
        """Every prefix of every training sequence as one example.

        Returns ``(histories int32[N, length], targets int32[N])`` with one row per position
        ``t >= 1`` of each ``train_seq``: history = last ``length`` items of ``train_seq[:t]``
        (left-padded), target = ``train_seq[t]``. N = sum(len(train_seq) - 1).
        """
        if length < 1:
            raise ValueError(f"history length must be >= 1, got {length}")
        histories, targets = [], []
        for seq in self.train_sequences:
            if len(seq) < 2:
                continue
            padded = np.concatenate([np.zeros(length, dtype=np.int32), seq.astype(np.int32)])
            # window t covers padded[t : t+length] = last `length` items of seq[:t]
            histories.append(sliding_window_view(padded, length)[1 : len(seq)])
            targets.append(seq[1:])
        if not histories:
            return np.zeros((0, length), np.int32), np.zeros((0,), np.int32)
        return (
            np.ascontiguousarray(np.concatenate(histories), dtype=np.int32),
            np.concatenate(targets).astype(np.int32),
        )

    def sample_prefixes(self, length: int, count: int, rng: np.random.Generator) -> np.ndarray:
        """``count`` rows of :meth:`prefix_examples`'s histories drawn without replacement (all of
        them when there are fewer), in that method's row order, without building the others:
        memory is ``count x length`` however long the log is."""
        if length < 1:
            raise ValueError(f"history length must be >= 1, got {length}")
        per_user = np.array([max(0, len(s) - 1) for s in self.train_sequences], dtype=np.int64)
        total = int(per_user.sum())
        if total == 0:
            return np.zeros((0, length), np.int32)
        picks = np.sort(rng.choice(total, size=min(count, total), replace=False))
        ends = np.cumsum(per_user)
        users = np.searchsorted(ends, picks, side="right")
        prefix_lengths = picks - (ends[users] - per_user[users]) + 1  # history = seq[:t], t >= 1
        return left_pad([self.train_sequences[u][:t] for u, t in zip(users, prefix_lengths)], length)

    def eval_set(self, which: str, length: int) -> EvalSet:
        """Validation (``"valid"``: history ``seq[:-2]``, target ``seq[-2]``, one row per scored
        validation user, :attr:`scored_validation_users`) or test (``"test"``: history
        ``seq[:-1]``, target ``seq[-1]``, one row per user)."""
        if which not in EVAL_SPLITS:
            raise ValueError(f"which must be 'valid' or 'test', got {which!r}")
        cut = 2 if which == "valid" else 1
        seqs = self.dataset.sequences
        if which == "valid":
            seqs = [seqs[u] for u in self.scored_validation_users]
        histories = [s[:-cut] for s in seqs]
        targets = np.array([s[-cut] for s in seqs], dtype=np.int32)
        return EvalSet(
            histories=left_pad(histories, length),
            targets=targets,
            seen=[np.asarray(h, dtype=np.int32) for h in histories],
        )
