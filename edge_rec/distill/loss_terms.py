"""Distillation loss terms as objects: each is one class (its name, the config key of its weight,
what it reads, ``compute``) in a registry the Distiller sums over.

A new term is one class and one :func:`register_term` call: its weight key must be a field of
:class:`~edge_rec.config.DistillConfig` (validated with the others), and ``distill`` and ``build``
get a ``--<name>-weight`` flag from the registry (:func:`edge_rec.commands.options.loss_weight_options`).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar

from edge_rec.config import DistillConfig

if TYPE_CHECKING:  # the registry is read by the CLI, which must not import TensorFlow
    from edge_rec.keras_shim import tf


@dataclass(frozen=True)
class BatchOutputs:
    """What the terms of one batch read, at the positions with a real target (``N`` of them).

    ``labels`` int[N]: the target's column in the logits (column 0 of a candidate set when
    sampling); ``excluded_columns``: leading columns never to rank (PAD and OOV over the full
    catalog, none over candidates); ``targets`` int[N] the target item indices. Teacher outputs
    are None when no active term reads them; they are constants (no gradient).
    ``compared_student_logits`` / ``compared_teacher_logits``: the scores the terms that compare
    the two models read: the logits above, extended by the teacher's own top items when
    ``teacher_candidates`` > 0 with a sampled softmax (cross-entropy keeps ``student_logits``). ``distiller``
    gives a term its own layers (the hint projection) and the models (their item tables).
    """

    labels: tf.Tensor
    targets: tf.Tensor
    positions: tf.Tensor
    excluded_columns: int
    student_logits: tf.Tensor
    student_hidden: tf.Tensor
    teacher_logits: tf.Tensor | None
    teacher_hidden: tf.Tensor | None
    compared_student_logits: tf.Tensor
    compared_teacher_logits: tf.Tensor | None
    distiller: Any


class LossTerm:
    """One term of the distillation loss: ``weight x compute(batch, cfg)``.

    ``name`` is the key of its value in the epoch logs; ``weight_key`` the
    :class:`~edge_rec.config.DistillConfig` field holding its weight (0 switches it off: it is
    then not computed at all); ``uses_teacher``: it needs a teacher model; ``reads_teacher_outputs``:
    it reads the teacher's logits or hidden states at the batch's positions;
    ``compares_candidates``: with a sampled softmax, it compares the teacher's and the student's
    scores on candidates, so the teacher's own top items may be added to them
    (``DistillConfig.teacher_candidates``).
    """

    name: ClassVar[str]
    weight_key: ClassVar[str]
    uses_teacher: ClassVar[bool] = True
    reads_teacher_outputs: ClassVar[bool] = True
    compares_candidates: ClassVar[bool] = False
    help: ClassVar[str] = ""

    def compute(self, batch: BatchOutputs, cfg: DistillConfig) -> tf.Tensor:
        """The term's unweighted value on a batch: a scalar."""
        raise NotImplementedError(f"loss term {self.name!r} does not implement compute()")


class CrossEntropy(LossTerm):
    """Next-item cross-entropy on the hard labels (the only term without a teacher)."""

    name, weight_key, uses_teacher, reads_teacher_outputs = "ce", "ce_weight", False, False
    help = "Weight of the next-item cross-entropy term."

    def compute(self, batch: BatchOutputs, cfg: DistillConfig) -> tf.Tensor:
        from edge_rec.distill import losses

        return losses.cross_entropy(batch.labels, batch.student_logits, batch.positions)


class SoftLabels(LossTerm):
    """T²-scaled KL divergence from the teacher's softened distribution (Hinton et al.)."""

    name, weight_key, compares_candidates = "kd", "kd_weight", True
    help = "Weight of the soft-label (temperature KL) term."

    def compute(self, batch: BatchOutputs, cfg: DistillConfig) -> tf.Tensor:
        from edge_rec.distill import losses

        return losses.temperature_kl(batch.compared_teacher_logits, batch.compared_student_logits, batch.positions,
                                     cfg.temperature)


class HiddenHint(LossTerm):
    """MSE between the teacher's hidden state and the student's, projected to its width (FitNets);
    the projection belongs to the Distiller, never to the exported student."""

    name, weight_key = "hint", "hint_weight"
    help = "Weight of the hidden-state hint term."

    def compute(self, batch: BatchOutputs, cfg: DistillConfig) -> tf.Tensor:
        from edge_rec.distill import losses

        return losses.hint_mse(batch.teacher_hidden, batch.distiller.projection(batch.student_hidden), batch.positions)


class RankingDistillation(LossTerm):
    """The student ranks the teacher's top-K items high, weighted by the teacher's rank (Tang & Wang)."""

    name, weight_key, compares_candidates = "rank", "rank_weight", True
    help = "Weight of the ranking-distillation term."

    def compute(self, batch: BatchOutputs, cfg: DistillConfig) -> tf.Tensor:
        from edge_rec.distill import losses

        return losses.ranking_distillation(
            batch.compared_teacher_logits, batch.compared_student_logits, batch.positions, top_k=cfg.ranking_top_k,
            decay=cfg.ranking_lambda, excluded_columns=batch.excluded_columns,
        )


class Relation(LossTerm):
    """The student's item-item cosine similarities among the batch's targets follow the teacher's."""

    name, weight_key, reads_teacher_outputs = "relation", "relation_weight", False
    help = "Weight of the item-relation term."

    def compute(self, batch: BatchOutputs, cfg: DistillConfig) -> tf.Tensor:
        from edge_rec.distill import losses
        from edge_rec.keras_shim import tf
        from edge_rec.models.output_head import item_embedding_table

        items = tf.unique(batch.targets)[0][: cfg.relation_items]
        return losses.relation_distillation(
            item_embedding_table(batch.distiller.teacher), item_embedding_table(batch.distiller.student), items
        )


LOSS_TERMS: dict[str, LossTerm] = {}


def register_term(term: LossTerm) -> LossTerm:
    """Add ``term`` to the loss; ValueError for a taken name or a weight key DistillConfig lacks."""
    if term.name in LOSS_TERMS:
        raise ValueError(f"a loss term named {term.name!r} is already registered")
    if term.weight_key not in DistillConfig.__dataclass_fields__:
        raise ValueError(f"loss term {term.name!r}: DistillConfig has no weight key {term.weight_key!r}")
    LOSS_TERMS[term.name] = term
    return term


for _term in (CrossEntropy(), SoftLabels(), HiddenHint(), RankingDistillation(), Relation()):
    register_term(_term)


def term_weights(cfg: DistillConfig, *, has_teacher: bool) -> dict[str, float]:
    """Each registered term's weight from ``cfg``; without a teacher, cross-entropy alone (1)."""
    if not has_teacher:
        cfg = cfg.without_teacher()
    return {name: float(getattr(cfg, term.weight_key)) for name, term in LOSS_TERMS.items()}


def active_terms(weights: Mapping[str, float]) -> dict[str, LossTerm]:
    """The registered terms with a weight > 0, in registry order."""
    return {name: term for name, term in LOSS_TERMS.items() if weights.get(name, 0.0) > 0}
