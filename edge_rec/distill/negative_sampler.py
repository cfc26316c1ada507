"""Shared negatives for a sampled softmax over a large catalog, with the logQ correction.

Scoring the whole catalog at every training position costs ``N x C`` logits per batch. A sampled
softmax scores each position's positive item and ``S`` negatives shared by the batch, drawn with
replacement from ``q(i) ∝ count(i) ** power`` (popularity-smoothed). Subtracting ``log(S·q(i))``
from every candidate's logit (the logQ correction, Bengio & Senécal 2008; Yi et al. RecSys 2019)
makes the sampled softmax an unbiased-in-the-limit estimate of the full one, and a negative that
happens to equal the row's positive is masked out (an "accidental hit"). Evaluation never
samples: it always ranks the full catalog.
"""

from __future__ import annotations

import numpy as np

from edge_rec.keras_shim import tf

#: Logit given to masked candidates (accidental hits): far below any real logit, still finite.
MASKED_LOGIT = -1e9


class NegativeSampler:
    """Draws ``negatives`` shared candidates per batch from ``counts ** power``.

    ``counts`` float[C] are training interaction counts per item index; items with count 0
    (padding, out-of-vocabulary, unseen items) are never drawn. Seed TensorFlow for repeatable
    draws (``set_global_seed``).
    """

    def __init__(self, counts: np.ndarray, negatives: int, *, power: float = 0.75) -> None:
        counts = np.asarray(counts, dtype=np.float64)
        if negatives < 1:
            raise ValueError(f"negatives: expected >= 1, got {negatives}")
        if counts.ndim != 1 or not (counts > 0).any():
            raise ValueError("counts: expected a float[C] vector with at least one positive count")
        weights = np.where(counts > 0, counts, 0.0) ** power
        q = weights / weights.sum()
        self.negatives = int(negatives)
        with np.errstate(divide="ignore"):
            log_q = np.where(q > 0, np.log(q), -np.inf)
        self._log_q = tf.constant(log_q[None, :], tf.float32)  # [1, C], for tf.random.categorical
        # log of each item's expected count among the S draws; items never drawn keep log(S·tiny)
        floor = np.log(np.finfo(np.float32).tiny)
        self._log_expected = tf.constant(
            np.log(self.negatives) + np.where(q > 0, log_q, floor), tf.float32
        )

    def sample(self) -> tf.Tensor:
        """int32[S]: this batch's shared negatives."""
        draws = tf.random.categorical(self._log_q, self.negatives, dtype=tf.int32)
        return draws[0]

    def extra_candidates(self, teacher_logits: tf.Tensor, negatives: tf.Tensor, top: int) -> tf.Tensor:
        """int32[E]: the items in any row's top ``top`` of ``teacher_logits`` ([N, C], whole
        catalog) that are neither PAD/OOV nor among ``negatives``, each once.

        They join the candidate set with certainty, so their logQ correction is log 1 = 0
        (mixed negative sampling): only the sampled negatives are corrected."""
        ranked = tf.math.top_k(teacher_logits, k=min(top, int(teacher_logits.shape[-1]))).indices
        items = tf.unique(tf.reshape(ranked, [-1]))[0]
        sampled = tf.reduce_any(tf.equal(items[:, None], negatives[None, :]), axis=1)
        return tf.boolean_mask(items, tf.logical_not(sampled) & (items > 1))

    @staticmethod
    def mask_hits(logits: tf.Tensor, positives: tf.Tensor, items: tf.Tensor) -> tf.Tensor:
        """``logits`` [N, E] of ``items`` with each row's own positive masked (it is column 0)."""
        return tf.where(tf.equal(items[None, :], positives[:, None]), tf.constant(MASKED_LOGIT, logits.dtype), logits)

    def correct(self, logits: tf.Tensor, positives: tf.Tensor, negatives: tf.Tensor) -> tf.Tensor:
        """LogQ-corrected candidate logits ``[N, 1 + S]`` with accidental hits masked.

        ``logits`` column 0 belongs to each row's positive, columns 1.. to ``negatives``. The
        negatives' corrections are one ``[S]`` vector broadcast over the rows (no ``[N, S]``
        gather), and a hit is masked by adding :data:`MASKED_LOGIT`.
        """
        positive = logits[:, :1] - tf.gather(self._log_expected, positives)[:, None]
        negative = logits[:, 1:] - tf.gather(self._log_expected, negatives)[None, :]
        hits = tf.cast(tf.equal(negatives[None, :], positives[:, None]), logits.dtype)
        return tf.concat([positive, negative + hits * tf.constant(MASKED_LOGIT, logits.dtype)], axis=1)
