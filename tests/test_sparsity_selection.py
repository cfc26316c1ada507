"""Sparsity chosen by measured loss: the sparsest ladder level within the allowance is kept."""

from __future__ import annotations

import numpy as np
import pytest

from edge_rec.compress.sparsity_selection import KeepSparsestWithinLoss
from edge_rec.keras_shim import keras


def climb(scores: list[float], *, reference: float = 0.10, max_loss: float = 0.05):
    """Run the callback over one epoch per score; epoch i leaves the weight at i + 1."""
    inputs = keras.Input((1,))
    model = keras.Model(inputs, keras.layers.Dense(1, use_bias=False)(inputs))
    levels = (0.1, 0.2, 0.3, 0.4, 0.5)[: len(scores)]
    keep = KeepSparsestWithinLoss(model, levels, reference=reference, max_loss=max_loss)
    keep.set_model(model)
    epochs = 0
    for epoch, score in enumerate(scores):
        model.set_weights([np.full((1, 1), epoch + 1.0, np.float32)])
        keep.on_epoch_end(epoch, {"val_ndcg@10": score})
        epochs += 1
        if model.stop_training:
            break
    keep.on_train_end()
    return keep.choice, float(model.get_weights()[0][0, 0]), epochs


def test_keeps_the_sparsest_level_within_the_allowance_and_stops_past_it():
    choice, weight, epochs = climb([0.101, 0.097, 0.096, 0.094, 0.099])
    assert choice.sparsity == 0.3 and weight == 3.0  # 0.096 >= 0.095; 0.094 is 6 % below
    assert epochs == 4  # the climb stops at the first level beyond the allowance
    assert [s for s, _ in choice.tried] == [0.1, 0.2, 0.3, 0.4]
    assert choice.to_dict()["chosen_sparsity"] == 0.3


def test_reaches_the_target_when_every_level_is_within():
    choice, weight, epochs = climb([0.1, 0.1, 0.1, 0.1, 0.1])
    assert (choice.sparsity, weight, epochs) == (0.5, 5.0, 5)


def test_keeps_the_first_level_when_none_is_within():
    choice, weight, epochs = climb([0.05, 0.2])
    assert (choice.sparsity, weight, epochs) == (0.1, 1.0, 1)


def test_max_loss_one_always_climbs_to_the_target():
    choice, _, epochs = climb([0.01, 0.001, 0.0001], max_loss=1.0)
    assert (choice.sparsity, epochs) == (0.3, 3)


def test_rejects_a_max_loss_outside_0_1():
    inputs = keras.Input((1,))
    model = keras.Model(inputs, inputs)
    with pytest.raises(ValueError, match="prune.max_loss"):
        KeepSparsestWithinLoss(model, (0.5,), reference=0.1, max_loss=1.5)
