"""The pipeline stages: each is ``stage(inputs, config) -> artifact`` with a frozen config.

A stage does one named thing to its inputs and returns what it made; it never reaches into
another stage's internals, and it does not write to the run directory (``pipeline.py`` records).
This module imports TensorFlow.
"""

from __future__ import annotations

import gzip
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from converters.parity import ParityResult, check_parity
from converters.tflite import convert_to_tflite
from converters.tflite_evaluation import tflite_rankings
from device_runtime.bundle import serving_top_k
from device_runtime.metrics import evaluate_ranked, per_user_gains, rank_scores
from edge_rec.beyond_accuracy import (
    intra_list_diversity,
    popularity_rank_at_k,
)
from edge_rec.compress.lowrank import factorize_output_layer
from edge_rec.compress.pruning import (
    overall_sparsity,
    prune_student,
    pruning_callbacks,
    sparsity_levels,
    sparsity_report,
    strip_pruning,
)
from edge_rec.compress.qat import quantize_student
from edge_rec.compress.sparsity_selection import KeepSparsestWithinLoss, SparsityChoice
from edge_rec.config import (
    ConvertConfig,
    DistillConfig,
    FitConfig,
    LowRankConfig,
    PruneConfig,
    QATConfig,
    SoftmaxConfig,
    StudentConfig,
    TeacherConfig,
)
from edge_rec.data.prepared import PreparedData, prepare_data, prepare_sized_data  # noqa: F401 (re-exported)
from edge_rec.distill.training import (
    TrainResult,
    rank_model,
    train_sequence_model,
    validation_metrics,
)
from edge_rec.distill.training_input import steps_per_epoch
from edge_rec.distributed import backup_callbacks, training_scope
from edge_rec.keras_shim import keras, set_global_seed
from edge_rec.models import build_student, build_teacher, student_serving_model
from edge_rec.models.averaged_teacher import average_teachers
from edge_rec.models.item_encoder import fold_item_features
from edge_rec.models.warm_start import warm_start_student
from edge_rec.passes import LOWRANK, PRUNED, QAT, TEACHER
from edge_rec.time_budget import StopAtDeadline

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class TrainedModel:
    """A trained Keras model in both forms: sequence (training) and serving (last position).

    ``members``: for an averaged teacher, each member's training result (empty otherwise), and
    ``members_kept`` the indices of those it averages (chosen on validation) and
    ``averaged_val_ndcg`` that average's validation NDCG@10 (None otherwise). ``item_encoder``:
    for a student trained with item features, the feature encoder's token table (its models are
    folded: :func:`~edge_rec.models.item_encoder.fold_item_features`); None otherwise.
    """

    name: str
    sequence_model: Any
    serving_model: Any
    train: TrainResult | None
    seconds: float
    members: tuple[TrainResult, ...] = ()
    members_kept: tuple[int, ...] = ()
    averaged_val_ndcg: float | None = None
    item_encoder: Any = None

    @property
    def params(self) -> int:
        """Parameters of the serving model (what a device would carry)."""
        return int(self.serving_model.count_params())


def _fit(
    name: str,
    sequence_model: Any,
    teacher: Any | None,
    data: PreparedData,
    fit: FitConfig,
    distill: DistillConfig,
    *,
    seed: int,
    quiet: bool,
    callbacks: tuple = (),
    restore_best: bool = True,
    softmax: SoftmaxConfig | None = None,
) -> tuple[TrainResult, float]:
    log.info("stage %s: training (%d epochs max)", name, fit.epochs)
    start = time.perf_counter()
    result = train_sequence_model(
        sequence_model,
        teacher,
        data.split,
        fit=fit,
        distill=distill,
        history_length=data.history_length,
        quiet=quiet,
        extra_callbacks=callbacks,
        restore_best=restore_best,
        softmax=softmax,
        seed=seed,
    )
    return result, time.perf_counter() - start


def _bias_quantile(data: PreparedData) -> float:
    """The output-bias quantile of features-only items (as for patched items)."""
    return data.item_tokens.new_item_bias_quantile if data.item_tokens is not None else 0.5


def _deadline(stage: str, time_limit: float | None) -> tuple:
    return (StopAtDeadline(time_limit, stage),) if time_limit is not None else ()


#: Seeds of an averaged teacher's members are this far apart, so the members of builds run with
#: nearby seeds (0, 1, 2, ...) never share a seed.
MEMBER_SEED_STRIDE = 1000


