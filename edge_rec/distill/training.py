"""Fitting a sequence-mode model (teacher, baseline student, distilled student) with validation.

Every position of every training sequence predicts its next item in one pass (SASRec style), so
an epoch costs one forward pass per user. After each epoch the model's last-position scores on
the validation split are ranked with the shared metrics (:mod:`device_runtime.metrics`);
training stops early when validation NDCG@10 has not improved for ``patience`` epochs, and the
best epoch's weights are restored.
"""

from __future__ import annotations

import logging
import math
import sys
import time
import weakref
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from device_runtime.metrics import (
    EVAL_DEPTH,
    gains_at_positions,
    rank_scores,
    scoring_rows,
    target_positions,
)
from edge_rec.config import DistillConfig, FitConfig, SoftmaxConfig
from edge_rec.distill.distiller import Distiller
from edge_rec.distill.learning_rate import WarmupCosineDecay, learning_rate_schedule
from edge_rec.distill.negative_sampler import NegativeSampler
from edge_rec.distill.training_input import positions_per_step, sequence_batches, steps_per_epoch
from edge_rec.keras_shim import keras, tf
from edge_rec.models.history_length import history_length_of
from edge_rec.models.output_head import OutputHead
from edge_rec.time_budget import StopAtDeadline

if TYPE_CHECKING:
    from edge_rec.data import EvalSet, LeaveLastOutSplit

log = logging.getLogger(__name__)

VALIDATION_METRIC = "val_ndcg@10"
#: A fit stopped by the budget is undertrained when validation still rose more than this per epoch.
UNDERTRAINED_GAIN = 0.01


@dataclass(frozen=True)
class TrainResult:
    """What one fit produced: per-epoch logs, wall time, epochs run and the best validation score.

    ``stopped_by`` is ``"time budget"``, ``"early stopping"`` or ``"max epochs"``.
    ``history`` maps each logged quantity (``loss``, ``ce``, ``kd``, ``hint``, ``rank``,
    ``val_ndcg@10``, ``val_hr@10``, ``val_mrr``) to one value per epoch run. ``seconds`` is the
    whole fit; ``validation_seconds`` the part of it spent ranking the validation split.
    """

    history: dict[str, list[float]] = field(default_factory=dict)
    seconds: float = 0.0
    validation_seconds: float = 0.0
    epochs_run: int = 0
    best_val_ndcg: float = 0.0
    best_epoch: int = 0
    stopped_by: str = "max epochs"

    def validation_gain_per_epoch(self, epochs: int = 2) -> float:
        """Mean relative gain of validation NDCG@10 per epoch over the last ``epochs`` epochs
        (0.02 = still rising 2 % an epoch; 0 when fewer epochs were run)."""
        scores = self.history.get(VALIDATION_METRIC, [])
        if len(scores) <= epochs or scores[-1 - epochs] <= 0:
            return 0.0
        return float((scores[-1] / scores[-1 - epochs]) ** (1.0 / epochs) - 1.0)

    @property
    def undertrained(self) -> bool:
        """Stopped by the time budget while validation NDCG@10 still rose by more than
        :data:`UNDERTRAINED_GAIN` per epoch."""
        return self.stopped_by == "time budget" and self.validation_gain_per_epoch() > UNDERTRAINED_GAIN


_SCORERS: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def _last_position_scorer(model: keras.Model) -> Callable[[tf.Tensor], tf.Tensor]:
    """One compiled last-position scorer per model (built once, reused by every evaluation)."""
    scorer = _SCORERS.get(model)
    if scorer is None:
        head = OutputHead(model)
        scorer = tf.function(
            head.last_position,
            input_signature=[tf.TensorSpec([None, model.inputs[0].shape[-1]], tf.int32)],
        )
        _SCORERS[model] = scorer
    return scorer


def score_model(model: keras.Model, histories: np.ndarray, batch_size: int = 1024) -> np.ndarray:
    """Last-position logits float32[N, C] of a sequence- or serving-mode model on ``histories``.

    A sequence-mode model takes any width, so its rows are scored shortest first, each batch cut
    to its longest history (left padding only: the outputs are the same, see
    :mod:`edge_rec.distill.training_input`); on short real histories most columns are padding.
    """
    histories = np.asarray(histories, dtype=np.int32)
    if histories.ndim != 2:
        raise ValueError(f"histories: expected int32[N, L], got shape {histories.shape}")
    score = _last_position_scorer(model)
    if not histories.shape[0]:
        return np.zeros((0, int(model.outputs[0].shape[-1])), np.float32)
    any_width = model.inputs[0].shape[-1] is None
    lengths = np.count_nonzero(histories, axis=1)
    order = np.argsort(lengths, kind="stable") if any_width else np.arange(histories.shape[0])
    scores = np.empty((histories.shape[0], int(model.outputs[0].shape[-1])), np.float32)
    for start in range(0, histories.shape[0], batch_size):
        rows = order[start : start + batch_size]
        width = max(1, int(lengths[rows].max())) if any_width else histories.shape[1]
        scores[rows] = np.asarray(score(tf.constant(histories[rows, histories.shape[1] - width :])))
    return scores


