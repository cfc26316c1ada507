"""A sequence model seen as a body (ids -> hidden states) and an output head (hidden -> logits).

Training and validation only need logits at a few positions: the positions with a real next
item (on short real histories, a small share of ``B x L``) or the last one. Running the
catalog-sized output layer on those positions alone gives the same numbers as running it
everywhere and picking them afterwards, at a fraction of the cost. :class:`OutputHead` does this
for every model edge-rec trains (teacher, student, their pruning and QAT wrappers); a model whose
logits layer does not read the ``hidden`` output directly is run whole and its positions picked
afterwards, with the same results. A tied output layer (:class:`~edge_rec.models.layers.TiedLogits`,
scoring against the model's own, unwrapped item embedding table) counts as reading ``hidden``:
its rows of the catalog are the table's rows.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from edge_rec.keras_shim import keras, tf
from edge_rec.models.item_encoder import feature_encoder
from edge_rec.models.layers import TiedLogits


class OutputHead:
    """Logits and hidden states of a sequence-mode model ``(logits [B, L, C], hidden [B, L, H])``
    at chosen positions only.

    ``split`` is True when the logits layer reads ``hidden`` directly; then the body runs on the
    whole history and the output layer only on the chosen positions.
    """

    def __init__(self, model: keras.Model) -> None:
        self.model = model
        self.catalog_size = int(model.outputs[0].shape[-1])
        logits_layer = model.outputs[0]._keras_history.layer
        hidden = model.outputs[1] if len(model.outputs) > 1 else None
        tied = type(logits_layer) is TiedLogits
        with_features = tied and feature_encoder(model) is not None
        #: the item embedding table a tied output layer scores against (None: not tied, a wrapped
        #: table, or items represented with their features, whose table ``_table_model`` computes)
        self.table: tf.Variable | None = _plain_table(model) if tied and not with_features else None
        self._table_model: keras.Model | None = None
        if with_features:
            self._table_model = keras.Model(model.inputs, logits_layer.input[1])
            self._table_input = tf.zeros((1, model.inputs[0].shape[1] or 1), tf.int32)
        # a tied layer's first input is the hidden state, its second the table
        reads = logits_layer.input[0] if self.table is not None or with_features else logits_layer.input
        self.split = hidden is not None and len(logits_layer._inbound_nodes) == 1 and reads is hidden
        self.body: keras.Model | None = keras.Model(model.inputs, hidden) if self.split else None
        self.logits_layer: Any = logits_layer if self.split else None

    def at_positions(self, ids: tf.Tensor, where: tf.Tensor, *, training: bool) -> tuple[tf.Tensor, tf.Tensor]:
        """``(logits [N, C], hidden [N, H])`` at ``where`` (int64[N, 2] of (row, position))."""
        if self.split:
            hidden = tf.gather_nd(self.body(ids, training=training), where)
            return self.logits_at(hidden, training=training), hidden
        logits, hidden = self.model(ids, training=training)
        return tf.gather_nd(logits, where), tf.gather_nd(hidden, where)

    def logits_at(self, hidden: tf.Tensor, *, training: bool = False) -> tf.Tensor:
        """Logits ``[N, C]`` of hidden states ``[N, H]``: the output layer alone (a tied layer
        reads the table itself); only for ``split`` heads."""
        table = self._item_table(training=training)
        if table is not None:
            return self.logits_layer([hidden, table[None]], training=training)
        return self.logits_layer(hidden, training=training)

    def _item_table(self, *, training: bool = False) -> tf.Tensor | None:
        """The ``[C, E]`` table a tied output scores against (None for an untied output)."""
        if self._table_model is not None:
            return self._table_model(self._table_input, training=training)[0]
        return self.table

    def _item_rows(self, items: tf.Tensor, *, training: bool) -> tuple[tf.Tensor, tf.Tensor]:
        """``(weights [N, H], bias [N])`` of the output layer's columns for ``items``."""
        layer = self.logits_layer
        table = self._item_table(training=training)
        if table is not None:
            return tf.gather(table, items), tf.gather(layer.bias, items)
        return tf.transpose(tf.gather(layer.kernel, items, axis=1)), tf.gather(layer.bias, items)

    def hidden_at(self, ids: tf.Tensor, where: tf.Tensor, *, training: bool) -> tf.Tensor:
        """Hidden states ``[N, H]`` at ``where`` (int64[N, 2]); only for ``split`` heads."""
        return tf.gather_nd(self.body(ids, training=training), where)

    @property
    def can_score_candidates(self) -> bool:
        """True when logits of a few items can be computed without scoring the whole catalog:
        a split head whose output layer is a plain linear Dense (not a pruning/QAT wrapper)."""
        layer = self.logits_layer
        return self.split and (
            self.table is not None
            or self._table_model is not None
            or (isinstance(layer, keras.layers.Dense) and layer.activation is keras.activations.linear)
        )

    def candidate_logits(self, hidden: tf.Tensor, positives: tf.Tensor, negatives: tf.Tensor, *,
                         training: bool = False) -> tf.Tensor:
        """Logits ``[N, 1 + S]`` of each row's positive item (column 0) and the shared negatives.

        ``hidden`` [N, H], ``positives`` int[N], ``negatives`` int[S]. Exactly the columns the
        full output layer would give for those items.
        """
        if self.can_score_candidates:
            rows, bias = self._item_rows(positives, training=training)
            positive = tf.reduce_sum(hidden * rows, axis=-1) + bias
            rows, bias = self._item_rows(negatives, training=training)
            negative = tf.matmul(hidden, rows, transpose_b=True) + bias
            return tf.concat([positive[:, None], negative], axis=1)
        full = self.logits_at(hidden, training=training) if self.split else None
        if full is None:
            raise ValueError("candidate_logits needs a split head; use at_positions for this model")
        positive = tf.gather(full, positives, batch_dims=1)
        return tf.concat([positive[:, None], tf.gather(full, negatives, axis=1)], axis=1)

    def last_position(self, ids: tf.Tensor) -> tf.Tensor:
        """Inference-mode logits ``[B, C]`` at the last position (serving models: their output)."""
        if self.split and len(self.model.outputs[0].shape) == 3:
            return self.logits_at(self.body(ids, training=False)[:, -1, :])
        outputs = self.model(ids, training=False)
        logits = outputs[0] if isinstance(outputs, list | tuple) else outputs
        return logits[:, -1, :] if len(logits.shape) == 3 else logits