def member_seed(seed: int, index: int) -> int:
    """The seed of an averaged teacher's ``index``-th member (member 0 keeps the build's seed, so
    a one-member teacher is the single teacher it always was)."""
    return seed + MEMBER_SEED_STRIDE * index


def _train_member(data: PreparedData, cfg: TeacherConfig, *, seed: int, quiet: bool,
                  softmax: SoftmaxConfig | None, time_limit: float | None) -> tuple[Any, Any, TrainResult]:
    """One teacher trained from ``seed``: ``(sequence model, serving model, result)``."""
    set_global_seed(seed)
    with training_scope():  # one process, or every worker of a TF_CONFIG cluster
        model = build_teacher(cfg, data.catalog_size, data.history_length, sequence=True, item_tokens=data.item_tokens)
        result, _ = _fit(
            TEACHER, model, None, data, cfg.fit, DistillConfig().without_teacher(), seed=seed, quiet=quiet,
            softmax=softmax,
            callbacks=(*_deadline(TEACHER, time_limit), *backup_callbacks(TEACHER)),
        )
    # the serving form is plain: item features folded into the id table (the sequence form keeps
    # its encoder for distillation, where id dropout is off anyway)
    serving = build_teacher(cfg, data.catalog_size, data.history_length, sequence=False)
    fold_item_features(model, serving, new_item_bias_quantile=_bias_quantile(data))
    return model, serving, result


def train_teacher(
    data: PreparedData,
    cfg: TeacherConfig,
    *,
    seed: int,
    quiet: bool = False,
    softmax: SoftmaxConfig | None = None,
    time_limit: float | None = None,
) -> TrainedModel:
    """Train the sequential teacher with next-item cross-entropy at every position
    (full or sampled softmax as ``softmax`` says; full when None), stopping at an epoch
    boundary before ``time_limit`` seconds when one is given.

    With ``cfg.members`` > 1, up to that many teachers are trained one after another from
    :func:`member_seed` seeds, each within what remains of ``time_limit``: the first may use all
    of it, and another starts only when the ones before it converged and the time left can train
    one more (:func:`_another_member_fits`; the rest of the time flows to the next stages). They are
    averaged into one (:func:`~edge_rec.models.averaged_teacher.average_teachers`); the result's
    ``train`` is the first member's and ``members`` holds every member's. Only the members whose
    average validates best are averaged (:func:`_members_to_average`; one member kept means the
    teacher is that member alone)."""
    start = time.perf_counter()
    trained = []
    for index in range(cfg.members):
        limit = None
        if time_limit is not None:
            limit = time_limit - (time.perf_counter() - start)
            if index > 0 and not _another_member_fits(trained, limit):
                break
        if cfg.members > 1:
            log.info("stage %s: member %d of %d (seed %d)", TEACHER, index + 1, cfg.members, member_seed(seed, index))
        trained.append(_train_member(data, cfg, seed=member_seed(seed, index), quiet=quiet, softmax=softmax,
                                     time_limit=None if limit is None else max(1.0, limit)))
    model, serving, result = trained[0]
    kept: tuple[int, ...] = ()
    kept_ndcg = None
    if len(trained) > 1:
        kept, kept_ndcg = _members_to_average([t[1] for t in trained], data)
        if len(kept) == 1:
            model, serving = trained[kept[0]][0], trained[kept[0]][1]
        else:
            model = average_teachers([trained[i][0] for i in kept], name=f"teacher_{cfg.kind}_averaged")
            serving = average_teachers([trained[i][1] for i in kept], name=f"teacher_{cfg.kind}_averaged_serving")
    return TrainedModel(TEACHER, model, serving, result, time.perf_counter() - start,
                        members=tuple(t[2] for t in trained) if len(trained) > 1 else (), members_kept=kept,
                        averaged_val_ndcg=kept_ndcg)


#: Another averaged-teacher member starts only when the time left is this many times what the
#: slowest member so far took (members of one config train at about the same pace).
MEMBER_TIME_MARGIN = 1.15


def _another_member_fits(trained: list[tuple[Any, Any, TrainResult]], seconds_left: float) -> bool:
    """Whether the teacher's remaining ``seconds_left`` can bring one more member to convergence:
    every member so far converged (early stopping or its planned epochs, never the budget), and
    the time left is :data:`MEMBER_TIME_MARGIN` times the slowest one's. Otherwise the members
    trained so far are the teacher, and the time left flows to the stages after it."""
    results = [result for _, _, result in trained]
    if any(result.stopped_by == "time budget" for result in results):
        log.info("stage %s: member %d stopped on the time budget; no further member starts (one "
                 "converged teacher beats an average of undertrained ones)", TEACHER, len(results))
        return False
    needed = MEMBER_TIME_MARGIN * max(result.seconds for result in results)
    if seconds_left < needed:
        log.info("stage %s: %.0f s left, one more member needs about %.0f s; the teacher keeps %d member(s)",
                 TEACHER, seconds_left, needed, len(results))
        return False
    return True


