"""Items represented by their id and their features: ``id embedding + feature encoder(tokens)``.

With item features (:mod:`edge_rec.data.item_features`), a model's item representation, read by
its input tower and by its tied output layer alike, is the sum of the item's id embedding and the
weighted mean of its feature tokens' embeddings (:class:`ItemFeatureEncoder`). During training an
item's id part is dropped at random (:class:`IdDropout`, no rescaling) so that the model learns
to rank items from their features alone, which is all a new item has.

The device never runs the encoder: after training, :func:`fold_item_features` folds the encoder's
output into the id table of a plain model of the same config (the representation of every item
becomes one table row), and a catalog patch computes a new item's row with :func:`encode_items`
from the encoder's token table, saved beside the model.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from device_runtime.bundle_schema import FIRST_ITEM_INDEX
from edge_rec.data.item_features import ItemTokens
from edge_rec.keras_shim import keras, tf
from edge_rec.models.layers import PACKAGE

#: File (beside a saved model) holding the feature encoder's token embedding table.
ENCODER_FILE = "item_encoder.npz"


def encode_items(token_embeddings: np.ndarray, ids: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """The encoder's output ``float32[N, E]`` for items with tokens ``ids``/``weights`` [N, T]:
    the weighted sum of their tokens' rows of ``token_embeddings`` [buckets, E]."""
    return np.einsum("nt,nte->ne", weights.astype(np.float32), token_embeddings[np.asarray(ids, np.int64)]).astype(np.float32)


@keras.utils.register_keras_serializable(PACKAGE)
class ItemFeatureEncoder(keras.layers.Layer):
    """Item ids ``int[...]`` -> their feature vectors ``float[..., E]``: the weighted mean of the
    item's token embeddings. Holds the catalog's token ids and weights as frozen weights (so the
    config stays small and ``set_weights`` copies them) and a trainable ``[buckets, E]`` table."""

    def __init__(self, catalog_size: int, max_tokens: int, buckets: int, dim: int,
                 tokens: ItemTokens | None = None, **kwargs):
        super().__init__(**kwargs)
        self.catalog_size, self.max_tokens, self.buckets, self.dim = catalog_size, max_tokens, buckets, dim
        self._tokens = tokens

    def build(self, input_shape):
        ids = self._tokens.ids if self._tokens is not None else np.zeros((self.catalog_size, self.max_tokens))
        weights = self._tokens.weights if self._tokens is not None else np.zeros(ids.shape)
        self.token_ids = self.add_weight(name="token_ids", shape=ids.shape, dtype="int32", trainable=False,
                                         initializer=keras.initializers.Constant(ids.astype(np.int32)))
        self.token_weights = self.add_weight(name="token_weights", shape=ids.shape, trainable=False,
                                             initializer=keras.initializers.Constant(weights.astype(np.float32)))
        self.token_embeddings = self.add_weight(
            name="token_embeddings", shape=(self.buckets, self.dim), trainable=True,
            initializer=keras.initializers.RandomNormal(stddev=0.05))
        super().build(input_shape)

    def call(self, ids):
        token_ids = tf.gather(self.token_ids, ids)
        weights = tf.gather(self.token_weights, ids)
        return tf.einsum("...t,...te->...e", weights, tf.gather(self.token_embeddings, token_ids))

    def encoded_catalog(self) -> np.ndarray:
        """The encoder's output for every catalog row, ``float32[C, E]`` (numpy)."""
        return encode_items(self.token_embeddings.numpy(), self.token_ids.numpy(), self.token_weights.numpy())

    def compute_output_shape(self, input_shape):
        return tf.TensorShape(input_shape).concatenate([self.dim])

    def get_config(self) -> dict[str, Any]:
        config = super().get_config()
        config.update(catalog_size=self.catalog_size, max_tokens=self.max_tokens, buckets=self.buckets, dim=self.dim)
        return config