def build_optimizer(
    fit: FitConfig, rate: float | keras.optimizers.schedules.LearningRateSchedule
) -> keras.optimizers.Optimizer:
    """Adam (AdamW when ``fit.weight_decay`` > 0) at ``rate``, a constant or a schedule
    (:func:`~edge_rec.distill.learning_rate.learning_rate_schedule`)."""
    if fit.weight_decay > 0:
        return keras.optimizers.AdamW(learning_rate=rate, weight_decay=fit.weight_decay)
    return keras.optimizers.Adam(learning_rate=rate)


def scored_chunks(model: keras.Model, eval_set: EvalSet, chunk: int | None = None) -> Iterator[tuple[slice, np.ndarray]]:
    """``(rows, scores float32[rows, C])`` for ``chunk`` users of ``eval_set`` at a time (default:
    :func:`~device_runtime.metrics.scoring_rows`), so memory stays bounded however many users and
    items there are."""
    chunk = chunk or scoring_rows(int(model.outputs[0].shape[-1]))
    histories = np.asarray(eval_set.histories, dtype=np.int32)
    for start in range(0, histories.shape[0], chunk):
        rows = slice(start, start + chunk)
        yield rows, score_model(model, histories[rows])


def rank_model(
    model: keras.Model, eval_set: EvalSet, *, depth: int = EVAL_DEPTH, chunk: int | None = None
) -> np.ndarray:
    """Top-``depth`` item indices int32[N, depth] of a Keras model on ``eval_set``: the whole
    catalog ranked, PAD/OOV and each user's seen items excluded (:func:`rank_scores`), scored
    chunk by chunk (:func:`scored_chunks`)."""
    parts = [rank_scores(scores, eval_set.seen[rows], depth=depth)
             for rows, scores in scored_chunks(model, eval_set, chunk)]
    return np.concatenate(parts) if parts else np.zeros((0, depth), np.int32)


def validation_metrics(model: keras.Model, eval_set: EvalSet, *, chunk: int | None = None) -> dict[str, float]:
    """HR@10, NDCG@10 and MRR of a Keras model on ``eval_set``, equal to ranking the whole catalog
    with :func:`rank_model` and scoring the lists with
    :func:`~device_runtime.metrics.evaluate_ranked` (same exclusions and ties), but from each
    target's position (:func:`~device_runtime.metrics.target_positions`): one comparison pass
    instead of a partial sort, about 20x faster on a 10k-item catalog, which is what an epoch's
    validation needs (coverage, which needs the lists, is left to the final evaluation)."""
    targets = np.asarray(eval_set.targets).ravel()
    positions = np.concatenate([
        target_positions(scores, targets[rows], eval_set.seen[rows])
        for rows, scores in scored_chunks(model, eval_set, chunk)
    ])
    # an excluded target sits at position `catalog`: past the lists' depth, so not found
    gains = gains_at_positions(positions, depth=min(EVAL_DEPTH, int(model.outputs[0].shape[-1])))
    return {name: float(values.mean()) for name, values in gains.items()}


def progress_verbosity(quiet: bool, stream: Any = None) -> int:
    """Keras ``verbose`` for a fit: 0 when ``quiet``; a live progress bar (1) when ``stream``
    (stderr by default) is a terminal; else one line per epoch (2), so a captured log holds no
    ``\\r`` frames."""
    if quiet:
        return 0
    stream = sys.stderr if stream is None else stream
    return 1 if getattr(stream, "isatty", lambda: False)() else 2


class RankingValidation(keras.callbacks.Callback):
    """After each epoch: validation HR/NDCG@10/MRR of ``model``, early stopping, best-weight restore.

    Adds ``val_ndcg@10``, ``val_hr@10`` and ``val_mrr`` to the epoch logs. Stops training when
    NDCG@10 has not improved for ``patience`` epochs; at the end of training the weights of the
    best epoch are put back into ``model`` (unless ``restore_best`` is False: pruning must keep
    its last, fully sparse weights). ``seconds`` accumulates the time spent validating.
    """

    def __init__(
        self,
        model: keras.Model,
        valid: EvalSet,
        *,
        patience: int,
        quiet: bool,
        restore_best: bool = True,
    ):
        super().__init__()
        self.restore_best = restore_best
        self.scored_model = model
        self.valid = valid
        self.patience = patience
        self.quiet = quiet
        self.best = -math.inf
        self.best_epoch = 0
        self.best_weights = None
        self.wait = 0
        self.seconds = 0.0

    def on_epoch_end(self, epoch, logs=None):
        logs = logs if logs is not None else {}
        start = time.perf_counter()
        metrics = validation_metrics(self.scored_model, self.valid)
        self.seconds += time.perf_counter() - start
        logs[VALIDATION_METRIC] = metrics["ndcg@10"]
        logs["val_hr@10"] = metrics["hr@10"]
        logs["val_mrr"] = metrics["mrr"]
        level = logging.DEBUG if self.quiet else logging.INFO
        log.log(level, "epoch %d: val NDCG@10 %.4f HR@10 %.4f", epoch + 1, metrics["ndcg@10"], metrics["hr@10"])
        if metrics["ndcg@10"] > self.best:
            self.best = metrics["ndcg@10"]
            self.best_epoch = epoch + 1
            self.best_weights = self.scored_model.get_weights()
            self.wait = 0
        else:
            self.wait += 1
            if self.wait >= self.patience:
                self.model.stop_training = True

    def on_train_end(self, logs=None):
        if self.restore_best and self.best_weights is not None:
            self.scored_model.set_weights(self.best_weights)


