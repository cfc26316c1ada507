"""The training input of every fit: a seeded ``tf.data`` pipeline of whole-sequence examples.

Teacher, students, pruning and QAT (one process or a ``TF_CONFIG`` cluster) all train on the
batches of :func:`sequence_batches`: each epoch visits every training window once
(:meth:`~edge_rec.data.split.LeaveLastOutSplit.training_windows`), in an order shuffled with
the given seed (a new order each epoch, the same on every worker of a cluster), as
``(inputs int32[B, W], targets int32[B, W])`` with ``W <= history_length``: the rows of
:meth:`~edge_rec.data.split.LeaveLastOutSplit.sequence_examples` with their all-padding left
columns cut off.

**Length buckets** (``bucketed=True``; off by default: see below). Real logs are short (median 6-7 items on the shared Amazon log): cut to the
history length, about 70 % of a batch would be left padding, and every padded slot costs the
teacher's attention blocks as much as a real one. Each window goes to the smallest bucket of
:func:`length_buckets` that holds its (input, target) pairs, and a batch draws its rows from one
bucket only, cut to its longest row. Histories are left-padded (newest item last), so cutting
padding columns off changes no real position's output: a sequence model sees the same items at
the same distances from the newest one (its position embedding is read from the right, see
:class:`~edge_rec.models.layers.PositionEmbedding`). On the shared log (default filters, history 20) a
teacher epoch then runs on 173k slots instead of 524k. Off by default: a batch of one bucket holds far
fewer real positions when its rows are short, and the loss is a mean per batch, so each short
history's positions weigh several times more than a long one's. On the shared log (default
build, seed 0) bucketed training cost the teacher 7 % and the student alone 20 % of test
NDCG@10. Without buckets every batch is still cut to its longest row (exact, and cheaper).

The rows are cut inside the pipeline from the training windows, held once as one flat item array
plus row offsets, so memory does not grow with ``windows x L`` arrays; only a few batches are in
flight (prefetch). It lives beside the trainer, not in :mod:`edge_rec.data`, because the data
layer is numpy only (it also runs on devices).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from edge_rec.data.vocabulary import PAD_INDEX
from edge_rec.keras_shim import tf

#: Bucket limits (in (input, target) pairs per row) below the history length; the history length
#: itself is always the last bucket.
BUCKET_LIMITS = (2, 4, 6, 8, 12, 16, 24, 32, 48, 64, 96, 128, 192, 256)


def length_buckets(history_length: int) -> np.ndarray:
    """The upper limits, in (input, target) pairs, of the length buckets for ``history_length``:
    every :data:`BUCKET_LIMITS` value below it, then ``history_length``."""
    if history_length < 1:
        raise ValueError(f"history length must be >= 1, got {history_length}")
    return np.array([b for b in BUCKET_LIMITS if b < history_length] + [history_length], np.int64)


def _pairs_and_buckets(train_sequences: Sequence[np.ndarray], history_length: int,
                       bucketed: bool) -> tuple[np.ndarray, np.ndarray]:
    """Per row: its (input, target) pairs (at most ``history_length``) and its bucket index (0 for
    every row when not ``bucketed``)."""
    lengths = np.fromiter((len(s) for s in train_sequences), dtype=np.int64, count=len(train_sequences))
    pairs = np.clip(lengths - 1, 0, history_length)
    if not bucketed:
        return pairs, np.zeros_like(pairs)
    return pairs, np.searchsorted(length_buckets(history_length), pairs)


def steps_per_epoch(train_sequences: Sequence[np.ndarray], history_length: int, batch_size: int,
                    *, bucketed: bool = False) -> int:
    """Optimizer steps in one epoch of :func:`sequence_batches` over ``train_sequences``: in each
    length bucket (one when not ``bucketed``), its rows in batches of ``batch_size`` (the last one
    may be partial); >= 1."""
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}")
    _, buckets = _pairs_and_buckets(train_sequences, history_length, bucketed)
    return _steps(buckets, batch_size)


def positions_per_step(train_sequences: Sequence[np.ndarray], history_length: int, batch_size: int,
                       *, bucketed: bool = False) -> float:
    """The mean number of target positions an optimizer step of :func:`sequence_batches` trains on:
    every training target of an epoch over :func:`steps_per_epoch`. Dividing each step's summed
    loss by this constant, not by the step's own count, weighs every position alike across an
    epoch, however the rows are batched (a bucket of short rows holds few positions)."""
    pairs, buckets = _pairs_and_buckets(train_sequences, history_length, bucketed)
    return max(1.0, float(pairs.sum()) / _steps(buckets, batch_size))


def _steps(buckets: np.ndarray, batch_size: int) -> int:
    """Batches of ``batch_size`` over rows with these bucket indices, per bucket; >= 1."""
    per_bucket = np.bincount(buckets) if len(buckets) else np.zeros(0, np.int64)
    return max(1, int((-(-per_bucket // batch_size)).sum()))


def sequence_batches(
    train_sequences: Sequence[np.ndarray], history_length: int, batch_size: int, *, seed: int,
    bucketed: bool = False,
) -> tf.data.Dataset:
    """Batches of ``(inputs, targets)`` int32[B, W] (``W <= history_length``), one row per
    sequence given (the trainer gives the training windows, so every training item is a target
    once), each batch cut to its longest row; with ``bucketed``, each batch from one length
    bucket (see the module docstring), else batches hold the shuffled rows in order (the rows a
    plain ``batch`` would give, only their all-padding columns cut off).

    Row ``u`` is ``inputs = train_seq[:-1]``, ``targets = train_seq[1:]``, each its last
    ``history_length`` positions left-padded with 0 (target 0 = no loss there), as in
    ``sequence_examples``, then cut to the batch's longest row (``W``). Rows are shuffled with
    ``seed`` (reshuffled every epoch, deterministically), grouped by bucket into batches of
    ``batch_size`` (:func:`steps_per_epoch` of them; a bucket's last may be partial) and
    prefetched. Under a ``tf.distribute`` strategy each global batch is split across the workers
    (auto-shard by data), so a step sees the same rows as one process.
    """
    if history_length < 1:
        raise ValueError(f"history length must be >= 1, got {history_length}")
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}")
    count = len(train_sequences)
    lengths = np.fromiter((len(s) for s in train_sequences), dtype=np.int64, count=count)
    pairs, buckets = _pairs_and_buckets(train_sequences, history_length, bucketed)
    ends = tf.constant(np.cumsum(lengths), tf.int64)
    starts = tf.constant(np.cumsum(lengths) - lengths, tf.int64)
    row_pairs = tf.constant(pairs, tf.int64)
    items = tf.constant(
        np.concatenate(train_sequences).astype(np.int32) if count else np.zeros(0, np.int32), tf.int32
    )

    def cut(rows: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
        width = tf.maximum(tf.reduce_max(tf.gather(row_pairs, rows)), 1)
        # column j of the window holds the item at flat position end - (width + 1) + j
        positions = tf.gather(ends, rows)[:, None] + tf.range(-(width + 1), 0, dtype=tf.int64)[None, :]
        real = positions >= tf.gather(starts, rows)[:, None]
        window = tf.where(real, tf.gather(items, tf.maximum(positions, 0)), PAD_INDEX)
        # a (input, target) pair is real when its input is: the first item is never a target
        pair = real[:, :-1]
        inputs = tf.where(pair, window[:, :-1], PAD_INDEX)
        targets = tf.where(pair, window[:, 1:], PAD_INDEX)
        return inputs, targets

    rows = tf.data.Dataset.range(count).shuffle(max(1, count), seed=seed, reshuffle_each_iteration=True)
    if bucketed:
        row_bucket = tf.constant(buckets, tf.int64)
        rows = rows.group_by_window(
            key_func=lambda row: tf.gather(row_bucket, row),
            reduce_func=lambda _, window: window.batch(batch_size),
            window_size=batch_size,
        ).apply(tf.data.experimental.assert_cardinality(_steps(buckets, batch_size) if count else 0))
    else:
        rows = rows.batch(batch_size)
    dataset = rows.map(cut, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True).prefetch(tf.data.AUTOTUNE)
    options = tf.data.Options()
    options.deterministic = True
    options.experimental_distribute.auto_shard_policy = tf.data.experimental.AutoShardPolicy.DATA
    return dataset.with_options(options)