@keras.utils.register_keras_serializable(PACKAGE)
class IdDropout(keras.layers.Layer):
    """The id part of item vectors: inputs ``[vectors float[..., E], ids int[...]]``. Multiplies
    each vector by its item's frozen ``id_mask`` (0 for a features-only item, 1 otherwise) and, in
    training, zeroes whole vectors with probability ``rate`` (no rescaling: at serving an item has
    its whole id part, a new item none)."""

    def __init__(self, rate: float, catalog_size: int, id_mask: np.ndarray | None = None, **kwargs):
        super().__init__(**kwargs)
        self.rate, self.catalog_size = float(rate), int(catalog_size)
        self._initial_mask = id_mask

    def build(self, input_shape):
        mask = self._initial_mask if self._initial_mask is not None else np.ones(self.catalog_size, np.float32)
        self.id_mask = self.add_weight(name="id_mask", shape=(self.catalog_size,), trainable=False,
                                       initializer=keras.initializers.Constant(mask.astype(np.float32)))
        super().build(input_shape)

    def call(self, inputs, training=None):
        vectors, ids = inputs
        keep = tf.gather(self.id_mask, ids)
        if training and self.rate > 0:
            keep = keep * tf.cast(tf.random.uniform(tf.shape(ids)) >= self.rate, vectors.dtype)
        return vectors * keep[..., None]

    def compute_output_shape(self, input_shape):
        return tf.TensorShape(input_shape[0])

    def get_config(self) -> dict[str, Any]:
        config = super().get_config()
        config.update(rate=self.rate, catalog_size=self.catalog_size)
        return config


def item_representation(item_embedding: keras.layers.Embedding, tokens: ItemTokens | None, dim: int
                        ) -> Callable[[Any], Any]:
    """The function ids -> item vectors a model's towers and tied output share: the id embedding,
    plus (with ``tokens``) the feature encoder's output, the id part masked for features-only
    items and dropped at random in training. One encoder and one dropout layer serve every call,
    so every read shares their weights."""
    if tokens is None:
        return item_embedding
    encoder = ItemFeatureEncoder(tokens.catalog_size, int(tokens.ids.shape[1]), tokens.buckets, dim, tokens,
                                 name="item_features")
    dropout = IdDropout(tokens.id_dropout, tokens.catalog_size, tokens.id_mask, name="id_dropout")
    add = keras.layers.Add(name="item_representation")

    def represent(ids):
        return add([dropout([item_embedding(ids), ids]), encoder(ids)])

    return represent


def feature_encoder(model: keras.Model) -> ItemFeatureEncoder | None:
    """The model's :class:`ItemFeatureEncoder`, or None for a model without item features."""
    for layer in model.layers:
        if isinstance(layer, ItemFeatureEncoder):
            return layer
    return None


def fold_item_features(trained: keras.Model, plain: keras.Model, *, new_item_bias_quantile: float = 0.5
                       ) -> np.ndarray | None:
    """Copy ``trained`` (a model with item features) into ``plain`` (the same architecture built
    without them, in either mode): every layer's weights in order, the encoder's and the id
    mask's left out, and ``item_embedding`` = masked id table + encoder output for every catalog
    row, so ``plain`` scores exactly like ``trained`` at inference. A features-only item's output
    bias becomes the ``new_item_bias_quantile`` quantile of the others' (as a patched item's:
    training only ever pushed it down, as a negative). Returns the encoder's token table (what a
    catalog patch encodes new items with); None, and a plain copy, when ``trained`` has no features."""
    encoder = feature_encoder(trained)
    extras = (ItemFeatureEncoder, IdDropout)
    sources = [layer for layer in trained.layers if layer.weights and not isinstance(layer, extras)]
    targets = [layer for layer in plain.layers if layer.weights]
    if len(sources) != len(targets):
        raise ValueError(f"fold_item_features: {trained.name!r} and {plain.name!r} differ in their layers "
                         f"({[s.name for s in sources]} against {[t.name for t in targets]})")
    mask = next((layer.id_mask.numpy() for layer in trained.layers if isinstance(layer, IdDropout)), None)
    for source, target in zip(sources, targets, strict=True):
        weights = source.get_weights()
        if target.name == "item_embedding" and encoder is not None:
            weights = [weights[0] * mask[:, None] + encoder.encoded_catalog()]
        elif target.name == "logits" and mask is not None and (mask == 0).any() and len(weights) == 1:
            bias = weights[0].copy()
            trained_rows = (mask > 0) & (np.arange(len(mask)) >= FIRST_ITEM_INDEX)
            bias[mask == 0] = np.quantile(bias[trained_rows], new_item_bias_quantile)
            weights = [bias]
        target.set_weights(weights)
    return None if encoder is None else encoder.token_embeddings.numpy()


def save_item_encoder(model_dir: Path, token_embeddings: np.ndarray) -> Path:
    """Write a student's encoder token table beside its saved model (:data:`ENCODER_FILE`)."""
    path = Path(model_dir) / ENCODER_FILE
    with open(path, "wb") as out:
        np.savez(out, token_embeddings=np.asarray(token_embeddings, np.float32))
    return path


def load_item_encoder(model_dir: Path) -> np.ndarray | None:
    """The encoder token table saved beside a model, or None when the model has no features."""
    path = Path(model_dir) / ENCODER_FILE
    if not path.is_file():
        return None
    with np.load(path) as saved:
        return saved["token_embeddings"]
