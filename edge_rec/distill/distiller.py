"""The Distiller: a Keras model holding a frozen teacher and a student, with its own train_step."""

from __future__ import annotations

from collections.abc import Mapping

from edge_rec.config import DistillConfig
from edge_rec.distill import loss_terms
from edge_rec.distill.loss_terms import LOSS_TERMS, BatchOutputs, active_terms
from edge_rec.distill.negative_sampler import NegativeSampler
from edge_rec.keras_shim import keras, tf
from edge_rec.models.output_head import OutputHead


class Distiller(keras.Model):
    """Trains ``student`` on next-item targets and, when ``teacher`` is given, on the teacher.

    Data: x = sequence inputs int32[B, L], y = next-item targets int32[B, L] (0 = ignore).
    Both models must be sequence-mode models with outputs ``(logits [B, L, C], hidden [B, L, H])``.
    Loss = the weighted sum of the registered loss terms
    (:mod:`edge_rec.distill.loss_terms`: ``ce``, ``kd``, ``hint``, ``rank``, ``relation``, each
    weighted by its own ``DistillConfig`` key); every term with a non-zero weight is reported per
    epoch beside ``loss``. Logits are computed only
    at the positions with a real target (:class:`~edge_rec.models.output_head.OutputHead`), which
    gives the same loss as scoring every position at a fraction of the cost on short histories. The teacher is frozen and runs in inference mode. The hint projection (student
    hidden -> teacher hidden) is a layer of the Distiller, never of the student, so the exported
    student does not carry it. ``term_weights`` (term name -> weight) overrides the config's
    weights (for experiments).
    With a ``sampler`` (:class:`~edge_rec.distill.negative_sampler.NegativeSampler`), every term
    works on a candidate set instead of the whole catalog: each position's positive item plus the
    batch's shared negatives, logQ-corrected, for the student and the teacher alike.
    ``positions_per_step`` (when given) makes a training step's loss the sum over its target
    positions divided by that constant instead of their mean, so every position weighs the same
    across an epoch whatever the batch holds (length-bucketed batches of short rows hold few
    positions); the logged values stay per-position means.
    """

    def __init__(
        self,
        student: keras.Model,
        teacher: keras.Model | None,
        cfg: DistillConfig,
        *,
        term_weights: Mapping[str, float] | None = None,
        sampler: NegativeSampler | None = None,
        positions_per_step: float | None = None,
        **kwargs,
    ):
        super().__init__(**kwargs)
        if positions_per_step is not None and not positions_per_step > 0:
            raise ValueError(f"positions_per_step: expected a positive number, got {positions_per_step!r}")
        self.positions_per_step = positions_per_step
        self.student = student
        self.teacher = teacher
        self.cfg = cfg
        weights = term_weights if term_weights is not None else loss_terms.term_weights(cfg, has_teacher=teacher is not None)
        self.weights_of_terms = {name: float(weights.get(name, 0.0)) for name in LOSS_TERMS}
        self.terms = active_terms(self.weights_of_terms)
        if teacher is None and any(term.uses_teacher for term in self.terms.values()):
            raise ValueError("Distiller: a distillation term is on but no teacher was given")
        if teacher is not None:
            teacher.trainable = False
        self.student_head = OutputHead(student)
        self.teacher_head = OutputHead(teacher) if teacher is not None else None
        heads = [self.student_head] + ([self.teacher_head] if self.teacher_head else [])
        # sampling pays only when no model has to score the whole catalog anyway (a pruning or
        # QAT wrapper around the output layer does): otherwise the exact full softmax is used
        self.sampler = sampler if all(head.can_score_candidates for head in heads) else None
        self.projection = None
        if teacher is not None and self.weights_of_terms.get("hint", 0.0) > 0:
            teacher_width = int(teacher.outputs[1].shape[-1])
            self.projection = keras.layers.Dense(teacher_width, name="hint_projection")
            self.projection.build(tf.TensorShape([None, None, int(student.outputs[1].shape[-1])]))
        self.trackers = {name: keras.metrics.Mean(name=name) for name in ("loss", *LOSS_TERMS)}

    @property
    def metrics(self):
        """One running mean per logged value (total loss and each active term), reset per epoch."""
        return list(self.trackers.values())

    def call(self, inputs, training=None):
        """The student's outputs (logits, hidden)."""
        return self.student(inputs, training=training)

    def _logits(self, head: OutputHead, x, where, targets, negatives, *, training: bool):
        """``(logits, hidden)`` at the target positions: over the whole catalog, or over the
        candidates (positive first, then ``negatives``) when sampling."""
        if negatives is None:
            return head.at_positions(x, where, training=training)
        hidden = head.hidden_at(x, where, training=training)
        logits = head.candidate_logits(hidden, targets, negatives, training=training)
        return self.sampler.correct(logits, targets, negatives), hidden

    def _with_teacher_candidates(self, x, where, teacher_logits, teacher_hidden, student_logits,
                                 student_hidden, targets, negatives):
        """Both models' candidate logits extended by the teacher's top items
        (``cfg.teacher_candidates`` per position, :meth:`NegativeSampler.extra_candidates`), so
        the KD and ranking terms see where the teacher puts its mass; CE keeps the sampled set."""
        full = self.teacher_head.logits_at(teacher_hidden)
        items = self.sampler.extra_candidates(tf.stop_gradient(full), negatives, self.cfg.teacher_candidates)

        def extended(head, hidden, logits):
            extra = head.candidate_logits(hidden, targets, items)[:, 1:]
            return tf.concat([logits, self.sampler.mask_hits(extra, targets, items)], axis=1)

        return (tf.stop_gradient(extended(self.teacher_head, teacher_hidden, teacher_logits)),
                extended(self.student_head, student_hidden, student_logits))

    def loss_terms(self, x, y, *, training: bool) -> dict[str, tf.Tensor]:
        """Unweighted value of every active term on a batch (only terms with weight > 0)."""
        where = tf.where(tf.not_equal(y, 0))  # (row, position) of every real target
        targets = tf.cast(tf.gather_nd(y, where), tf.int32)
        positions = tf.ones_like(targets, dtype=tf.float32)
        negatives = self.sampler.sample() if self.sampler is not None else None
        # with candidates, the positive is column 0 and no column is PAD/OOV
        labels, excluded = (targets, 2) if negatives is None else (tf.zeros_like(targets), 0)
        student_logits, student_hidden = self._logits(
            self.student_head, x, where, targets, negatives, training=training
        )
        teacher_logits = teacher_hidden = compared_teacher = None
        compared_student = student_logits
        if any(term.reads_teacher_outputs for term in self.terms.values()):
            teacher_logits, teacher_hidden = self._logits(
                self.teacher_head, x, where, targets, negatives, training=False
            )
            teacher_logits = tf.stop_gradient(teacher_logits)
            teacher_hidden = tf.stop_gradient(teacher_hidden)
            compared_teacher = teacher_logits
            if negatives is not None and self.cfg.teacher_candidates > 0 and any(
                    term.compares_candidates for term in self.terms.values()):
                compared_teacher, compared_student = self._with_teacher_candidates(
                    x, where, teacher_logits, teacher_hidden, student_logits, student_hidden, targets, negatives
                )
        batch = BatchOutputs(labels=labels, targets=targets, positions=positions, excluded_columns=excluded,
                             student_logits=student_logits, student_hidden=student_hidden,
                             teacher_logits=teacher_logits, teacher_hidden=teacher_hidden,
                             compared_student_logits=compared_student, compared_teacher_logits=compared_teacher,
                             distiller=self)
        return {name: term.compute(batch, self.cfg) for name, term in self.terms.items()}

    def _total(self, terms: dict[str, tf.Tensor]) -> tf.Tensor:
        return tf.add_n([self.weights_of_terms[name] * value for name, value in terms.items()])

    def _record(self, total, terms) -> dict[str, tf.Tensor]:
        self.trackers["loss"].update_state(total)
        for name, value in terms.items():
            self.trackers[name].update_state(value)
        # under a strategy Keras sums what each replica returns ("auto" reduction): return each
        # replica's share, so the logs hold the mean over replicas
        replicas = tf.distribute.get_strategy().num_replicas_in_sync
        return {name: self.trackers[name].result() / replicas for name in ("loss", *terms)}

    def _optimized_variables(self):
        variables = list(self.student.trainable_variables)
        if self.projection is not None:
            variables += self.projection.trainable_variables
        return variables

    def train_step(self, data):
        """One optimizer step on the student (and the hint projection); the teacher never moves.

        ``data`` is ``(histories int32[B, L], targets int32[B, L])``; returns the batch's total loss
        and every active term for the progress bar and the epoch logs.

        Under a ``tf.distribute`` strategy each replica's loss is a mean over its share of the
        batch and ``apply_gradients`` sums the replicas' gradients, so the loss is divided by the
        number of replicas: the step is then the one a single process takes on the global batch.
        """
        x, y = data[0], data[1]
        replicas = tf.distribute.get_strategy().num_replicas_in_sync
        with tf.GradientTape() as tape:
            terms = self.loss_terms(x, y, training=True)
            total = self._total(terms)
            step_loss = total
            if self.positions_per_step is not None:  # a sum over positions / a constant, not a mean
                positions = tf.reduce_sum(tf.cast(tf.not_equal(y, 0), tf.float32))
                step_loss = total * positions / self.positions_per_step
            regularization = self.student.losses
            if regularization:
                total_with_reg = step_loss + tf.add_n(regularization)
            else:
                total_with_reg = step_loss
            if replicas > 1:
                total_with_reg = total_with_reg / replicas
        variables = self._optimized_variables()
        gradients = tape.gradient(total_with_reg, variables)
        self.optimizer.apply_gradients(
            (g, v) for g, v in zip(gradients, variables, strict=True) if g is not None
        )
        return self._record(total, terms)

    def test_step(self, data):
        """The same loss terms without dropout and without an update."""
        x, y = data[0], data[1]
        terms = self.loss_terms(x, y, training=False)
        return self._record(self._total(terms), terms)
