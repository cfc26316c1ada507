"""``edge-rec build``: the registered passes (:mod:`edge_rec.passes`) over one build context,
then the report.

The log is loaded and sized first; then each enabled pass runs in registry order within its
share of the time budget, records what it made in the
:class:`~edge_rec.passes.context.BuildContext`, and the report compares every recorded stage.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from edge_rec import passes, stages
from edge_rec.config import EdgeRecConfig, config_provenance, config_to_dict, parse_duration
from edge_rec.data import write_interactions_csv
from edge_rec.data.item_features import FEATURE_SPEC_FILE
from edge_rec.passes import DATA, TEACHER, BuildPass
from edge_rec.passes.context import BuildContext
from edge_rec.quality_gate import GateResult, evaluate_gate
from edge_rec.report import BuildReport, build_report, write_report
from edge_rec.run_directory import RunDirectory, terminate_as_interrupt
from edge_rec.sizing import sizing_summary
from edge_rec.stage_recorder import StageRecorder
from edge_rec.time_budget import TimeBudget

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class BuildResult:
    """What a build wrote: the run directory, the bundle, the report and the gate verdict."""

    run_dir: Path
    bundle_dir: Path
    report: BuildReport
    report_paths: dict[str, Path]
    gate: GateResult


def workflow(cfg: EdgeRecConfig) -> tuple[BuildPass, ...]:
    """The passes a build with ``cfg`` runs, in order: every registered pass it enables."""
    return tuple(step for step in passes.registered() if step.enabled(cfg))


def time_budget_for(cfg: EdgeRecConfig, steps: tuple[BuildPass, ...]) -> TimeBudget:
    """The budget of ``cfg.time_budget`` split among the budget shares of ``steps``."""
    return TimeBudget(
        parse_duration(cfg.time_budget),
        shares={step.name: step.budget_share for step in steps if step.budget_share > 0},
        same_as={step.name: step.budget_like for step in steps if step.budget_like},
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
    """Run every enabled pass (:func:`workflow`) and write ``RUN_DIR/bundle`` and the report.

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
    budget = time_budget_for(cfg, workflow(cfg))
    with run.stage(DATA):
        cfg, data, sizing = stages.prepare_sized_data(cfg, path=data_path, data_format=data_format)
    run.record_config(config_to_dict(cfg))
    if data.feature_spec is not None:  # a catalog patch tokenizes new items as training did
        data.feature_spec.save(run.path / FEATURE_SPEC_FILE)
    budget.weigh(TEACHER, cfg.teacher.members)
    for choice in sizing:
        log.info("sized from the log: %s = %s (%s)", choice.key, choice.value, choice.reason)
    log.info("data: %s", data.summary())
    if data.log is not None and not Path(data.source).is_file():
        # a generated log is kept beside the run, so `edge-rec benchmark --eval-data` can use it
        write_interactions_csv(data.log, run.path / DATA / "interactions.csv")
    ctx = BuildContext(cfg, run, data, sizing, budget, StageRecorder(run, data, cfg), quiet, titles)
    for step in workflow(cfg):
        step.run(ctx)
    return _report(ctx)


def _report(s: BuildContext) -> BuildResult:
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
        timings_s=dict(s.run.timings),
        seed=s.seed,
        config=config_to_dict(s.cfg),
        config_provenance={key: entry["layer"] for key, entry in config_provenance(s.cfg).items()
                           if entry["layer"] != "default"},
        sizing={"summary": sizing_summary(s.sizing), "choices": [dataclasses.asdict(c) for c in s.sizing]},
        time_budget_s=s.budget.seconds,
        **s.report_sections,
    )
    paths = write_report(report, s.run.path)
    return BuildResult(s.run.path, bundle_dir, report, paths, gate)
