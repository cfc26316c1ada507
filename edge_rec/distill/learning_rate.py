"""The learning rate of a fit: constant, or a linear warm-up then a cosine decay that a time
budget can shorten while training.

A cosine decay planned over ``fit.epochs`` but cut short by a time budget never anneals: at
half the planned epochs the rate is still half its peak. "Budgeted training" (Li, Yumer and
Ramanan, ICLR 2020) shows that a schedule which decays to its floor *within the budget* beats
the same schedule truncated. :class:`WarmupCosineDecay` keeps its end step in a variable, so
:class:`~edge_rec.time_budget.StopAtDeadline` can move the end of the decay to the last epoch
the budget allows (:meth:`WarmupCosineDecay.end_by`), and the fit anneals before it stops.
"""

from __future__ import annotations

import math

from edge_rec.config import FitConfig
from edge_rec.keras_shim import keras, tf

#: The cosine decays to this fraction of the peak rate.
FLOOR = 0.01


class WarmupCosineDecay(keras.optimizers.schedules.LearningRateSchedule):
    """``peak * step / warmup_steps`` during the warm-up, then a cosine from ``peak`` down to
    ``FLOOR * peak`` at ``end_step``, flat at the floor after it.

    ``end_step`` can only be brought forward (:meth:`end_by`), never past its initial value nor
    before the end of the warm-up.
    """

    def __init__(self, peak: float, warmup_steps: int, end_step: int) -> None:
        super().__init__()
        if peak <= 0 or warmup_steps < 0 or end_step <= warmup_steps:
            raise ValueError(
                f"WarmupCosineDecay: expected peak > 0 and 0 <= warmup_steps < end_step, "
                f"got {peak}, {warmup_steps}, {end_step}"
            )
        self.peak = float(peak)
        self.warmup_steps = int(warmup_steps)
        self.initial_end_step = int(end_step)
        self.end_step = tf.Variable(float(end_step), trainable=False, dtype=tf.float32, name="cosine_end_step")

    def __call__(self, step):
        step = tf.cast(step, tf.float32)
        warmup = float(self.warmup_steps)
        warming = self.peak * step / max(warmup, 1.0)
        progress = tf.clip_by_value((step - warmup) / tf.maximum(self.end_step - warmup, 1.0), 0.0, 1.0)
        cosine = FLOOR + (1.0 - FLOOR) * 0.5 * (1.0 + tf.cos(math.pi * progress))
        return tf.where(step < warmup, warming, self.peak * cosine)

    def end_by(self, step: int) -> int:
        """Finish the decay at ``step`` if that is earlier than now planned; returns the end step
        in force (at least one step after the warm-up)."""
        wanted = min(float(self.end_step.numpy()), float(max(step, self.warmup_steps + 1)))
        self.end_step.assign(wanted)
        return int(wanted)

    def get_config(self) -> dict:
        return {"peak": self.peak, "warmup_steps": self.warmup_steps, "end_step": self.initial_end_step}


def learning_rate_schedule(fit: FitConfig, steps_per_epoch: int) -> float | WarmupCosineDecay:
    """``fit.learning_rate`` for ``schedule = "constant"``; for ``"cosine"`` a warm-up over
    ``fit.warmup_epochs`` epochs and a cosine decay ending with epoch ``fit.epochs``."""
    if fit.schedule != "cosine":
        return fit.learning_rate
    warmup = int(round(fit.warmup_epochs * steps_per_epoch))
    end = max(warmup + 1, fit.epochs * steps_per_epoch)
    return WarmupCosineDecay(fit.learning_rate, warmup, end)