def train_sequence_model(
    model: keras.Model,
    teacher: keras.Model | None,
    split: LeaveLastOutSplit,
    *,
    fit: FitConfig,
    distill: DistillConfig | None = None,
    history_length: int,
    quiet: bool = False,
    extra_callbacks: Sequence[keras.callbacks.Callback] = (),
    restore_best: bool = True,
    softmax: SoftmaxConfig | None = None,
    seed: int,
) -> TrainResult:
    """Fit ``model`` (sequence mode) on the training sequences of ``split`` via a Distiller.

    The examples are the rows of ``split.sequence_examples(history_length)`` (one per training
    window: every training item is a target once), streamed by
    :func:`~edge_rec.distill.training_input.sequence_batches` (windows shuffled with ``seed``, a
    new order each epoch, ``fit.batch_size`` per step).

    ``teacher=None`` (or ``distill=None``, or α=1 with β=γ=0) trains on next-item cross-entropy
    alone — the teacher and the baseline student use this same path. Validation NDCG@10 on
    ``split.eval_set("valid", history_length)`` is computed each epoch; early stopping with
    ``fit.patience`` restores the best weights into ``model`` (``restore_best=False`` keeps the
    last epoch's, as pruning needs). ``quiet`` hides progress bars. ``softmax`` chooses a full or
    sampled softmax (default: full).
    Seed TensorFlow beforehand (``set_global_seed``) for repeatable dropout and sampling.
    """
    if fit.epochs < 1 or fit.batch_size < 1:
        raise ValueError(f"fit: epochs and batch_size must be >= 1, got {fit.epochs} and {fit.batch_size}")
    built_for = history_length_of(model)
    if built_for not in (None, history_length):
        raise ValueError(
            f"model expects histories of length {built_for}, "
            f"training data uses history_length={history_length}"
        )
    catalog_size = int(model.outputs[0].shape[-1])
    if catalog_size != split.catalog_size:
        raise ValueError(
            f"model scores {catalog_size} items but the data's catalog has {split.catalog_size}; "
            "build the model with the dataset's vocabulary size"
        )
    valid = split.eval_set("valid", history_length)
    negatives = (softmax or SoftmaxConfig(mode="full")).sampled_negatives(catalog_size)
    sampler = (
        NegativeSampler(split.popularity(), negatives, power=softmax.power) if negatives else None
    )
    windows = split.training_windows(history_length)
    # length buckets batch short rows together: weigh every position alike across the epoch
    per_step = (positions_per_step(windows, history_length, fit.batch_size, bucketed=True)
                if fit.length_buckets else None)
    distiller = Distiller(
        model, teacher, distill or DistillConfig().without_teacher(), sampler=sampler, positions_per_step=per_step
    )
    batches = sequence_batches(windows, history_length, fit.batch_size, seed=seed, bucketed=fit.length_buckets)
    steps = steps_per_epoch(windows, history_length, fit.batch_size, bucketed=fit.length_buckets)
    rate = learning_rate_schedule(fit, steps)
    distiller.compile(optimizer=build_optimizer(fit, rate))
    if isinstance(rate, WarmupCosineDecay):  # a time budget ends the decay within the budget
        for callback in extra_callbacks:
            if isinstance(callback, StopAtDeadline):
                callback.anneal(rate, steps)
    validation = RankingValidation(
        model, valid, patience=fit.patience, quiet=quiet, restore_best=restore_best
    )
    start = time.perf_counter()
    history = distiller.fit(
        batches,
        epochs=fit.epochs,
        verbose=progress_verbosity(quiet),
        callbacks=[validation, *extra_callbacks],
    )
    seconds = time.perf_counter() - start
    logs = {name: [float(v) for v in values] for name, values in history.history.items()}
    epochs_run = len(logs.get("loss", []))
    if any(isinstance(cb, StopAtDeadline) and cb.stopped_early for cb in extra_callbacks):
        stopped_by = "time budget"
    elif epochs_run < fit.epochs:
        stopped_by = "early stopping"
    else:
        stopped_by = "max epochs"
    return TrainResult(
        history=logs,
        seconds=seconds,
        validation_seconds=validation.seconds,
        epochs_run=epochs_run,
        stopped_by=stopped_by,
        best_val_ndcg=float(validation.best) if validation.best_weights is not None else 0.0,
        best_epoch=validation.best_epoch,
    )