def _item_embedding_layers(model: keras.Model) -> list[keras.layers.Layer]:
    """Every ``item_embedding`` layer (or its pruning/QAT wrapper) of the model, in order: one,
    or one per member of an averaged teacher (whose members are nested models)."""
    found = []
    for layer in model.layers:
        if layer.name.endswith("item_embedding"):
            found.append(layer)
        elif isinstance(layer, keras.Model):
            found.extend(_item_embedding_layers(layer))
    return found


def _item_embedding_layer(model: keras.Model) -> keras.layers.Layer:
    """The model's ``item_embedding`` layer, or the pruning/QAT wrapper around it (for an
    averaged teacher, its first member's)."""
    layers = _item_embedding_layers(model)
    if not layers:
        raise ValueError(f"model {model.name!r} has no item_embedding layer")
    return layers[0]


def _plain_table(model: keras.Model) -> tf.Variable | None:
    """The model's item embedding table when its ``item_embedding`` layer is a plain Embedding
    (not a pruning or quantization wrapper, whose effective table differs from the variable)."""
    layer = _item_embedding_layer(model)
    return layer.embeddings if type(layer) is keras.layers.Embedding else None


def item_embedding_tables(model: keras.Model) -> list[tf.Variable]:
    """Every ``item_embedding`` table ``[C, E]`` of the model: its own, or each member's of an
    averaged teacher."""
    return [getattr(layer, "layer", layer).embeddings for layer in _item_embedding_layers(model)]


def item_embedding_table(model: keras.Model) -> tf.Variable:
    """The ``item_embedding`` table ``[C, E]`` of a teacher or student (wrapped or not)."""
    layer = _item_embedding_layer(model)
    return getattr(layer, "layer", layer).embeddings


def output_weights(model: keras.Model) -> list[np.ndarray]:
    """``[kernel [H, C], bias [C]]`` of a teacher's ``logits`` layer, as numpy copies: a
    ``Dense``'s weights, or for a tied output the item embedding table, transposed, and the
    layer's bias."""
    layer = model.get_layer("logits")
    if isinstance(layer, TiedLogits):
        return [item_embedding_table(model).numpy().T, layer.bias.numpy()]
    return [np.array(w) for w in layer.get_weights()]
