"""The ensemble teacher: a trained sequential teacher's logits plus a weighted item-item model.

:func:`blend_teacher` turns a trained teacher ``(logits, hidden)`` into one whose output layer is
:class:`~edge_rec.models.blended_logits.BlendedLogits`: the same body and output weights, plus
``weight`` times the EASE scores of the history. The weight is chosen on the validation split by
:func:`choose_item_item_weight` (0 is a candidate: when the item-item model does not improve
validation NDCG@10, the teacher stays as it was). The hidden states, and so the hint term, are
the sequential teacher's.

The item-item part of the training-time soft labels is cross-fitted (``out_of_fold``,
:mod:`edge_rec.models.item_item_folds`): EASE fitted on every training user memorises each
user's own next items (on the shared real log, NDCG@10 0.308 on training users' last training
item against 0.06 held out), and a student distilled from those labels learned that
memorisation (seed 0: distilled 1.07x the student alone from the in-sample blend, against 1.19x
from SASRec alone). Validation, test and serving use the full fit.

Cross-fitting did not make the ensemble worth distilling from on the shared real log (seed 0,
default build with the tied SASRec teacher, 20-minute budget, 4 folds): the blend raised
validation NDCG@10 from 0.0764 to 0.0814, but on test the ensemble teacher scored 0.0699 (the
five EASE fits took 66 s of the teacher's budget: 20 epochs instead of 25) against 0.0709 for
SASRec alone, and the student distilled from it 0.0575 (1.08x the student alone) against 0.0646
(1.24x) from SASRec alone, at a peak RSS of 6.2 GB. So ``teacher.item_item`` stays off by
default.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from device_runtime.metrics import ndcg_at_positions, scoring_rows, target_positions
from edge_rec.keras_shim import keras
from edge_rec.models.blended_logits import BlendedLogits
from edge_rec.models.ease import history_scores
from edge_rec.models.output_head import output_weights

#: Weights tried, as multiples of the ratio of the teacher's logit spread to the item-item
#: scores' spread (so the grid adapts to both models' scales): 0, then 2^-7 ... 2^-0.5.
RELATIVE_WEIGHTS = (0.0, *(2.0 ** (-k / 2) for k in range(14, 0, -1)))


@dataclass(frozen=True)
class ItemItemBlend:
    """What the ensemble step chose: ``weight`` (0 = the teacher is left alone), the EASE ``l2``,
    the seconds spent fitting and choosing, and validation NDCG@10 for every weight tried."""

    weight: float
    l2: float
    fit_seconds: float
    choose_seconds: float
    validation_ndcg: dict[float, float] = field(default_factory=dict)

    @property
    def base_ndcg(self) -> float:
        """Validation NDCG@10 of the teacher alone (weight 0)."""
        return self.validation_ndcg[0.0]

    @property
    def best_ndcg(self) -> float:
        """Validation NDCG@10 at the chosen weight."""
        return self.validation_ndcg[self.weight]

    def to_dict(self) -> dict:
        """JSON-ready form."""
        return {"weight": self.weight, "l2": self.l2, "fit_seconds": round(self.fit_seconds, 2),
                "choose_seconds": round(self.choose_seconds, 2),
                "base_val_ndcg@10": self.base_ndcg, "chosen_val_ndcg@10": self.best_ndcg,
                "validation_ndcg@10": {f"{w:.6g}": v for w, v in self.validation_ndcg.items()}}


def _spread(scores: np.ndarray) -> float:
    return float(np.mean(np.std(scores, axis=1)))


def choose_item_item_weight(teacher_scores, matrix: np.ndarray, histories: np.ndarray,
                            targets: np.ndarray, seen: list[np.ndarray]) -> dict[float, float]:
    """Validation NDCG@10 of ``teacher + w * item-item`` for each weight of the grid
    (:data:`RELATIVE_WEIGHTS` times the spread ratio measured on the first chunk of users).

    ``teacher_scores(histories)`` returns the teacher's last-position logits float32[N, C];
    ``histories`` int[U, L], ``targets`` int[U] and ``seen`` are a split's evaluation set.
    """
    catalog = matrix.shape[0]
    chunk = scoring_rows(catalog)
    gains: dict[float, float] = {}
    weights: tuple[float, ...] = ()
    for start in range(0, histories.shape[0], chunk):
        stop = start + chunk
        teacher = teacher_scores(histories[start:stop])
        item_item = history_scores(matrix, histories[start:stop])
        if not weights:
            scale = _spread(teacher) / max(_spread(item_item), 1e-12)
            weights = tuple(float(r * scale) for r in RELATIVE_WEIGHTS)
        for weight in weights:
            position = target_positions(teacher + weight * item_item, targets[start:stop], seen[start:stop])
            gains[weight] = gains.get(weight, 0.0) + float(ndcg_at_positions(position).sum())
    users = max(1, histories.shape[0])
    return {weight: total / users for weight, total in gains.items()}


def blend_teacher(sequence_model: keras.Model, serving_model: keras.Model, matrix: np.ndarray,
                  weight: float, out_of_fold: np.ndarray | None = None) -> tuple[keras.Model, keras.Model]:
    """The ensemble teacher's ``(sequence, serving)`` models: each input model's body with one
    shared :class:`BlendedLogits` layer (the input models' ``logits`` Dense weights, ``matrix``
    and ``weight``, and the cross-fitted ``out_of_fold`` [K, C, C] the sequence model reads when
    given) in place of its output layer. The input models are not modified."""
    output = output_weights(sequence_model)
    catalog = int(matrix.shape[0])
    folds = 0 if out_of_fold is None else int(out_of_fold.shape[0])
    blended = BlendedLogits(catalog, weight, folds, name="blended_logits")
    models = []
    for model in (sequence_model, serving_model):
        ids, hidden = model.inputs[0], model.outputs[1]
        models.append(keras.Model(ids, [blended([hidden, ids]), hidden], name=f"{model.name}_ensemble"))
    blended.set_weights([*output, matrix, *([] if out_of_fold is None else [out_of_fold])])
    return models[0], models[1]
