"""``edge-rec build``: a workflow of passes over one build state, then the report.

Each pass (:data:`WORKFLOW`) is a named function ``pass(state) -> None`` that runs one stage of
:mod:`edge_rec.stages` (which hold all training and conversion logic) and records what it made
through the :class:`~edge_rec.stage_recorder.StageRecorder`; a pass whose config is disabled is
skipped. A new stage is one function and one line of :data:`WORKFLOW` (Olive-style passes).
"""

from __future__ import annotations

import dataclasses
import logging
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from edge_rec import stages
from edge_rec.config import EdgeRecConfig, config_to_dict, parse_duration
from edge_rec.data import write_interactions_csv
from edge_rec.data.titles import titles_by_index
from edge_rec.export import ExportResult, export_bundle
from edge_rec.quality_gate import GateResult, evaluate_gate
from edge_rec.report import build_report, write_report
from edge_rec.run_directory import RunDirectory, terminate_as_interrupt
from edge_rec.sizing import SizingChoice, sizing_summary
from edge_rec.stage_names import (
    BUNDLE,
    DATA,
    LOWRANK,
    PRUNED,
    QAT,
    STUDENT,
    STUDENT_BASELINE,
    TEACHER,
    TFLITE_INT8,
    tflite_stage,
)
from edge_rec.stage_recorder import StageRecorder
from edge_rec.time_budget import TimeBudget

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class BuildResult:
    """What a build wrote: the run directory, the bundle, the report and the gate verdict."""

    run_dir: Path
    bundle_dir: Path
    report: dict[str, Any]
    report_paths: dict[str, Path]
    gate: GateResult


@dataclass
class BuildState:
    """Everything the passes share: inputs, the models made so far, and what was recorded."""

    cfg: EdgeRecConfig
    run: RunDirectory
    data: stages.PreparedData
    sizing: tuple[SizingChoice, ...]
    budget: TimeBudget
    rec: StageRecorder
    quiet: bool = False
    titles: Mapping[str, str] | None = None
    models: dict[str, stages.TrainedModel] = field(default_factory=dict)
    float32: dict[str, bytes] = field(default_factory=dict)
    variants: dict[str, bytes] = field(default_factory=dict)
    shipped: stages.ShippedStudent | None = None
    compressed: stages.TrainedModel | None = None  # pruned, else the shipped student
    quantized: stages.TrainedModel | None = None  # QAT, else the compressed student
    exported: ExportResult | None = None
    compression: dict[str, Any] = field(default_factory=dict)

    @property
    def seed(self) -> int:
        """The build's seed."""
        return self.cfg.seed

    @property
    def student(self) -> stages.TrainedModel:
        """The student that ships (set by the choose-student pass)."""
        assert self.shipped is not None, "the choose-student pass runs before compression"
        return self.shipped.model

    def keras(self, model: stages.TrainedModel, **extra: Any) -> None:
        """Record a Keras stage and keep it (and its float32 flatbuffer) for later passes."""
        self.models[model.name] = model
        start = time.perf_counter()
        self.float32[model.name] = self.rec.keras(model, **extra)
        self.budget.evaluation_took(time.perf_counter() - start)


def _budget_note(s: BuildState, stage: str, model: stages.TrainedModel, planned_epochs: int) -> dict[str, str]:
    """``{"budget_note": ...}`` for the stage's record when the budget cut its training short
    while it was still improving (logged as a warning too); else nothing."""
    note = s.budget.undertrained_note(stage, model.train, planned_epochs) if model.train else None
    if note is None:
        return {}
    log.warning("%s", note)
    return {"budget_note": note}


def _popularity(s: BuildState) -> None:
    s.rec.popularity()


def _teacher(s: BuildState) -> None:
    with s.run.stage(TEACHER):
        teacher = stages.train_teacher(
            s.data, s.cfg.teacher, seed=s.seed, quiet=s.quiet, softmax=s.cfg.softmax,
            time_limit=s.budget.allowance(TEACHER),
        )
    s.keras(teacher, **_budget_note(s, TEACHER, teacher, s.cfg.teacher.fit.epochs))


def _student(name: str, with_teacher: bool) -> Callable[[BuildState], None]:
    def train(s: BuildState) -> None:
        with s.run.stage(name):
            student = stages.train_student(
                s.data, s.models[TEACHER] if with_teacher else None, s.cfg.student, s.cfg.distill,
                seed=s.seed, name=name, quiet=s.quiet, softmax=s.cfg.softmax,
                time_limit=s.budget.allowance(name),
            )
        s.keras(student, **_budget_note(s, name, student, s.cfg.student.fit.epochs))

    return train


