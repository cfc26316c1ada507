"""A build's time budget (``--time-budget 20m``), shared among its training stages.

The budget is split by the shares the enabled passes declare
(:attr:`edge_rec.passes.BuildPass.budget_share`); what a stage leaves unused goes to
the stages after it, because each stage's allowance is computed from the time *remaining* when
it starts. The distilled student gets exactly the allowance of the student trained alone. A reserve
(:attr:`TimeBudget.reserve_seconds`: :data:`RESERVE`, or more once an evaluation has been timed)
is kept for evaluation, conversion and the bundle. A
training stage honours its allowance at epoch boundaries (:class:`StopAtDeadline`): it stops
when the next epoch would not fit, and early stopping's best weights are still restored. Pruning
cannot stop half-way through its sparsity schedule, so its epoch count is fixed up front from
the measured cost of an epoch of distillation (:meth:`TimeBudget.epochs_that_fit`).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping
from typing import Any

from edge_rec.keras_shim import keras

log = logging.getLogger(__name__)

#: Share of the whole budget kept for evaluation, conversion, parity and the bundle (at least).
RESERVE = 0.06
#: The work after the last training stage (four TFLite variants converted and evaluated, parity,
#: the bundle) costs about this many evaluations of one stage; the reserve grows to it once an
#: evaluation has been timed (:meth:`TimeBudget.evaluation_took`), so a large log's evaluations do
#: not overrun the budget.
EVALUATIONS_AFTER_TRAINING = 8


class TimeBudget:
    """Wall-clock allowance per training stage; ``seconds=None`` means no budget.

    ``shares``: each training stage's relative share (the rest of the budget is the reserve);
    ``same_as``: stage -> the stage whose granted allowance it gets exactly (the distilled student
    gets the student alone's, so "what distillation buys" compares equal compute). A teacher of
    several members weighs that many shares (:meth:`weigh`).
    """

    def __init__(self, seconds: float | None, shares: Mapping[str, float],
                 same_as: Mapping[str, str] | None = None) -> None:
        self.seconds = seconds
        self.shares: dict[str, float] = dict(shares)
        self.same_as: dict[str, str] = dict(same_as or {})
        self.start = time.perf_counter()
        self.started: set[str] = set()
        self.granted: dict[str, float] = {}
        self.slowest_evaluation = 0.0

    def weigh(self, stage: str, factor: float) -> None:
        """Multiply ``stage``'s share by ``factor`` (call it before that stage's allowance is asked;
        a teacher of N members weighs N: the build learns N from the log's sizing, after its
        clock started)."""
        if stage in self.shares:
            self.shares[stage] *= factor

    def evaluation_took(self, seconds: float) -> None:
        """Record how long evaluating (and converting) one stage took: the reserve is then at
        least :data:`EVALUATIONS_AFTER_TRAINING` times the slowest such evaluation."""
        self.slowest_evaluation = max(self.slowest_evaluation, float(seconds))

    @property
    def reserve_seconds(self) -> float:
        """Seconds kept for the work after training: :data:`RESERVE` of the budget, or
        :data:`EVALUATIONS_AFTER_TRAINING` x the slowest evaluation timed so far when longer."""
        if self.seconds is None:
            return 0.0
        return max(self.seconds * RESERVE, EVALUATIONS_AFTER_TRAINING * self.slowest_evaluation)

    def elapsed(self) -> float:
        """Seconds since the build started."""
        return time.perf_counter() - self.start

    def allowance(self, stage: str) -> float | None:
        """Seconds ``stage`` may train, from what remains now; marks the stage as started.

        None without a budget. At least 1 second, so a stage always gets its first epoch.
        """
        if self.seconds is None:
            return None
        self.started.add(stage)
        like = self.same_as.get(stage)
        if like is not None and like in self.granted:
            self.granted[stage] = self.granted[like]
            return self.granted[stage]
        pending = [name for name in self.shares if name not in self.started or name == stage]
        remaining = self.seconds - self.reserve_seconds - self.elapsed()
        share = self.shares[stage] / sum(self.shares[name] for name in pending)
        self.granted[stage] = max(1.0, remaining * share)
        return self.granted[stage]

    def undertrained_note(self, stage: str, result: Any, planned_epochs: int) -> str | None:
        """A sentence for the report when ``result`` (a
        :class:`~edge_rec.distill.training.TrainResult`) stopped on this budget while its
        validation still rose (``result.undertrained``), with the budget that would let its
        ``planned_epochs`` run, at its measured pace; None otherwise."""
        if self.seconds is None or not result.undertrained or stage not in self.granted:
            return None
        per_epoch = result.seconds / max(1, result.epochs_run)
        needed = self.seconds * per_epoch * planned_epochs / max(1.0, self.granted[stage])
        return (f"{stage} undertrained at epoch {result.epochs_run} (validation NDCG@10 still rising "
                f"{result.validation_gain_per_epoch():.1%} per epoch); a budget of about "
                f"{needed / 60:.0f} minutes would let it run its {planned_epochs} planned epochs")

    @staticmethod
    def epochs_that_fit(allowance: float | None, seconds_per_epoch: float, wanted: int) -> int:
        """How many of ``wanted`` epochs fit in ``allowance`` at ``seconds_per_epoch`` (>= 1)."""
        if allowance is None or seconds_per_epoch <= 0:
            return wanted
        return max(1, min(wanted, int(allowance // seconds_per_epoch)))


class StopAtDeadline(keras.callbacks.Callback):
    """Stops training at the end of an epoch when another epoch would overrun ``seconds``.

    Put it after the validation callback, so the epoch that ends training is still scored and
    the best weights are restored as usual. Given a decaying schedule (:meth:`anneal`), it also
    ends the decay with the last epoch that fits, so a budget-stopped fit still anneals.
    """

    def __init__(self, seconds: float, stage: str) -> None:
        super().__init__()
        self.seconds = seconds
        self.stage = stage
        self.stopped_early = False
        self.schedule: Any = None
        self.steps_per_epoch = 0

    def anneal(self, schedule: Any, steps_per_epoch: int) -> None:
        """After each epoch, move the end of ``schedule``'s decay (anything with
        ``end_by(step)``, e.g. :class:`~edge_rec.distill.learning_rate.WarmupCosineDecay`) to the
        end of the last epoch the remaining time allows, at the longest epoch's pace."""
        self.schedule, self.steps_per_epoch = schedule, steps_per_epoch

    def on_train_begin(self, logs=None):
        self.begin = time.perf_counter()
        self.longest_epoch = 0.0

    def on_epoch_begin(self, epoch, logs=None):
        self.epoch_start = time.perf_counter()

    def on_epoch_end(self, epoch, logs=None):
        now = time.perf_counter()
        self.longest_epoch = max(self.longest_epoch, now - self.epoch_start)
        if self.schedule is not None:
            epochs_left = int((self.seconds - (now - self.begin)) // max(self.longest_epoch, 1e-9))
            self.schedule.end_by((epoch + 1 + max(0, epochs_left)) * self.steps_per_epoch)
        if now - self.begin + self.longest_epoch > self.seconds and not self.model.stop_training:
            self.stopped_early = True
            self.model.stop_training = True
            log.info(
                "stage %s: time budget reached after %d epochs (%.0f s of %.0f s)",
                self.stage, epoch + 1, now - self.begin, self.seconds,
            )
