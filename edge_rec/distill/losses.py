"""The distillation loss terms, one function each, over sequence-mode outputs.

Every function takes ``positions``: float[...], 1 where the target is a real item (target != 0)
and 0 where it is ignored, and returns the mean of its per-position loss over those positions
(0 when a batch has none). Logits are float[..., C]; hidden states float[..., H]; the leading
dimensions are either ``[B, L]`` (every position) or ``[N]`` (the chosen positions only, as the
:class:`~edge_rec.distill.distiller.Distiller` passes them).
"""

from __future__ import annotations

from edge_rec.keras_shim import tf


def masked_mean(values: tf.Tensor, positions: tf.Tensor) -> tf.Tensor:
    """Mean of ``values`` [B, L] over the positions where ``positions`` is 1."""
    return tf.reduce_sum(values * positions) / tf.maximum(tf.reduce_sum(positions), 1.0)


def cross_entropy(targets: tf.Tensor, student_logits: tf.Tensor, positions: tf.Tensor) -> tf.Tensor:
    """Next-item sparse softmax cross-entropy; target 0 (padding) is ignored."""
    per_position = tf.nn.sparse_softmax_cross_entropy_with_logits(
        labels=tf.cast(targets, tf.int32), logits=student_logits
    )
    return masked_mean(per_position, positions)


def temperature_kl(
    teacher_logits: tf.Tensor, student_logits: tf.Tensor, positions: tf.Tensor, temperature: float
) -> tf.Tensor:
    """T² · KL(softmax(teacher/T) ‖ softmax(student/T)) (Hinton et al.; T² keeps gradients' scale)."""
    t = float(temperature)
    teacher_log_p = tf.nn.log_softmax(teacher_logits / t, axis=-1)
    student_log_p = tf.nn.log_softmax(student_logits / t, axis=-1)
    kl = tf.reduce_sum(tf.exp(teacher_log_p) * (teacher_log_p - student_log_p), axis=-1)
    return (t * t) * masked_mean(kl, positions)


def hint_mse(teacher_hidden: tf.Tensor, projected_student_hidden: tf.Tensor, positions: tf.Tensor) -> tf.Tensor:
    """Mean squared error between the teacher's hidden state and the projected student's (FitNets)."""
    per_position = tf.reduce_mean(tf.square(teacher_hidden - projected_student_hidden), axis=-1)
    return masked_mean(per_position, positions)


def ranking_weights(top_k: int, decay: float) -> tf.Tensor:
    """Position-importance weights ``w_r ∝ exp(-r / decay)`` for ranks r = 1..k, summing to 1."""
    ranks = tf.range(1, top_k + 1, dtype=tf.float32)
    weights = tf.exp(-ranks / float(decay))
    return weights / tf.reduce_sum(weights)


def ranking_distillation(
    teacher_logits: tf.Tensor,
    student_logits: tf.Tensor,
    positions: tf.Tensor,
    top_k: int,
    decay: float,
    excluded_columns: int = 2,
) -> tf.Tensor:
    """Ranking distillation (Tang & Wang, KDD 2018): the teacher's top-k items as extra positives.

    At each position the teacher's ``top_k`` items (PAD and OOV excluded) become positives with
    weights decaying with their rank (:func:`ranking_weights`); the student pays the weighted
    softmax cross-entropy of those items, so it learns to rank them high in the same order.
    """
    catalog = tf.shape(teacher_logits)[-1]
    blocked = tf.cast(tf.range(catalog) < excluded_columns, teacher_logits.dtype) * -1e9
    _, top_items = tf.math.top_k(tf.stop_gradient(teacher_logits) + blocked, k=top_k)
    student_log_p = tf.nn.log_softmax(student_logits, axis=-1)
    picked = tf.gather(student_log_p, top_items, batch_dims=top_items.shape.rank - 1)  # [..., k]
    per_position = -tf.reduce_sum(picked * ranking_weights(top_k, decay), axis=-1)
    return masked_mean(per_position, positions)


def relation_distillation(
    teacher_items: tf.Tensor, student_items: tf.Tensor, items: tf.Tensor
) -> tf.Tensor:
    """Relation distillation: the student keeps the teacher's item-item similarity structure.

    ``teacher_items`` [C, Ht] and ``student_items`` [C, Hs] are the two models' item embedding
    tables, ``items`` int[M] the items compared (e.g. the batch's targets). Returns the mean
    squared difference between the two cosine-similarity matrices of those items ([M, M]), so
    items the teacher places close together stay close in the student's much smaller space
    (relational KD, Park et al. CVPR 2019, applied to items).
    """
    def cosine(table: tf.Tensor) -> tf.Tensor:
        vectors = tf.math.l2_normalize(tf.gather(table, items), axis=-1)
        return tf.matmul(vectors, vectors, transpose_b=True)

    return tf.reduce_mean(tf.square(tf.stop_gradient(cosine(teacher_items)) - cosine(student_items)))
