"""The student: a small, int8-friendly next-item model (embedding, pooling, Dense + ReLU)."""

from __future__ import annotations

from edge_rec.config import StudentConfig
from edge_rec.keras_shim import keras
from edge_rec.models.item_encoder import ItemTokens, item_representation
from edge_rec.models.layers import PaddingMaskInitializer, SequencePooling, tied_logits


def build_student(
    cfg: StudentConfig, catalog_size: int, history_length: int, *, sequence: bool = True,
    item_tokens: ItemTokens | None = None,
) -> keras.Model:
    """Build the student: input ``history`` int32[B, L]; outputs ``logits`` and ``hidden``.

    Layers: ``item_embedding`` (Embedding C x E), ``mask`` (frozen one-column Embedding, 0 for PAD,
    1 otherwise — the only other layer that reads ids), ``pooling`` (:class:`SequencePooling`,
    masked mean or learned recency-weighted mean), Dense + ReLU layers of ``cfg.hidden`` widths
    (the last is named ``hidden``; with no hidden layers the pooling is), and ``logits``: Dense(C),
    or with ``cfg.tie_output`` a :class:`TiedLogits` that scores the hidden state against the item
    embedding table itself (the last hidden width must then equal ``embedding_dim``; the output
    costs C biases instead of H·C + C weights, so the same budget buys a wider model).

    ``sequence=True`` pools causally (running mean, outputs [B, L, ...]) for training;
    ``sequence=False`` pools over the whole history (outputs [B, ...]) for serving. Both have the
    same weights in the same order.

    ``item_tokens`` (item features; needs ``tie_output``): every item is its id embedding plus
    its features' encoding (:func:`~edge_rec.models.item_encoder.item_representation`), in the
    pooled history and the output layer alike.
    """
    if item_tokens is not None and not cfg.tie_output:
        raise ValueError("student.tie_output: item features need a tied output (the output scores items by the "
                         "same representation, so a new item can be scored from its features); set "
                         f"tie_output = true and hidden = [{cfg.embedding_dim}]")
    if cfg.tie_output and not cfg.can_tie_output:
        raise ValueError(
            f"student.hidden: with tie_output = true the hidden state must be student.embedding_dim "
            f"({cfg.embedding_dim}) wide, got {cfg.hidden_width} (hidden = {list(cfg.hidden)}); "
            f"use hidden = [{cfg.embedding_dim}]"
        )
    if catalog_size < 3:
        raise ValueError(f"catalog_size: expected >= 3 (PAD, OOV and at least one item), got {catalog_size}")
    if cfg.embedding_dim < 1 or any(w < 1 for w in cfg.hidden):
        raise ValueError(
            f"student.embedding_dim and student.hidden: expected positive widths, got "
            f"{cfg.embedding_dim} and {list(cfg.hidden)}"
        )
    ids = keras.Input((None if sequence else history_length,), dtype="int32", name="history")
    item_embedding = keras.layers.Embedding(catalog_size, cfg.embedding_dim, name="item_embedding")
    represent = item_representation(item_embedding, item_tokens, cfg.embedding_dim)
    embeddings = represent(ids)
    mask = keras.layers.Embedding(
        catalog_size, 1, embeddings_initializer=PaddingMaskInitializer(), trainable=False, name="mask"
    )(ids)
    weighting = "position" if cfg.pooling == "position" else "mean"
    if cfg.pooling not in ("mean", "position"):
        raise ValueError(f"student.pooling: expected 'mean' or 'position', got {cfg.pooling!r}")
    if cfg.initial_decay < 0:
        raise ValueError(f"student.initial_decay: expected a decay >= 0, got {cfg.initial_decay}")
    x = SequencePooling(
        history_length,
        weighting=weighting,
        causal=sequence,
        initial_decay=cfg.initial_decay,
        name="hidden" if not cfg.hidden else "pooling",
    )([embeddings, mask])
    for i, width in enumerate(cfg.hidden):
        x = keras.layers.Dropout(cfg.dropout, name=f"dropout_{i}")(x)
        last = i == len(cfg.hidden) - 1
        x = keras.layers.Dense(width, activation="relu", name="hidden" if last else f"dense_{i}")(x)
    hidden = x
    if cfg.tie_output:
        logits = tied_logits(represent, ids, hidden, catalog_size)
    else:
        logits = keras.layers.Dense(catalog_size, name="logits")(hidden)
    return keras.Model(ids, [logits, hidden], name="student" if sequence else "student_serving")


def student_serving_model(
    sequence_model: keras.Model, cfg: StudentConfig, catalog_size: int, history_length: int
) -> keras.Model:
    """The serving form (plain masked pooling over the history) of a trained sequence-mode student.

    Builds the same architecture with non-causal pooling and copies every weight; the result's
    outputs are exactly the sequence model's outputs at the last position.
    """
    serving = build_student(cfg, catalog_size, history_length, sequence=False)
    serving.set_weights(sequence_model.get_weights())
    return serving