def _members_to_average(servings: list[Any], data: PreparedData) -> tuple[tuple[int, ...], float]:
    """Which trained members the averaged teacher keeps, and their average's validation NDCG@10:
    the members ranked by validation NDCG@10, then the best-validating average of the top 1, 2,
    ... of them (ties: fewer). A
    member that failed to learn (e.g. early-stopped on a popularity plateau) would drag the
    average below the good members; this keeps it out."""
    valid = data.split.eval_set("valid", data.history_length)
    alone = [validation_metrics(m, valid)["ndcg@10"] for m in servings]
    order = sorted(range(len(servings)), key=lambda i: -alone[i])
    best, best_score = order[:1], alone[order[0]]
    for k in range(2, len(order) + 1):
        score = validation_metrics(average_teachers([servings[i] for i in order[:k]], name="candidate"),
                                   valid)["ndcg@10"]
        if score > best_score:
            best, best_score = order[:k], score
    log.info("stage %s: members' validation NDCG@10 %s; averaging members %s (%.4f)", TEACHER,
             ", ".join(f"{v:.4f}" for v in alone), sorted(best), best_score)
    return tuple(sorted(best)), best_score


def averaged_teacher_summary(model: TrainedModel, *, seed: int) -> dict[str, Any]:
    """For an averaged teacher (``model.members`` not empty), the report's account of it: each
    member's seed, epochs, stopping reason, best validation NDCG@10 and seconds, whether it was
    averaged, and the kept average's validation NDCG@10; empty for any other model."""
    if not model.members:
        return {}
    return {
        "members": [
            {"seed": member_seed(seed, i), "epochs_run": r.epochs_run, "best_epoch": r.best_epoch,
             "stopped_by": r.stopped_by, "best_val_ndcg@10": r.best_val_ndcg, "seconds": round(r.seconds, 2),
             "averaged": i in model.members_kept}
            for i, r in enumerate(model.members)
        ],
        "averaged_val_ndcg@10": model.averaged_val_ndcg,
    }


def train_student(
    data: PreparedData,
    teacher: TrainedModel | None,
    cfg: StudentConfig,
    distill: DistillConfig,
    *,
    seed: int,
    name: str,
    quiet: bool = False,
    softmax: SoftmaxConfig | None = None,
    time_limit: float | None = None,
) -> TrainedModel:
    """Train the student: distilled from ``teacher``, or alone (α=1, and the student's
    ``alone_dropout``: :meth:`~edge_rec.config.StudentConfig.trained_alone`) when ``teacher`` is None.

    Both use the same Distiller code path, seeds and epochs, so the comparison is fair.
    """
    set_global_seed(seed)
    if teacher is None:
        distill = distill.without_teacher()
        cfg = cfg.trained_alone()
    with training_scope():  # one process, or every worker of a TF_CONFIG cluster
        model = build_student(cfg, data.catalog_size, data.history_length, sequence=True, item_tokens=data.item_tokens)
        if cfg.warm_start and teacher is not None:
            warm_start_student(model, teacher.sequence_model)
        result, seconds = _fit(
            name, model, teacher.sequence_model if teacher else None, data, cfg.fit, distill, seed=seed, quiet=quiet,
            softmax=softmax, callbacks=(*_deadline(name, time_limit), *backup_callbacks(name)),
        )
    plain = build_student(cfg, data.catalog_size, data.history_length, sequence=True)
    # the same model, features folded into its id table
    encoder = fold_item_features(model, plain, new_item_bias_quantile=_bias_quantile(data))
    serving = student_serving_model(plain, cfg, data.catalog_size, data.history_length)
    return TrainedModel(name, plain, serving, result, seconds, item_encoder=encoder)


@dataclass(frozen=True)
class ShippedStudent:
    """The student that goes on to compression, the distillation settings compression keeps, and
    why it was chosen."""

    model: TrainedModel
    distill: DistillConfig
    reason: str


