"""The teacher: a SASRec-style causal self-attention model (or a GRU) over item histories."""

from __future__ import annotations

from edge_rec.config import TeacherConfig
from edge_rec.keras_shim import keras
from edge_rec.models.item_encoder import ItemTokens, item_representation
from edge_rec.models.layers import (
    CausalAttentionMask,
    LastPosition,
    PaddingMask,
    PositionEmbedding,
    tied_logits,
)


def _check_sizes(catalog_size: int, history_length: int) -> None:
    if catalog_size < 3:
        raise ValueError(f"catalog_size: expected >= 3 (PAD, OOV and at least one item), got {catalog_size}")
    if history_length < 1:
        raise ValueError(f"history_length: expected >= 1, got {history_length}")


def _sasrec_body(cfg: TeacherConfig, ids, represent, history_length: int):
    if cfg.hidden % cfg.heads:
        raise ValueError(f"teacher.hidden ({cfg.hidden}) must be divisible by teacher.heads ({cfg.heads})")
    x = represent(ids)
    x = PositionEmbedding(history_length, name="positions")(x)
    x = keras.layers.Dropout(cfg.dropout, name="embedding_dropout")(x)
    pad = PaddingMask(name="padding_mask")(ids)
    attention_mask = CausalAttentionMask(name="attention_mask")(ids)
    x = keras.layers.Multiply(name="mask_embeddings")([x, pad])
    for b in range(cfg.blocks):
        h = keras.layers.LayerNormalization(epsilon=1e-6, name=f"block{b}_attention_norm")(x)
        a = keras.layers.MultiHeadAttention(
            num_heads=cfg.heads,
            key_dim=cfg.hidden // cfg.heads,
            dropout=cfg.dropout,
            name=f"block{b}_attention",
        )(h, h, attention_mask=attention_mask)
        a = keras.layers.Dropout(cfg.dropout, name=f"block{b}_attention_dropout")(a)
        x = keras.layers.Add(name=f"block{b}_attention_residual")([x, a])
        h = keras.layers.LayerNormalization(epsilon=1e-6, name=f"block{b}_ffn_norm")(x)
        f = keras.layers.Dense(cfg.hidden, activation="relu", name=f"block{b}_ffn_in")(h)
        f = keras.layers.Dropout(cfg.dropout, name=f"block{b}_ffn_dropout")(f)
        f = keras.layers.Dense(cfg.hidden, name=f"block{b}_ffn_out")(f)
        f = keras.layers.Dropout(cfg.dropout, name=f"block{b}_ffn_out_dropout")(f)
        x = keras.layers.Add(name=f"block{b}_ffn_residual")([x, f])
        x = keras.layers.Multiply(name=f"block{b}_mask")([x, pad])
    return x


def _gru_body(cfg: TeacherConfig, ids, item_embedding):
    x = item_embedding(ids)
    x = keras.layers.Dropout(cfg.dropout, name="embedding_dropout")(x)
    for b in range(cfg.blocks):
        x = keras.layers.GRU(cfg.hidden, return_sequences=True, name=f"gru{b}")(x)
        x = keras.layers.Dropout(cfg.dropout, name=f"gru{b}_dropout")(x)
    return x


def build_teacher(
    cfg: TeacherConfig, catalog_size: int, history_length: int, *, sequence: bool = True,
    item_tokens: ItemTokens | None = None,
) -> keras.Model:
    """Build the teacher: input ``history`` int32[B, L]; outputs ``logits`` and ``hidden``.

    ``kind="sasrec"``: item embedding plus learned positions, ``cfg.blocks`` pre-norm blocks of
    causal multi-head self-attention and a feed-forward layer (residuals, LayerNormalization,
    dropout), padding masked. ``kind="gru"``: ``cfg.blocks`` stacked GRUs over the masked history.

    ``sequence=True``: logits float[B, L, C], hidden float[B, L, H]; position t scores the item
    after ``history[:, :t+1]``. ``sequence=False``: the last position only (float[B, C], [B, H]).
    ``cfg.tie_output`` (SASRec only): the output layer scores the hidden state against the item embedding table
    (:class:`~edge_rec.models.layers.TiedLogits`, SASRec's shared prediction layer) instead of a
    separate ``Dense``.
    Both modes have the same weights in the same order (``set_weights`` transfers them).
    ``item_tokens`` (item features, SASRec with a tied output only): every item is its id
    embedding plus its features' encoding
    (:func:`~edge_rec.models.item_encoder.item_representation`), in the input and the output alike.
    """
    _check_sizes(catalog_size, history_length)
    ids = keras.Input((None if sequence else history_length,), dtype="int32", name="history")
    if cfg.kind == "sasrec":
        item_embedding = keras.layers.Embedding(catalog_size, cfg.hidden, name="item_embedding")
        if item_tokens is not None and not cfg.tie_output:
            raise ValueError("teacher.tie_output: item features need a tied output; set tie_output = true")
        represent = item_representation(item_embedding, item_tokens, cfg.hidden)
        x = _sasrec_body(cfg, ids, represent, history_length)
    elif cfg.kind == "gru":
        if item_tokens is not None:
            raise ValueError("teacher.kind: item features need the 'sasrec' teacher, got 'gru'")
        item_embedding = keras.layers.Embedding(catalog_size, cfg.hidden, mask_zero=True, name="item_embedding")
        x = _gru_body(cfg, ids, item_embedding)
    else:
        raise ValueError(f"teacher.kind: expected 'sasrec' or 'gru', got {cfg.kind!r}")
    if sequence:
        hidden = keras.layers.LayerNormalization(epsilon=1e-6, name="hidden")(x)
    else:
        x = keras.layers.LayerNormalization(epsilon=1e-6, name="final_norm")(x)
        hidden = LastPosition(name="hidden")(x)
    if cfg.tie_output and cfg.kind == "sasrec":
        logits = tied_logits(represent, ids, hidden, catalog_size)
    else:
        logits = keras.layers.Dense(catalog_size, name="logits")(hidden)
    name = f"teacher_{cfg.kind}" + ("" if sequence else "_serving")
    return keras.Model(ids, [logits, hidden], name=name)
