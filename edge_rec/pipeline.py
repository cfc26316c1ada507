"""``edge-rec build``: chain the stages, record what each produced, write bundle and report.

The pipeline only chains :mod:`edge_rec.stages` and records their artifacts in a
:class:`~edge_rec.run_directory.RunDirectory`; it holds no training or conversion logic.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from edge_rec import stages
from edge_rec.config import EdgeRecConfig, config_to_dict, parse_duration
from edge_rec.data import write_interactions_csv
from edge_rec.data.titles import titles_by_index
from edge_rec.export import export_bundle
from edge_rec.model_store import save_model_pair
from edge_rec.paired_bootstrap import PairedRatio, paired_ratio
from edge_rec.quality_gate import COMPARISONS, GateResult, evaluate_gate
from edge_rec.report import StageRecord, build_report, write_report
from edge_rec.run_directory import RunDirectory, terminate_as_interrupt
from edge_rec.sizing import sizing_summary
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


class _Recorder:
    """Collects a :class:`StageRecord` per stage, converting Keras stages to float32 for size."""

    def __init__(self, run: RunDirectory, data: stages.PreparedData, cfg: EdgeRecConfig) -> None:
        self.run, self.data, self.cfg = run, data, cfg
        self.records: dict[str, StageRecord] = {}
        self.ranked: dict[str, np.ndarray] = {}

    def popularity(self) -> None:
        """The most-popular baseline, the floor every model must clear."""
        self.ranked["popularity"] = stages.rank_popularity(self.data)
        self.records["popularity"] = StageRecord(
            params=0, size_bytes=None, gzip_bytes=None, sparsity=None,
            metrics=stages.ranking_metrics(self.ranked["popularity"], self.data),
        )

    def comparisons(self, shipped: str) -> dict[tuple[str, str], PairedRatio]:
        """Paired NDCG@10 ratios with bootstrap intervals for every comparison both of whose
        stages ran (:data:`~edge_rec.quality_gate.COMPARISONS`, int8 against the ``shipped``
        float student)."""
        out = {}
        for a, b in COMPARISONS:
            b = shipped if (a, b) == ("tflite_int8", "student") else b
            if a in self.ranked and b in self.ranked:
                out[(a, b)] = paired_ratio(
                    stages.per_user_ndcg(self.ranked[a], self.data),
                    stages.per_user_ndcg(self.ranked[b], self.data),
                    names=(a, b),
                    seed=self.cfg.seed,
                )
        return out

    def keras(self, model: stages.TrainedModel, *, sparsity: float | None = None, **extra: Any) -> bytes:
        """Evaluate, save and float32-convert a Keras stage; returns the float32 flatbuffer."""
        with self.run.stage(f"evaluate_{model.name}"):
            self.ranked[model.name] = stages.rank_keras(model.serving_model, self.data)
            metrics = stages.ranking_metrics(self.ranked[model.name], self.data)
            tflite = stages.convert(model, "float32", self.data, self.cfg.convert, seed=self.cfg.seed)
        path = self.run.write_tflite(f"{model.name}_float32", tflite)
        save_model_pair(
            self.run.model_dir(model.name), serving=model.serving_model, sequence=model.sequence_model
        )
        train = model.train
        self.records[model.name] = StageRecord(
            params=model.params,
            size_bytes=len(tflite),
            gzip_bytes=stages.gzip_size(tflite),
            sparsity=stages.overall_sparsity(model.serving_model) if sparsity is None else sparsity,
            metrics=metrics,
            seconds=round(model.seconds, 2),
            artifact=str(path),
            extra={
                "epochs_run": train.epochs_run if train else None,
                "best_epoch": train.best_epoch if train else None,
                "stopped_by": train.stopped_by if train else None,
                "best_val_ndcg@10": train.best_val_ndcg if train else None,
                **extra,
            },
        )
        log.info("stage %s: NDCG@10 %.4f, %d params", model.name, metrics["ndcg@10"], model.params)
        return tflite

    def tflite(self, name: str, tflite: bytes, *, params: int, sparsity: float, seconds: float) -> None:
        """Store a TFLite variant and evaluate it by running it in the interpreter."""
        path = self.run.write_tflite(name.removeprefix("tflite_"), tflite)
        with self.run.stage(f"evaluate_{name}"):
            self.ranked[name] = stages.rank_tflite(tflite, self.data)
            metrics = stages.ranking_metrics(self.ranked[name], self.data)
        self.records[name] = StageRecord(
            params=params,
            size_bytes=len(tflite),
            gzip_bytes=stages.gzip_size(tflite),
            sparsity=sparsity,
            metrics=metrics,
            seconds=round(seconds, 2),
            artifact=str(path),
        )
        log.info("stage %s: NDCG@10 %.4f, %d bytes", name, metrics["ndcg@10"], len(tflite))


def run_build(
    cfg: EdgeRecConfig,
    run_dir: str | Path,
    *,
    data_path: str | None = None,
    data_format: str | None = None,
    quiet: bool = False,
    titles: Mapping[str, str] | None = None,
) -> BuildResult:
    """Run every stage of the pipeline and write ``RUN_DIR/bundle`` and the report.

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
    seed = cfg.seed
    budget = TimeBudget(parse_duration(cfg.time_budget))
    with run.stage("data"):
        cfg, data, sizing = stages.prepare_sized_data(cfg, path=data_path, data_format=data_format)
    run.record_config(config_to_dict(cfg))
    for choice in sizing:
        log.info("sized from the log: %s = %s (%s)", choice.key, choice.value, choice.reason)
    log.info("data: %s", data.summary())
    if data.log is not None and not Path(data.source).is_file():
        # a generated log is kept beside the run, so `edge-rec benchmark --eval-data` can use it
        write_interactions_csv(data.log, run.path / "data" / "interactions.csv")
    rec = _Recorder(run, data, cfg)

    rec.popularity()

    with run.stage("teacher"):
        teacher = stages.train_teacher(
            data, cfg.teacher, seed=seed, quiet=quiet, softmax=cfg.softmax,
            time_limit=budget.allowance("teacher"),
        )
    rec.keras(teacher)

    with run.stage("student_baseline"):
        baseline = stages.train_student(
            data, None, cfg.student, cfg.distill, seed=seed, name="student_baseline", quiet=quiet,
            softmax=cfg.softmax, time_limit=budget.allowance("student_baseline"),
        )
    baseline_float32 = rec.keras(baseline)

    with run.stage("student"):
        student = stages.train_student(
            data, teacher, cfg.student, cfg.distill, seed=seed, name="student", quiet=quiet,
            softmax=cfg.softmax, time_limit=budget.allowance("student"),
        )
    student_float32 = rec.keras(student)
    shipped = stages.choose_student(student, baseline, cfg.distill)
    log.info("compressing %s: %s", shipped.model.name, shipped.reason)
    shipped_float32 = student_float32 if shipped.model is student else baseline_float32
    student = shipped.model  # from here on, "the student" is the one that ships

    compressed = student
    if cfg.prune.enabled:
        epoch_seconds = student.seconds / max(1, student.train.epochs_run if student.train else 1)
        epochs = budget.epochs_that_fit(budget.allowance("pruned"), epoch_seconds, cfg.prune.fit.epochs)
        prune_cfg = dataclasses.replace(cfg.prune, fit=dataclasses.replace(cfg.prune.fit, epochs=epochs))
        with run.stage("pruned"):
            compressed, per_layer = stages.prune(
                data, student, teacher, prune_cfg, cfg.student, shipped.distill, seed=seed, quiet=quiet
            )
        rec.keras(compressed, sparsity_per_layer=per_layer)

    if cfg.lowrank.enabled:
        with run.stage("lowrank"):
            lowrank = stages.low_rank(
                data, student, teacher, cfg.lowrank, shipped.distill, seed=seed, quiet=quiet
            )
        rec.keras(lowrank, rank=cfg.lowrank.rank)

    quantized = compressed
    if cfg.qat.enabled:
        with run.stage("qat"):
            quantized = stages.quantization_aware_training(
                data, compressed, teacher, cfg.qat, shipped.distill, seed=seed, quiet=quiet,
                time_limit=budget.allowance("qat"),
            )
        rec.keras(quantized, sparsity=stages.overall_sparsity(compressed.serving_model))

    # TFLite variants: float32/float16/dynamic of the shipped student, int8 of the QAT model.
    variants: dict[str, bytes] = {"float32": shipped_float32}
    for variant in cfg.convert.variants:
        source = quantized if variant == "int8" else student
        if variant not in variants:
            with run.stage(f"convert_{variant}"):
                variants[variant] = stages.convert(source, variant, data, cfg.convert, seed=seed)
        rec.tflite(
            f"tflite_{variant}",
            variants[variant],
            params=source.params,
            sparsity=rec.records[source.name].sparsity or 0.0,
            seconds=run.timings.get(f"convert_{variant}", 0.0),
        )
    int8 = variants["int8"]

    with run.stage("bundle"):
        exported = export_bundle(
            quantized.serving_model, data, run.path / "bundle", convert_cfg=cfg.convert, seed=seed,
            variant="int8", qat=cfg.qat.enabled, tflite=int8, metrics=rec.records["tflite_int8"].metrics,
            titles=None if titles is None else titles_by_index(
                data.dataset.vocab.ids, titles, data.dataset.vocab.titles),
        )
    parity, bundle_dir = exported.parity, exported.bundle_dir
    log.info("parity: top-10 overlap %.3f", parity.top10_overlap)

    # What pruning buys on the wire: int8 at sparsity 0 (post-training, the distilled student)
    # next to the int8 model of the pipeline (pruned + QAT).
    with run.stage("convert_int8_unpruned"):
        dense_int8 = stages.convert(student, "int8", data, cfg.convert, seed=seed)
    compression = {
        "int8_sparsity_0": {
            "sparsity": 0.0,
            "size_bytes": len(dense_int8),
            "gzip_bytes": stages.gzip_size(dense_int8),
        },
        f"int8_sparsity_{cfg.prune.target_sparsity if cfg.prune.enabled else 0.0:g}": {
            "sparsity": rec.records["tflite_int8"].sparsity or 0.0,
            "size_bytes": len(int8),
            "gzip_bytes": stages.gzip_size(int8),
        },
        "float32_sparsity_0": {
            "sparsity": 0.0,
            "size_bytes": rec.records[student.name].size_bytes,
            "gzip_bytes": rec.records[student.name].gzip_bytes,
        },
    }
    if "pruned" in rec.records:
        compression[f"float32_sparsity_{cfg.prune.target_sparsity:g}"] = {
            "sparsity": rec.records["pruned"].sparsity,
            "size_bytes": rec.records["pruned"].size_bytes,
            "gzip_bytes": rec.records["pruned"].gzip_bytes,
        }

    bundle_size = sum(p.stat().st_size for p in bundle_dir.iterdir() if p.is_file())

    comparisons = rec.comparisons(student.name)
    ndcg = {name: record.metrics["ndcg@10"] for name, record in rec.records.items()}
    gate = evaluate_gate(ndcg, comparisons, cfg.gate.max_ndcg_drop, reference=student.name)
    for warning in gate.warnings:
        log.warning("gate: %s", warning)
    report = build_report(
        dataset=data.summary(),
        stages=rec.records,
        parity=dataclasses.asdict(parity),
        bundle={"path": str(bundle_dir), "size_bytes": bundle_size},
        gate=gate,
        comparisons=comparisons,
        extra={
            "timings_s": dict(run.timings),
            "seed": seed,
            "compression": compression,
            "sizing": {
                "summary": sizing_summary(sizing),
                "choices": [dataclasses.asdict(choice) for choice in sizing],
            },
            "time_budget_s": budget.seconds,
            "shipped_student": {"stage": student.name, "reason": shipped.reason},
        },
    )
    paths = write_report(report, run.path)
    return BuildResult(run.path, bundle_dir, report, paths, gate)
