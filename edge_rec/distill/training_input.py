"""The training input of every fit: a seeded ``tf.data`` pipeline of whole-sequence examples.

Teacher, students, pruning and QAT (one process or a ``TF_CONFIG`` cluster) all train on the
batches of :func:`sequence_batches`: each epoch visits every training window once
(:meth:`~edge_rec.data.split.LeaveLastOutSplit.training_windows`), in an order shuffled with
the given seed (a new order each epoch, the same on every worker of a cluster), as
``(inputs int32[B, L], targets int32[B, L])`` with exactly the rows of
:meth:`~edge_rec.data.split.LeaveLastOutSplit.sequence_examples`. The rows are cut inside the
pipeline from the training sequences, held once as one flat item array plus row offsets (the
log itself), so memory does not grow with ``users x L`` arrays or with one example per training
position; only a few batches are in flight (prefetch). It lives beside the trainer, not in
:mod:`edge_rec.data`, because the data layer is numpy only (it also runs on devices).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from edge_rec.data.vocabulary import PAD_INDEX
from edge_rec.keras_shim import tf


def steps_per_epoch(rows: int, batch_size: int) -> int:
    """Optimizer steps in one epoch over ``rows`` sequences (the last batch may be partial; >= 1)."""
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}")
    return max(1, -(-rows // batch_size))


def sequence_batches(
    train_sequences: Sequence[np.ndarray], history_length: int, batch_size: int, *, seed: int
) -> tf.data.Dataset:
    """Batches of ``(inputs, targets)`` int32[B, history_length], one row per sequence given
    (the trainer gives the training windows, so every training item is a target once).

    Row ``u`` is ``inputs = train_seq[:-1]``, ``targets = train_seq[1:]``, each its last
    ``history_length`` positions left-padded with 0 (target 0 = no loss there), as in
    ``sequence_examples``. Rows are shuffled with ``seed`` (reshuffled every epoch,
    deterministically), cut into batches of ``batch_size`` (:func:`steps_per_epoch` of them, the
    last possibly partial) and prefetched. Under a ``tf.distribute`` strategy each global batch
    is split across the workers (auto-shard by data), so a step sees the same rows as one process.
    """
    if history_length < 1:
        raise ValueError(f"history length must be >= 1, got {history_length}")
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}")
    count = len(train_sequences)
    lengths = np.fromiter((len(s) for s in train_sequences), dtype=np.int64, count=count)
    ends = tf.constant(np.cumsum(lengths), tf.int64)
    starts = tf.constant(np.cumsum(lengths) - lengths, tf.int64)
    items = tf.constant(
        np.concatenate(train_sequences).astype(np.int32) if count else np.zeros(0, np.int32), tf.int32
    )
    # column j of the window holds the item at flat position end - (L + 1) + j
    offsets = tf.range(-(history_length + 1), 0, dtype=tf.int64)

    def cut(rows: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
        positions = tf.gather(ends, rows)[:, None] + offsets[None, :]
        real = positions >= tf.gather(starts, rows)[:, None]
        window = tf.where(real, tf.gather(items, tf.maximum(positions, 0)), PAD_INDEX)
        # a (input, target) pair is real when its input is: the first item is never a target
        pair = real[:, :-1]
        inputs = tf.where(pair, window[:, :-1], PAD_INDEX)
        targets = tf.where(pair, window[:, 1:], PAD_INDEX)
        return inputs, targets

    dataset = (
        tf.data.Dataset.range(count)
        .shuffle(max(1, count), seed=seed, reshuffle_each_iteration=True)
        .batch(batch_size)
        .map(cut, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)
        .prefetch(tf.data.AUTOTUNE)
    )
    options = tf.data.Options()
    options.deterministic = True
    options.experimental_distribute.auto_shard_policy = tf.data.experimental.AutoShardPolicy.DATA
    return dataset.with_options(options)