def choose_student(distilled: TrainedModel, alone: TrainedModel, distill: DistillConfig) -> ShippedStudent:
    """Distillation must never hurt: the student with the better *validation* NDCG@10 is
    compressed (the test split is never used to choose). When the student trained alone wins,
    pruning and QAT fine-tune it without the teacher too (α = 1)."""
    distilled_val = distilled.train.best_val_ndcg if distilled.train else 0.0
    alone_val = alone.train.best_val_ndcg if alone.train else 0.0
    if alone_val > distilled_val:
        return ShippedStudent(
            alone,
            distill.without_teacher(),
            f"the student trained alone validated better ({alone_val:.4f} vs {distilled_val:.4f} "
            "NDCG@10 for the distilled one): the teacher did not help on this log",
        )
    return ShippedStudent(
        distilled,
        distill,
        f"the distilled student validated at {distilled_val:.4f} NDCG@10, the student alone at {alone_val:.4f}",
    )


def prune(
    data: PreparedData,
    student: TrainedModel,
    teacher: TrainedModel,
    cfg: PruneConfig,
    student_cfg: StudentConfig,
    distill: DistillConfig,
    *,
    seed: int,
    quiet: bool = False,
    time_limit: float | None = None,
) -> tuple[TrainedModel, dict[str, float], SparsityChoice | None]:
    """Magnitude-prune the student's Dense and Embedding layers, fine-tuning with the teacher on,
    one sparsity level per epoch; keeps the sparsest level within ``cfg.max_loss`` of the
    student's validation NDCG@10 (:mod:`edge_rec.compress.sparsity_selection`). Returns the
    pruned model, its per-layer sparsity and the choice (None when the student has no
    validation score to compare with: then the last level is kept). With ``time_limit``, it
    stops at the epoch boundary that would overrun it, keeping the levels tried so far."""
    set_global_seed(seed)
    steps = steps_per_epoch(data.split.training_windows(data.history_length), data.history_length,
                            cfg.fit.batch_size, bucketed=cfg.fit.length_buckets)
    wrapped = prune_student(student.sequence_model, cfg, steps_per_epoch=steps)
    reference = student.train.best_val_ndcg if student.train else 0.0
    selection = (
        KeepSparsestWithinLoss(wrapped, sparsity_levels(cfg), reference=reference, max_loss=cfg.max_loss)
        if reference > 0 else None
    )
    result, seconds = _fit(
        PRUNED,
        wrapped,
        teacher.sequence_model,
        data,
        cfg.fit,
        distill,
        seed=seed,
        quiet=quiet,
        callbacks=(*pruning_callbacks(), *((selection,) if selection else ()), *_deadline(PRUNED, time_limit)),
        restore_best=False,
    )
    stripped = strip_pruning(wrapped)
    serving = student_serving_model(stripped, student_cfg, data.catalog_size, data.history_length)
    report = sparsity_report(stripped)
    choice = selection.choice if selection else None
    return TrainedModel(PRUNED, stripped, serving, result, seconds), report, choice


def _fine_tune_transformed(
    name: str,
    transform: Callable[[Any], Any],
    source: TrainedModel,
    teacher: TrainedModel,
    data: PreparedData,
    fit: FitConfig,
    distill: DistillConfig,
    *,
    seed: int,
    quiet: bool,
    time_limit: float | None = None,
) -> TrainedModel:
    """Apply ``transform`` to both forms of ``source``, fine-tune the sequence form with the
    teacher on, and copy the tuned weights into the transformed serving form."""
    set_global_seed(seed)
    sequence = transform(source.sequence_model)
    result, seconds = _fit(
        name, sequence, teacher.sequence_model, data, fit, distill, seed=seed, quiet=quiet,
        callbacks=_deadline(name, time_limit),
    )
    serving = transform(source.serving_model)
    serving.set_weights(sequence.get_weights())
    return TrainedModel(name, sequence, serving, result, seconds)


def quantization_aware_training(
    data: PreparedData,
    pruned: TrainedModel,
    teacher: TrainedModel,
    cfg: QATConfig,
    distill: DistillConfig,
    *,
    seed: int,
    quiet: bool = False,
    time_limit: float | None = None,
) -> TrainedModel:
    """Pruning-preserving QAT of the pruned student, fine-tuned with the teacher still teaching."""
    return _fine_tune_transformed(
        QAT, quantize_student, pruned, teacher, data, cfg.fit, distill, seed=seed, quiet=quiet,
        time_limit=time_limit,
    )


