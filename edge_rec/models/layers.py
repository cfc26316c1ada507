"""Custom Keras layers of the edge-rec models, each serializable through ``get_config``.

``quantize_apply`` and ``clone_model`` rebuild a model from its config, so no layer here is a
``Lambda``; each is registered under the ``edge_rec`` package name. The student uses only
:class:`PaddingMaskInitializer` (for its frozen ``mask`` embedding), :class:`SequencePooling` and,
with a tied output, :class:`CatalogIds` and :class:`TiedLogits`; the others belong to the teacher,
which may use any op.
"""

from __future__ import annotations

from typing import Any

from edge_rec.keras_shim import keras, tf

PACKAGE = "edge_rec"


@keras.utils.register_keras_serializable(PACKAGE)
class PaddingMaskInitializer(keras.initializers.Initializer):
    """Initialises a ``[C, 1]`` table to 0 for the padding row (index 0) and 1 for every other row.

    Used by the student's frozen one-column ``mask`` Embedding: looking an id up gives 1 for a
    real item (or OOV) and 0 for padding, without any op other than a gather touching the ids.
    """

    def __call__(self, shape, dtype=None, **kwargs):
        dtype = dtype or tf.float32
        ones = tf.ones(shape, dtype=dtype)
        row = tf.range(shape[0])[:, None]
        return tf.where(tf.equal(row, 0), tf.zeros_like(ones), ones)

    def get_config(self) -> dict[str, Any]:
        return {}


@keras.utils.register_keras_serializable(PACKAGE)
class SequencePooling(keras.layers.Layer):
    """Masked (optionally recency-weighted) mean of item embeddings.

    Inputs: ``[embeddings float[B, L, E], mask float[B, L, 1]]`` (mask 1 for real items).

    * ``causal=True`` (sequence mode): output ``[B, L, E]``; position ``t`` is the weighted mean
      of the real items at positions ``<= t`` — a causal running mean, one pass for all positions.
    * ``causal=False`` (serving mode): output ``[B, E]``, the weighted mean over all positions —
      exactly the running mean at the last position, with the same weights.

    ``weighting="position"`` learns one positive weight per distance from the current position
    (distance 0 = the newest item), initialised to ``exp(-initial_decay * distance)``; ``"mean"`` uses equal
    weights and has no variables. The serving graph uses only Mul, Sum, Maximum and Rsqrt on
    activations (the weights are constants after conversion): no Div, which tflite-runtime 2.14
    cannot run in int8 (see :meth:`_normalize`). Histories are left-padded (newest
    item last); an all-padding history pools to zeros, in float and in int8 alike.
    """

    def __init__(
        self,
        history_length: int,
        weighting: str = "mean",
        causal: bool = False,
        initial_decay: float = 0.3,
        **kwargs,
    ):
        super().__init__(**kwargs)
        self.initial_decay = float(initial_decay)
        if weighting not in ("mean", "position"):
            raise ValueError(f"SequencePooling.weighting: expected 'mean' or 'position', got {weighting!r}")
        if history_length < 1:
            raise ValueError(f"SequencePooling.history_length: expected >= 1, got {history_length}")
        self.history_length = int(history_length)
        self.weighting = weighting
        self.causal = bool(causal)

    def build(self, input_shape):
        if self.weighting == "position":
            decay = self.initial_decay * tf.range(self.history_length, dtype=tf.float32)
            self.distance_logits = self.add_weight(
                name="distance_logits",
                shape=(self.history_length,),
                initializer=keras.initializers.Constant(-decay.numpy()),
                trainable=True,
            )
        super().build(input_shape)

    def distance_weights(self) -> tf.Tensor:
        """Positive weight per distance from the current position, ``float[L]`` (index 0 = newest)."""
        if self.weighting == "mean":
            return tf.ones((self.history_length,), tf.float32)
        return tf.exp(tf.clip_by_value(self.distance_logits, -20.0, 20.0))

    def call(self, inputs):
        embeddings, mask = inputs
        weights = self.distance_weights()
        if self.causal:
            # training batches may be narrower than history_length (padding columns cut off)
            length = tf.shape(embeddings)[1]
            # matrix[t, s] = weight of distance t - s for s <= t, else 0 (training only).
            t = tf.range(length)[:, None]
            s = tf.range(length)[None, :]
            distance = tf.maximum(t - s, 0)
            matrix = tf.gather(weights, distance) * tf.cast(s <= t, tf.float32)
            numerator = tf.einsum("ts,bse->bte", matrix, embeddings * mask)
            denominator = tf.einsum("ts,bsk->btk", matrix, mask)
            return self._normalize(numerator, denominator, weights)
        # serving: position s is at distance L-1-s from the last position.
        length = self.history_length
        per_position = tf.reshape(tf.reverse(weights, axis=[0]), (1, length, 1))
        weighted_mask = mask * per_position
        numerator = tf.reduce_sum(embeddings * weighted_mask, axis=1)
        denominator = tf.reduce_sum(weighted_mask, axis=1)
        return self._normalize(numerator, denominator, weights)

    @classmethod
    def _normalize(cls, numerator: tf.Tensor, denominator: tf.Tensor, weights: tf.Tensor) -> tf.Tensor:
        # numerator / max(denominator, floor), written as (numerator * r) * r with r = rsqrt(...):
        # a Div (or tf.math.reciprocal, which converts to Div) becomes an int8 DIV that
        # tflite-runtime 2.14 refuses to invoke; RSQRT and MUL run in int8 on both interpreters.
        # Multiplying by r twice keeps each int8 product in the pooled range (r * r first would
        # quantize 1/denominator over its whole, wide range).
        r = tf.math.rsqrt(tf.maximum(denominator, cls._floor(weights)))
        return (numerator * r) * r

    @staticmethod
    def _floor(weights: tf.Tensor) -> tf.Tensor:
        # Histories are left-padded, newest last: a row (or causal prefix) with any real item has
        # one at distance 0, so its denominator is >= weights[0] and this floor never changes it.
        # An all-padding row gets 0 * rsqrt(floor)^2 = 0. A tiny constant floor (1e-6) would
        # quantize to 0 in the int8 graph, and int8 RSQRT of 0 is infinite.
        return 0.5 * weights[0]

    def compute_output_shape(self, input_shape):
        embeddings_shape = tf.TensorShape(input_shape[0])
        if self.causal:
            return embeddings_shape
        return tf.TensorShape([embeddings_shape[0], embeddings_shape[2]])

    def get_config(self) -> dict[str, Any]:
        config = super().get_config()
        config.update(
            history_length=self.history_length,
            weighting=self.weighting,
            causal=self.causal,
            initial_decay=self.initial_decay,
        )
        return config


