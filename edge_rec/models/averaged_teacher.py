"""The averaged teacher: several independently trained teachers as one model whose logits are
the mean of theirs (the classic seed ensemble).

Averaging logits is averaging log-probabilities up to a per-row constant, so the averaged
model's softmax is the normalised geometric mean of the members' and its rankings are those of
the mean log-probability. It is built as one functional model, so everything that takes a
teacher takes it unchanged (the Distiller, :class:`~edge_rec.models.output_head.OutputHead`,
sampled candidates, saving and loading): each member's body (ids -> hidden) is a nested model,
the members' hidden states are concatenated into ``hidden`` [.., n*H], and one ``logits`` Dense
holds the members' output layers stacked and divided by ``n`` (its bias is their mean bias), so
``hidden . kernel + bias`` is exactly the mean of the members' logits. The hint term therefore
distils the concatenated hidden states, and the relation term (which reads an
``item_embedding`` table) reads the first member's.

The output layer is a copy (``n*H x C``), so the averaged model counts more parameters than its
members together when they tie their output to their item embedding (on the shared real log two
745,650-parameter members make a 2,846,898-parameter model); the copy is what lets the
distillation score a few candidate items without scoring the catalog.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from edge_rec.keras_shim import keras
from edge_rec.models.output_head import output_weights

#: Name of the i-th member's nested body inside an averaged teacher.
MEMBER_NAME = "member{index}"


def average_teachers(members: Sequence[keras.Model], *, name: str) -> keras.Model:
    """One model ``ids -> (mean of the members' logits, concatenated hidden states)``.

    ``members`` are teachers of the same form (all sequence-mode or all serving-mode), each with
    outputs ``(logits, hidden)``, the same input shape and catalog, and an output layer named
    ``logits`` (a ``Dense`` or a tied output). The members are not modified; their weights are
    shared with the returned model, whose output layer is a new ``Dense`` holding copies of theirs.
    """
    if not members:
        raise ValueError("average_teachers: expected at least one member")
    shapes = {(tuple(m.inputs[0].shape[1:]), int(m.outputs[0].shape[-1])) for m in members}
    if len(shapes) != 1:
        raise ValueError(f"average_teachers: members differ in (history shape, catalog): {sorted(shapes)}")
    ids = keras.Input(members[0].inputs[0].shape[1:], dtype=members[0].inputs[0].dtype, name="history")
    hiddens = [
        keras.Model(m.inputs, m.outputs[1], name=MEMBER_NAME.format(index=i))(ids)
        for i, m in enumerate(members)
    ]
    hidden = keras.layers.Concatenate(name="hidden")(hiddens) if len(hiddens) > 1 else hiddens[0]
    catalog = int(members[0].outputs[0].shape[-1])
    logits_layer = keras.layers.Dense(catalog, name="logits")
    logits = logits_layer(hidden)
    weights = [output_weights(m) for m in members]
    logits_layer.set_weights([
        np.concatenate([kernel for kernel, _ in weights], axis=0) / len(members),
        np.mean([bias for _, bias in weights], axis=0),
    ])
    return keras.Model(ids, [logits, hidden], name=name)