def _choose_student(s: BuildState) -> None:
    s.shipped = stages.choose_student(s.models[STUDENT], s.models[STUDENT_BASELINE], s.cfg.distill)
    s.compressed = s.quantized = s.shipped.model
    log.info("compressing %s: %s", s.shipped.model.name, s.shipped.reason)


def _prune(s: BuildState) -> None:
    student = s.student
    epoch_seconds = student.seconds / max(1, student.train.epochs_run if student.train else 1)
    epochs = s.budget.epochs_that_fit(s.budget.allowance(PRUNED), epoch_seconds, s.cfg.prune.fit.epochs)
    cfg = dataclasses.replace(s.cfg.prune, fit=dataclasses.replace(s.cfg.prune.fit, epochs=epochs))
    with s.run.stage(PRUNED):
        pruned, per_layer, choice = stages.prune(
            s.data, student, s.models[TEACHER], cfg, s.cfg.student, s.shipped.distill,
            seed=s.seed, quiet=s.quiet,
        )
    s.keras(pruned, sparsity_per_layer=per_layer, **({"sparsity_choice": choice.to_dict()} if choice else {}))
    s.compressed = s.quantized = pruned


def _low_rank(s: BuildState) -> None:
    with s.run.stage(LOWRANK):
        lowrank = stages.low_rank(
            s.data, s.student, s.models[TEACHER], s.cfg.lowrank, s.shipped.distill, seed=s.seed, quiet=s.quiet
        )
    s.keras(lowrank, rank=s.cfg.lowrank.rank)


def _qat(s: BuildState) -> None:
    with s.run.stage(QAT):
        qat = stages.quantization_aware_training(
            s.data, s.compressed, s.models[TEACHER], s.cfg.qat, s.shipped.distill, seed=s.seed,
            quiet=s.quiet, time_limit=s.budget.allowance(QAT),
        )
    s.keras(qat, sparsity=stages.overall_sparsity(s.compressed.serving_model))
    s.quantized = qat


def _convert(s: BuildState) -> None:
    """TFLite variants: float32/float16/dynamic of the shipped student, int8 of the QAT model."""
    s.variants["float32"] = s.float32[s.student.name]
    for variant in s.cfg.convert.variants:
        source = s.quantized if variant == "int8" else s.student
        if variant not in s.variants:
            with s.run.stage(f"convert_{variant}"):
                s.variants[variant] = stages.convert(source, variant, s.data, s.cfg.convert, seed=s.seed)
        s.rec.tflite(
            tflite_stage(variant),
            s.variants[variant],
            params=source.params,
            sparsity=s.rec.records[source.name].sparsity or 0.0,
            seconds=s.run.timings.get(f"convert_{variant}", 0.0),
        )


def _export(s: BuildState) -> None:
    vocab = s.data.dataset.vocab
    with s.run.stage(BUNDLE):
        s.exported = export_bundle(
            s.quantized.serving_model, s.data, s.run.path / BUNDLE, convert_cfg=s.cfg.convert, seed=s.seed,
            variant="int8", qat=s.cfg.qat.enabled, tflite=s.variants["int8"],
            metrics=s.rec.records[TFLITE_INT8].metrics,
            titles=None if s.titles is None else titles_by_index(vocab.ids, s.titles, vocab.titles),
        )
    log.info("parity: top-10 overlap %.3f", s.exported.parity.top10_overlap)


def _compression_sizes(s: BuildState) -> None:
    """What pruning buys on the wire: int8 at sparsity 0 (post-training, the shipped student)
    next to the int8 model of the pipeline (pruned + QAT), and the float32 files."""
    with s.run.stage("convert_int8_unpruned"):
        dense_int8 = stages.convert(s.student, "int8", s.data, s.cfg.convert, seed=s.seed)

    def flatbuffer(data: bytes, sparsity: float) -> dict[str, Any]:
        return {"sparsity": sparsity, "size_bytes": len(data), "gzip_bytes": stages.gzip_size(data)}

    def recorded(stage: str, sparsity: float | None = None) -> dict[str, Any]:
        record = s.rec.records[stage]
        return {"sparsity": record.sparsity if sparsity is None else sparsity,
                "size_bytes": record.size_bytes, "gzip_bytes": record.gzip_bytes}

    target = s.cfg.prune.target_sparsity if s.cfg.prune.enabled else 0.0
    s.compression = {
        "int8_sparsity_0": flatbuffer(dense_int8, 0.0),
        f"int8_sparsity_{target:g}": flatbuffer(s.variants["int8"], s.rec.records[TFLITE_INT8].sparsity or 0.0),
        "float32_sparsity_0": recorded(s.student.name, sparsity=0.0),
    }
    if PRUNED in s.rec.records:
        s.compression[f"float32_sparsity_{s.cfg.prune.target_sparsity:g}"] = recorded(PRUNED)