@keras.utils.register_keras_serializable(PACKAGE)
class CatalogIds(keras.layers.Layer):
    """``int32[1, C]``: the ids ``0 .. C-1`` of the whole catalog, whatever the input.

    Takes the history only to sit in the functional graph; looking its output up in the item
    Embedding gives the embedding table as a tensor (``[1, C, E]``), which :class:`TiedLogits`
    scores against. After conversion the lookup of constant ids in constant weights folds into a
    constant, so serving pays nothing for it.
    """

    def __init__(self, catalog_size: int, **kwargs):
        super().__init__(**kwargs)
        if catalog_size < 1:
            raise ValueError(f"CatalogIds.catalog_size: expected >= 1, got {catalog_size}")
        self.catalog_size = int(catalog_size)

    def call(self, inputs):
        return tf.range(self.catalog_size, dtype=tf.int32)[None, :]

    def compute_output_shape(self, input_shape):
        return tf.TensorShape([1, self.catalog_size])

    def get_config(self) -> dict[str, Any]:
        config = super().get_config()
        config.update(catalog_size=self.catalog_size)
        return config


@keras.utils.register_keras_serializable(PACKAGE)
class TiedLogits(keras.layers.Layer):
    """Output layer tied to the item embedding: ``logits = hidden . table^T + bias``.

    Inputs: ``[hidden float[B, E] or float[B, L, E], table float[1, C, E]]``; output
    ``float[B, C]`` or ``float[B, L, C]``. Its only weight is one bias per item (``C``), so an
    output of width E costs C parameters instead of ``E·C + C`` (parameter sharing).
    """

    def build(self, input_shape):
        catalog_size = int(tf.TensorShape(input_shape[1])[1])
        self.bias = self.add_weight(name="bias", shape=(catalog_size,), initializer="zeros", trainable=True)
        super().build(input_shape)

    def call(self, inputs):
        hidden, table = inputs
        table = table[0]
        width = tf.shape(hidden)[-1]
        flat = tf.reshape(hidden, (-1, width))
        logits = tf.matmul(flat, table, transpose_b=True) + self.bias
        if hidden.shape.rank == 2:
            return logits
        leading = tf.shape(hidden)[:-1]
        return tf.reshape(logits, tf.concat([leading, tf.shape(table)[:1]], axis=0))

    def compute_output_shape(self, input_shape):
        hidden_shape = tf.TensorShape(input_shape[0])
        return hidden_shape[:-1].concatenate([tf.TensorShape(input_shape[1])[1]])


