"""The ensemble teacher's output layer: a linear layer over the hidden state plus a weighted
item-item model over the history (:mod:`edge_rec.models.ease`).

In sequence mode position ``t`` sums the item-item rows of ``history[:, :t+1]`` (a running sum,
like the self-attention's causal mask), so the teacher never sees the item it predicts.

With ``folds`` > 0 the layer also holds the cross-fitted matrices
(:mod:`edge_rec.models.item_item_folds`): sequence mode, which only the distillation training
steps run, reads each row's out-of-fold matrix (so a training sequence's soft labels come from
a fit that never saw it); serving mode, which every evaluation runs, reads the full fit.
"""

from __future__ import annotations

from typing import Any

from edge_rec.keras_shim import keras, tf
from edge_rec.models.item_item_folds import row_folds
from edge_rec.models.layers import PACKAGE


@keras.utils.register_keras_serializable(PACKAGE)
class BlendedLogits(keras.layers.Layer):
    """``logits = hidden . kernel + bias + weight * (sum of item_item rows over the history)``.

    Inputs ``[hidden, ids]``: ``hidden`` float[B, L, H] (sequence mode: position ``t`` adds the
    rows of ``ids[:, :t+1]``) or float[B, H] (serving mode: the rows of the whole history, which
    is the sequence mode's last position); ``ids`` int32[B, L]. ``kernel``/``bias`` are trainable
    like a ``Dense``'s (and come first in ``get_weights``); ``item_item`` [C, C] (the full fit)
    and, when ``folds`` > 0, ``out_of_fold`` [folds, C, C] (sequence mode's) are frozen.
    """

    def __init__(self, catalog_size: int, weight: float, folds: int = 0, **kwargs):
        super().__init__(**kwargs)
        self.catalog_size = int(catalog_size)
        self.weight = float(weight)
        self.folds = int(folds)

    def build(self, input_shape):
        hidden_shape = tf.TensorShape(input_shape[0])
        self.kernel = self.add_weight(name="kernel", shape=(int(hidden_shape[-1]), self.catalog_size),
                                      initializer="glorot_uniform", trainable=True)
        self.bias = self.add_weight(name="bias", shape=(self.catalog_size,), initializer="zeros", trainable=True)
        self.item_item = self.add_weight(name="item_item", shape=(self.catalog_size, self.catalog_size),
                                         dtype=tf.float16, initializer="zeros", trainable=False)
        if self.folds:
            self.out_of_fold = self.add_weight(
                name="out_of_fold", shape=(self.folds, self.catalog_size, self.catalog_size),
                dtype=tf.float16, initializer="zeros", trainable=False)
        super().build(input_shape)

    def _sequence_rows(self, ids: tf.Tensor) -> tf.Tensor:
        """The item-item rows [B, L, C] sequence mode sums: of the full fit, or of each row's
        out-of-fold matrix."""
        if not self.folds:
            return tf.gather(self.item_item, ids)
        fold = tf.broadcast_to(row_folds(ids, self.folds)[:, None], tf.shape(ids))
        return tf.gather_nd(self.out_of_fold, tf.stack([fold, tf.cast(ids, tf.int64)], -1))

    def running_scores(self, ids: tf.Tensor, columns: tf.Tensor | None = None) -> tf.Tensor:
        """Item-item scores at every position, float[B, L, C] (or [B, L, len(columns)]).

        The history's rows are gathered (then their ``columns``), and the running sum over
        positions is one batched matmul with a lower-triangular [L, L] matrix: a column gather
        on the whole C x C matrix, or a ``cumsum``, is 3-8x slower on CPU.
        """
        rows = self._sequence_rows(ids)
        if columns is not None:
            rows = tf.gather(rows, columns, axis=2)
        length = tf.shape(ids)[1]  # training batches may be narrower than the history length
        causal = tf.linalg.band_part(tf.ones([length, length], tf.float32), -1, 0)  # [t, l]: l <= t
        return tf.einsum("tl,blc->btc", causal, tf.cast(rows, tf.float32))

    def history_sums(self, ids: tf.Tensor) -> tf.Tensor:
        """Item-item scores of whole histories, float[B, C]: one gathered row per position added
        in turn, so memory stays at two [B, C] tensors however long the history."""
        total = tf.zeros([tf.shape(ids)[0], self.catalog_size], tf.float32)
        for position in range(int(ids.shape[1])):
            total += tf.cast(tf.gather(self.item_item, ids[:, position]), tf.float32)
        return total

    def _linear(self, hidden: tf.Tensor) -> tf.Tensor:
        return tf.matmul(hidden, self.kernel) + self.bias

    def call(self, inputs):
        hidden, ids = inputs
        logits = self._linear(hidden)
        if hidden.shape.rank == 2:
            return logits + self.weight * self.history_sums(ids)
        return logits + self.weight * self.running_scores(ids)

    def at_positions(self, hidden: tf.Tensor, ids: tf.Tensor, where: tf.Tensor) -> tf.Tensor:
        """Logits [N, C] of ``hidden`` [N, H], the hidden states at ``where`` (int64[N, 2] of
        (row, position) into ``ids``)."""
        history = tf.gather_nd(self.running_scores(ids), where)
        return self._linear(hidden) + self.weight * history

    def history_candidate_scores(self, ids: tf.Tensor, where: tf.Tensor, positives: tf.Tensor,
                                 negatives: tf.Tensor) -> tf.Tensor:
        """The weighted item-item part [N, 1 + S] of each row's positive (column 0) and the shared
        ``negatives`` at ``where``: the same columns :meth:`at_positions` would give."""
        negative = tf.gather_nd(self.running_scores(ids, negatives), where)
        rows = tf.gather(ids, where[:, 0])  # [N, L]
        visible = tf.range(tf.shape(ids)[1], dtype=where.dtype)[None, :] <= where[:, 1:2]
        rows = tf.where(visible, rows, tf.zeros_like(rows))  # PAD's row is zero
        pairs = [rows, tf.broadcast_to(tf.cast(positives, rows.dtype)[:, None], tf.shape(rows))]
        matrix = self.item_item
        if self.folds:
            fold = tf.gather(row_folds(ids, self.folds), where[:, 0])
            pairs = [tf.broadcast_to(tf.cast(fold, rows.dtype)[:, None], tf.shape(rows)), *pairs]
            matrix = self.out_of_fold
        positive = tf.reduce_sum(tf.cast(tf.gather_nd(matrix, tf.stack(pairs, -1)), tf.float32), axis=1)
        return self.weight * tf.concat([positive[:, None], negative], axis=1)

    def compute_output_shape(self, input_shape):
        hidden_shape = tf.TensorShape(input_shape[0])
        return hidden_shape[:-1].concatenate([self.catalog_size])

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "catalog_size": self.catalog_size, "weight": self.weight, "folds": self.folds}