@dataclass(frozen=True)
class BuildPass:
    """One named step of the build and the config switch that enables it."""

    name: str
    run: Callable[[BuildState], None]
    enabled: Callable[[EdgeRecConfig], bool] = lambda cfg: True


#: The build, in order. A new stage is one function above and one line here.
WORKFLOW: tuple[BuildPass, ...] = (
    BuildPass("popularity", _popularity),
    BuildPass(TEACHER, _teacher),
    BuildPass(STUDENT_BASELINE, _student(STUDENT_BASELINE, with_teacher=False)),
    BuildPass(STUDENT, _student(STUDENT, with_teacher=True)),
    BuildPass("choose_student", _choose_student),
    BuildPass(PRUNED, _prune, enabled=lambda cfg: cfg.prune.enabled),
    BuildPass(LOWRANK, _low_rank, enabled=lambda cfg: cfg.lowrank.enabled),
    BuildPass(QAT, _qat, enabled=lambda cfg: cfg.qat.enabled),
    BuildPass("convert", _convert),
    BuildPass(BUNDLE, _export),
    BuildPass("compression", _compression_sizes),
)


def run_build(
    cfg: EdgeRecConfig,
    run_dir: str | Path,
    *,
    data_path: str | None = None,
    data_format: str | None = None,
    quiet: bool = False,
    titles: Mapping[str, str] | None = None,
) -> BuildResult:
    """Run every pass of :data:`WORKFLOW` and write ``RUN_DIR/bundle`` and the report.

    The report is written even when the quality gate fails; the caller decides the exit status.
    """
    run = RunDirectory(run_dir, seed=cfg.seed, config=config_to_dict(cfg))
    try:
        with terminate_as_interrupt():
            result = _run(cfg, run, data_path=data_path, data_format=data_format, quiet=quiet, titles=titles)
    except BaseException as exc:
        run.finish("failed", error=f"{type(exc).__name__}: {exc}")
        raise
    run.finish("ok" if result.gate.passed else "gate-failed", gate_passed=result.gate.passed)
    return result


def _run(
    cfg: EdgeRecConfig, run: RunDirectory, *, data_path: str | None, data_format: str | None, quiet: bool,
    titles: Mapping[str, str] | None = None,
) -> BuildResult:
    budget = TimeBudget(parse_duration(cfg.time_budget))
    with run.stage(DATA):
        cfg, data, sizing = stages.prepare_sized_data(cfg, path=data_path, data_format=data_format)
    run.record_config(config_to_dict(cfg))
    budget.weigh_teacher(cfg.teacher.members)
    for choice in sizing:
        log.info("sized from the log: %s = %s (%s)", choice.key, choice.value, choice.reason)
    log.info("data: %s", data.summary())
    if data.log is not None and not Path(data.source).is_file():
        # a generated log is kept beside the run, so `edge-rec benchmark --eval-data` can use it
        write_interactions_csv(data.log, run.path / DATA / "interactions.csv")
    state = BuildState(cfg, run, data, sizing, budget, StageRecorder(run, data, cfg), quiet, titles)
    for step in WORKFLOW:
        if step.enabled(cfg):
            step.run(state)
    return _report(state)


def _report(s: BuildState) -> BuildResult:
    """Compare the stages, judge the gate, write report.json / report.md / chart.png."""
    comparisons = s.rec.comparisons(s.student.name)
    ndcg = {name: record.metrics["ndcg@10"] for name, record in s.rec.records.items()}
    gate = evaluate_gate(ndcg, comparisons, s.cfg.gate.max_ndcg_drop, reference=s.student.name)
    for warning in gate.warnings:
        log.warning("gate: %s", warning)
    bundle_dir = s.exported.bundle_dir
    report = build_report(
        dataset=s.data.summary(),
        stages=s.rec.records,
        parity=dataclasses.asdict(s.exported.parity),
        bundle={"path": str(bundle_dir),
                "size_bytes": sum(p.stat().st_size for p in bundle_dir.iterdir() if p.is_file())},
        gate=gate,
        comparisons=comparisons,
        extra={
            "timings_s": dict(s.run.timings),
            "seed": s.seed,
            "compression": s.compression,
            "sizing": {
                "summary": sizing_summary(s.sizing),
                "choices": [dataclasses.asdict(choice) for choice in s.sizing],
            },
            "time_budget_s": s.budget.seconds,
            "shipped_student": {"stage": s.student.name, "reason": s.shipped.reason},
        },
    )
    paths = write_report(report, s.run.path)
    return BuildResult(s.run.path, bundle_dir, report, paths, gate)