def tied_logits(represent, ids, hidden, catalog_size: int):
    """The ``logits`` output of a model whose output is tied to its item representation
    (``represent``: the ``item_embedding`` layer, or ids -> id embedding + features): a
    :class:`TiedLogits` scoring ``hidden`` against every item's representation, looked up at
    :class:`CatalogIds` (the one wiring the student's and the teacher's tied outputs share)."""
    table = represent(CatalogIds(catalog_size, name="catalog_ids")(ids))
    return TiedLogits(name="logits")([hidden, table])


@keras.utils.register_keras_serializable(PACKAGE)
class PositionEmbedding(keras.layers.Layer):
    """Scales item embeddings by sqrt(width) and adds one learned vector per position (SASRec).

    Positions are counted from the right (histories are left-padded, newest item last): an input
    narrower than ``history_length`` (a training batch with its all-padding columns cut off, see
    :mod:`edge_rec.distill.training_input`) gets the last of the ``history_length`` vectors, so
    every item gets the vector of its distance from the newest one, whatever the width.
    """

    def __init__(self, history_length: int, **kwargs):
        super().__init__(**kwargs)
        self.history_length = int(history_length)

    def build(self, input_shape):
        self.positions = self.add_weight(
            name="positions",
            shape=(self.history_length, int(input_shape[-1])),
            initializer=keras.initializers.RandomNormal(stddev=0.02),
            trainable=True,
        )
        super().build(input_shape)

    def call(self, inputs):
        width = tf.cast(tf.shape(inputs)[-1], inputs.dtype)
        positions = self.positions[self.history_length - tf.shape(inputs)[1]:]
        return inputs * tf.sqrt(width) + positions[None, :, :]

    def get_config(self) -> dict[str, Any]:
        config = super().get_config()
        config.update(history_length=self.history_length)
        return config


@keras.utils.register_keras_serializable(PACKAGE)
class PaddingMask(keras.layers.Layer):
    """``float[B, L, 1]``: 1 where the id is a real item (not padding index 0), else 0."""

    def call(self, ids):
        return tf.cast(tf.not_equal(ids, 0), tf.float32)[:, :, None]


@keras.utils.register_keras_serializable(PACKAGE)
class CausalAttentionMask(keras.layers.Layer):
    """``bool[B, L, L]``: query ``t`` may attend key ``s`` when ``s <= t`` and ``s`` is not padding.

    A padding query attends to itself so that no softmax row is empty.
    """

    def call(self, ids):
        length = tf.shape(ids)[1]
        causal = tf.linalg.band_part(tf.ones((length, length), tf.bool), -1, 0)
        keys = tf.not_equal(ids, 0)[:, None, :]
        diagonal = tf.eye(length, dtype=tf.bool)[None, :, :]
        return tf.logical_or(tf.logical_and(causal[None, :, :], keys), diagonal)


@keras.utils.register_keras_serializable(PACKAGE)
class LastPosition(keras.layers.Layer):
    """``[B, L, H] -> [B, H]``: the last position (histories are left-padded, newest last)."""

    def call(self, inputs):
        return inputs[:, -1, :]

    def compute_output_shape(self, input_shape):
        shape = tf.TensorShape(input_shape)
        return tf.TensorShape([shape[0], shape[2]])


CUSTOM_OBJECTS: dict[str, Any] = {
    cls.__name__: cls
    for cls in (
        PaddingMaskInitializer,
        SequencePooling,
        CatalogIds,
        TiedLogits,
        PositionEmbedding,
        PaddingMask,
        CausalAttentionMask,
        LastPosition,
    )
}
