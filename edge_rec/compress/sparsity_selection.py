"""Sparsity chosen by measured loss: keep the sparsest ladder level that costs at most ``max_loss``.

Pruning climbs a ladder of sparsity levels, one per epoch (:class:`~edge_rec.compress.pruning.
SparsityLadder`); every epoch ends exactly at a level and is scored on the validation split.
:class:`KeepSparsestWithinLoss` compares each level's validation NDCG@10 with the source
student's (the float student being compressed) and keeps the weights of the sparsest level
within ``max_loss`` of it. The climb stops at the first level beyond the allowance: sparsity only
grows, so later levels would lose more. The test split is never used to choose.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from edge_rec.distill.training import VALIDATION_METRIC
from edge_rec.keras_shim import keras

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class SparsityChoice:
    """The level kept, and every level tried with its validation NDCG@10 (for the report)."""

    sparsity: float
    reference_ndcg: float
    max_loss: float
    tried: tuple[tuple[float, float], ...]

    def to_dict(self) -> dict:
        """The report's form."""
        return {
            "chosen_sparsity": self.sparsity,
            "reference_val_ndcg@10": round(self.reference_ndcg, 6),
            "max_loss": self.max_loss,
            "levels_tried": [{"sparsity": s, "val_ndcg@10": round(v, 6)} for s, v in self.tried],
        }


class KeepSparsestWithinLoss(keras.callbacks.Callback):
    """After each epoch (one ladder level), keep ``model``'s weights if the level's validation
    NDCG@10 is at least ``(1 - max_loss) * reference``; stop at the first level that is not;
    put the kept weights back when training ends.

    Must come after the validation callback (it reads ``val_ndcg@10`` from the epoch logs). When
    not even the first level is within the allowance, the first (least sparse) level is kept.
    ``choice`` is set when training ends.
    """

    def __init__(self, model: keras.Model, levels: tuple[float, ...], *, reference: float, max_loss: float):
        super().__init__()
        if not 0.0 <= max_loss <= 1.0:
            raise ValueError(f"prune.max_loss: expected a number in [0, 1], got {max_loss!r}")
        self.pruned_model = model
        self.levels = levels
        self.reference = reference
        self.max_loss = max_loss
        self.tried: list[tuple[float, float]] = []
        self.kept: tuple[int, list] | None = None
        self.choice: SparsityChoice | None = None

    def on_epoch_end(self, epoch, logs=None):
        score = float((logs or {})[VALIDATION_METRIC])
        level = self.levels[min(epoch, len(self.levels) - 1)]
        self.tried.append((level, score))
        within = score >= (1.0 - self.max_loss) * self.reference
        if within or self.kept is None:
            self.kept = (epoch, self.pruned_model.get_weights())
        if not within:
            log.info("pruning: sparsity %.2f validates at %.4f, more than %.0f %% below %.4f; keeping %.2f",
                     level, score, 100 * self.max_loss, self.reference, self.levels[self.kept[0]])
            self.model.stop_training = True

    def on_train_end(self, logs=None):
        if self.kept is None:
            return
        epoch, weights = self.kept
        self.pruned_model.set_weights(weights)
        self.choice = SparsityChoice(self.levels[epoch], self.reference, self.max_loss, tuple(self.tried))