def low_rank(
    data: PreparedData,
    student: TrainedModel,
    teacher: TrainedModel,
    cfg: LowRankConfig,
    distill: DistillConfig,
    *,
    seed: int,
    quiet: bool = False,
    time_limit: float | None = None,
) -> TrainedModel:
    """Factorize the student's output layer to rank ``cfg.rank`` and fine-tune with distillation
    (stopping at an epoch boundary before ``time_limit`` seconds when one is given)."""
    return _fine_tune_transformed(
        LOWRANK,
        lambda model: factorize_output_layer(model, cfg.rank),
        student,
        teacher,
        data,
        cfg.fit,
        distill,
        seed=seed,
        quiet=quiet,
        time_limit=time_limit,
    )


def representative_histories(data: PreparedData, count: int, *, seed: int) -> np.ndarray:
    """Real training histories (every-prefix examples, ``count`` drawn) to calibrate int8 activations."""
    return data.split.sample_prefixes(data.history_length, count, np.random.default_rng(seed))


def convert(model: TrainedModel, variant: str, data: PreparedData, cfg: ConvertConfig, *, seed: int) -> bytes:
    """Convert a serving model to a TFLite variant with top-K in the graph."""
    calibration = (
        representative_histories(data, cfg.representative_samples, seed=seed) if variant == "int8" else None
    )
    return convert_to_tflite(
        model.serving_model,
        variant,
        history_length=data.history_length,
        top_k=serving_top_k(cfg.top_k, data.catalog_size),
        representative_histories=calibration,
        sparsity_encoding=cfg.sparsity_encoding,
    )


def rank_keras(model: Any, data: PreparedData) -> np.ndarray:
    """Test-split top-100 lists int32[U, 100] of a Keras model (full ranking, seen excluded)."""
    return rank_model(model, data.test_set)


def rank_popularity(data: PreparedData) -> np.ndarray:
    """Test-split top-100 lists of the most-popular baseline (training counts, seen excluded)."""
    test = data.test_set
    popularity = data.split.popularity().astype(np.float32)
    parts = [
        rank_scores(np.broadcast_to(popularity, (len(seen), popularity.shape[0])), seen)
        for seen in (test.seen[i : i + 2048] for i in range(0, len(test.seen), 2048))
    ]
    return np.concatenate(parts)


def rank_tflite(tflite: bytes, data: PreparedData) -> np.ndarray:
    """Test-split lists a bundle of this TFLite model serves (the runtime's rule: graph top-K
    minus seen items, filled from the popularity order), obtained by running the interpreter."""
    test = data.test_set
    return tflite_rankings(tflite, test, data.catalog_size, data.split.popularity_order())


def ranking_metrics(ranked: np.ndarray, data: PreparedData) -> dict[str, float]:
    """HR@10, NDCG@10, MRR, coverage@10, popularity rank@10 and intra-list diversity@10 of
    test-split ranked lists (see :mod:`edge_rec.beyond_accuracy`)."""
    test = data.test_set
    metrics = dict(evaluate_ranked(ranked, test.targets, data.catalog_size))
    metrics["popularity_rank@10"] = popularity_rank_at_k(ranked, data.popularity_ranks)
    metrics["diversity@10"] = intra_list_diversity(ranked, data.item_sketches)
    return metrics


def per_user_ndcg(ranked: np.ndarray, data: PreparedData) -> np.ndarray:
    """Each test user's NDCG@10, float64[U], for paired comparisons."""
    test = data.test_set
    return per_user_gains(ranked, test.targets)["ndcg@10"]


def evaluate_keras(model: Any, data: PreparedData) -> dict[str, float]:
    """Test-split metrics of a Keras serving model (:func:`ranking_metrics` of :func:`rank_keras`)."""
    return ranking_metrics(rank_keras(model, data), data)


def parity(qat: TrainedModel, tflite: bytes, data: PreparedData) -> ParityResult:
    """Keras QAT model vs its int8 TFLite conversion on the test split."""
    test = data.test_set
    return check_parity(qat.serving_model, tflite, test, data.catalog_size)


def gzip_size(data: bytes) -> int:
    """Size after gzip -9: what pruned zeros save on the wire."""
    return len(gzip.compress(data, compresslevel=9))


__all__ = [
    "PreparedData",
    "ShippedStudent",
    "TrainedModel",
    "choose_student",
    "convert",
    "evaluate_keras",
    "per_user_ndcg",
    "rank_keras",
    "rank_popularity",
    "rank_tflite",
    "ranking_metrics",
    "gzip_size",
    "keras",
    "low_rank",
    "overall_sparsity",
    "parity",
    "prepare_data",
    "prepare_sized_data",
    "prune",
    "quantization_aware_training",
    "representative_histories",
    "train_student",
    "train_teacher",
]
