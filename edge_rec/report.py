"""The build report: ``report.json`` (schema 1), ``report.md`` and, with matplotlib, ``chart.png``.

The JSON keeps this shape (fields may be added, never removed)::

    {"schema": 1, "dataset": {"users", "items", "interactions", "test_users", "validation_users"},
     "stages": {"<stage>": {"params", "size_bytes", "gzip_bytes", "sparsity", "seconds",
                            "metrics": {"hr@10", "ndcg@10", "mrr", "coverage@10"}}},
     "parity": {"top10_overlap"}, "bundle": {"path", "size_bytes"}, "gate": {"passed"}}
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

from device_runtime.atomic_file import write_text_atomic
from edge_rec.paired_bootstrap import PairedRatio
from edge_rec.passes import POPULARITY, PRUNED, TEACHER
from edge_rec.passes.registry import report_rows
from edge_rec.quality_gate import GateResult

REPORT_SCHEMA = 1
log = logging.getLogger(__name__)

@dataclass(frozen=True)
class StageRecord:
    """What one stage produced: size, sparsity, ranking quality on the test split, time spent."""

    params: int | None
    size_bytes: int | None
    gzip_bytes: int | None
    sparsity: float | None
    metrics: Mapping[str, float]
    seconds: float | None = None
    artifact: str | None = None
    extra: Mapping[str, Any] = field(default_factory=dict)


class ReportError(ValueError):
    """A ``report.json`` that is not a build report this version reads; names the file and field."""


@dataclass(frozen=True)
class StageResult(StageRecord):
    """One stage of a report as read back: its :class:`StageRecord` and its ``name``; the
    stage's extra keys (``epochs_run``, ``budget_note``, ``sparsity_choice``, ...) are in ``extra``."""

    name: str = ""

    @property
    def ndcg(self) -> float:
        """The stage's test NDCG@10."""
        return float(self.metrics["ndcg@10"])

    def get(self, key: str, default: Any = None) -> Any:
        """An extra key of the stage (None, or ``default``, when absent)."""
        return self.extra.get(key, default)


#: The sections of ``report.json`` besides the per-stage ones, in the order they are written.
_SECTIONS = ("timings_s", "seed", "config", "config_provenance", "sizing", "time_budget_s")


@dataclass(frozen=True)
class BuildReport:
    """``report.json``, typed: the one writer (:meth:`to_dict`, via :func:`build_report`) and the
    one reader (:meth:`load`) that the CLI, the benchmarks and the tests go through.

    ``sections`` holds the top-level entries passes add (``shipped_student``, ``compression``,
    and any registered pass's own); readers of an older report get empty defaults.
    """

    dataset: Mapping[str, Any]
    stages: Mapping[str, StageResult]
    parity: Mapping[str, Any]
    bundle: Mapping[str, Any]
    gate: Mapping[str, Any]
    comparisons: tuple[Mapping[str, Any], ...] = ()
    timings_s: Mapping[str, float] = field(default_factory=dict)
    seed: int | None = None
    config: Mapping[str, Any] = field(default_factory=dict)
    config_provenance: Mapping[str, str] = field(default_factory=dict)
    sizing: Mapping[str, Any] = field(default_factory=dict)
    time_budget_s: float | None = None
    sections: Mapping[str, Any] = field(default_factory=dict)
    schema: int = REPORT_SCHEMA

    def to_dict(self) -> dict[str, Any]:
        """The JSON-ready report (the documented shape; stages flatten their extra keys)."""
        out: dict[str, Any] = {
            "schema": self.schema,
            "dataset": dict(self.dataset),
            "stages": {name: _stage_dict(stage) for name, stage in self.stages.items()},
            "parity": dict(self.parity),
            "bundle": dict(self.bundle),
            "gate": dict(self.gate),
            "comparisons": [dict(c) for c in self.comparisons],
        }
        for name in _SECTIONS[:4]:
            out[name] = getattr(self, name)
        out.update(self.sections)
        for name in _SECTIONS[4:]:
            out[name] = getattr(self, name)
        return out

    @classmethod
    def from_dict(cls, data: Any, *, source: str = "report.json") -> BuildReport:
        """Read a parsed ``report.json``; :class:`ReportError` naming ``source`` and the field for
        another schema or a missing section."""
        if not isinstance(data, dict):
            raise ReportError(f"{source}: expected a JSON object, got {type(data).__name__}")
        if data.get("schema") != REPORT_SCHEMA:
            raise ReportError(f"{source}: report schema {data.get('schema')!r}, this version reads {REPORT_SCHEMA}")
        missing = [key for key in ("dataset", "stages", "parity", "bundle", "gate") if key not in data]
        if missing:
            raise ReportError(f"{source}: missing section(s) {', '.join(missing)}; not a build report")
        record_keys = {f.name for f in fields(StageRecord)} - {"extra"}
        stages = {}
        for name, stage in data["stages"].items():
            if not isinstance(stage, dict) or "metrics" not in stage:
                raise ReportError(f"{source}: stages.{name} has no metrics")
            stages[name] = StageResult(
                name=name, **{key: stage.get(key) for key in record_keys},
                extra={key: value for key, value in stage.items() if key not in record_keys})
        known = {"schema", "dataset", "stages", "parity", "bundle", "gate", "comparisons", *_SECTIONS}
        return cls(
            dataset=data["dataset"], stages=stages, parity=data["parity"], bundle=data["bundle"], gate=data["gate"],
            comparisons=tuple(data.get("comparisons", ())),
            **{name: data[name] for name in _SECTIONS if name in data},
            sections={key: value for key, value in data.items() if key not in known},
        )

    @classmethod
    def load(cls, path: str | Path) -> BuildReport:
        """Read ``RUN_DIR/report.json`` (or the file ``path``)."""
        path = Path(path)
        path = path / "report.json" if path.is_dir() else path
        try:
            return cls.from_dict(json.loads(path.read_text(encoding="utf-8")), source=str(path))
        except json.JSONDecodeError as exc:
            raise ReportError(f"{path}: not valid JSON ({exc})") from None

    def comparison(self, numerator: str, denominator: str) -> Mapping[str, Any] | None:
        """The paired comparison of two stages (``ratio``, ``low``, ``high``, ...), None when absent."""
        for entry in self.comparisons:
            if (entry["numerator"], entry["denominator"]) == (numerator, denominator):
                return entry
        return None

    @property
    def shipped_student(self) -> str | None:
        """The name of the student the build compressed and shipped (None for older reports)."""
        return (self.sections.get("shipped_student") or {}).get("stage")

    @property
    def budget_notes(self) -> list[str]:
        """Every stage's note that the time budget cut it short while it still improved."""
        return [stage.get("budget_note") for stage in self.stages.values() if stage.get("budget_note")]


def build_report(
    *,
    dataset: Mapping[str, Any],
    stages: Mapping[str, StageRecord],
    parity: Mapping[str, Any],
    bundle: Mapping[str, Any],
    gate: GateResult,
    comparisons: Mapping[tuple[str, str], PairedRatio] | None = None,
    **sections: Any,
) -> BuildReport:
    """The report of a build: the stages in workflow order (:func:`report_rows`), the gate, the
    comparisons, and ``sections`` (the keyword fields of :class:`BuildReport`, plus pass-added
    entries, which go to ``BuildReport.sections``)."""
    ordered = {name: stages[name] for name in report_rows() if name in stages}
    ordered.update({k: v for k, v in stages.items() if k not in ordered})
    typed = {name: sections.pop(name) for name in _SECTIONS if name in sections}
    return BuildReport(
        dataset=dict(dataset),
        stages={name: StageResult(name=name, **{f.name: getattr(rec, f.name) for f in fields(StageRecord)})
                for name, rec in ordered.items()},
        parity=dict(parity),
        bundle=dict(bundle),
        gate=asdict(gate),
        comparisons=tuple(asdict(c) for c in (comparisons or {}).values()),
        sections=sections,
        **typed,
    )


def _stage_dict(rec: StageResult) -> dict[str, Any]:
    out = {f.name: getattr(rec, f.name) for f in fields(StageRecord)}
    out["metrics"] = dict(rec.metrics)
    extra = out.pop("extra")
    out.update(extra)
    return out


def _fmt(value: Any, spec: str) -> str:
    if value is None:
        return "—"
    return format(value, spec)


def _fmt_bytes(n: int | None) -> str:
    if n is None:
        return "—"
    if n >= 1 << 20:
        return f"{n / (1 << 20):.2f} MiB"
    return f"{n / 1024:.1f} KiB"


def report_markdown(report: Mapping[str, Any]) -> str:
    """Render the report as a Markdown page: dataset, stage table with what each row is, the
    paired comparisons with their intervals, parity, gate and bundle."""
    ds = report["dataset"]
    lines = [
        "# edge-rec build report",
        "",
        f"Dataset: {ds.get('source', '')} — {ds['users']} users, {ds['items']} items, "
        f"{ds['interactions']} interactions, {ds['test_users']} test users "
        "(leave-last-out, full ranking, seen items excluded)"
        + (f"; {ds['validation_users']} of them validate on their second-to-last item, the others train on it."
           if ds.get("validation_users", ds["test_users"]) < ds["test_users"] else ".")
        + (f" Each epoch scores a fixed sample of {ds['scored_validation_users']:,} validation users."
           if ds.get("scored_validation_users", ds.get("validation_users")) != ds.get("validation_users") else ""),
        "",
    ]
    if "raw_interactions" in ds:
        kept = [
            f"{ds[key]:,} of {ds['raw_' + key]:,} {key} ({ds[key] / max(1, ds['raw_' + key]):.0%})"
            for key in ("users", "items", "interactions")
        ]
        lines += [
            "The minimum-count filters ([data] min_user_interactions, min_item_interactions) kept "
            + ", ".join(kept) + ".",
            "",
        ]
    shipped = report.get("shipped_student")
    if shipped:
        lines += [f"Compressed and shipped: `{shipped['stage']}` ({shipped['reason']}).", ""]
    members = report["stages"].get(TEACHER, {}).get("members")
    if members:
        each = "; ".join(
            f"seed {m['seed']}: {m['best_val_ndcg@10']:.4f} (best epoch {m['best_epoch']} of {m['epochs_run']}, "
            f"{m['stopped_by']}, {m['seconds']:.0f} s{'' if m['averaged'] else ', left out'})" for m in members)
        kept = sum(m["averaged"] for m in members)
        what = "the best one alone validates better than any average" if kept == 1 else f"the average of {kept}"
        lines += [
            f"Teacher: {len(members)} teachers trained, {what} is kept; validation NDCG@10 {each}; "
            f"kept: {report['stages'][TEACHER]['averaged_val_ndcg@10']:.4f}.",
            "",
        ]
    notes = [st["budget_note"] for st in report["stages"].values() if st.get("budget_note")]
    if notes:
        lines += ["Time budget: " + "; ".join(notes) + ".", ""]
    choice = report["stages"].get(PRUNED, {}).get("sparsity_choice")
    if choice:
        tried = ", ".join(f"{t['sparsity']:.2f}: {t['val_ndcg@10']:.4f}" for t in choice["levels_tried"])
        lines += [
            f"Pruning kept sparsity {choice['chosen_sparsity']:.2f}, the sparsest level within "
            f"{choice['max_loss']:.0%} of the float student's validation NDCG@10 "
            f"({choice['reference_val_ndcg@10']:.4f}); levels tried: {tried}.",
            "",
        ]
    sizing = report.get("sizing")
    if sizing:
        lines += ["Sizes chosen from the log: " + sizing.get("summary", ""), ""]
    lines += [
        "| stage | what it is | params | size | gzip | sparsity | HR@10 | NDCG@10 | MRR | "
        "coverage@10 | pop. rank@10 | diversity@10 | time (s) |",
        "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    descriptions = report_rows()
    for name, st in report["stages"].items():
        m = st["metrics"]
        lines.append(
            f"| {name} | {descriptions.get(name, '')} | {_fmt(st['params'], ',')} | "
            f"{_fmt_bytes(st['size_bytes'])} | {_fmt_bytes(st['gzip_bytes'])} | "
            f"{_fmt(st['sparsity'], '.2f')} | {m['hr@10']:.4f} | {m['ndcg@10']:.4f} | "
            f"{m['mrr']:.4f} | {m['coverage@10']:.3f} | {_fmt(m.get('popularity_rank@10'), '.0f')} | "
            f"{_fmt(m.get('diversity@10'), '.3f')} | {_fmt(st.get('seconds'), '.1f')} |"
        )
    lines += [
        "",
        "pop. rank@10: mean training-popularity rank of the top-10 items (1 = most popular; low "
        "means the model echoes the head of the catalog). diversity@10: mean 1 - cosine between "
        "the top-10 items, items described by who consumed them.",
    ]
    comparisons = report.get("comparisons") or []
    if comparisons:
        lines += [
            "",
            "## Paired comparisons (same test users, NDCG@10)",
            "",
            "| A vs B | ratio A/B | 95 % interval | verdict |",
            "|---|---:|---|---|",
        ]
        for c in comparisons:
            lines.append(
                f"| {c['numerator']} vs {c['denominator']} | {c['ratio']:.3f} | "
                f"[{c['low']:.3f}, {c['high']:.3f}] | {_verdict(c)} |"
            )
        lines += [
            "",
            f"Intervals: paired bootstrap over users ({comparisons[0]['resamples']} resamples). "
            "A ratio whose interval contains 1 is not a difference.",
        ]
    parity = report["parity"]
    gate = report["gate"]
    lines += [
        "",
        f"Parity (the Keras {(report.get('int8_fallback') or {}).get('from', 'QAT')} student vs int8 TFLite, "
        f"test split): top-10 overlap "
        f"{parity['top10_overlap']:.3f}.",
        "",
        f"Gate: {gate['reference']} (float) NDCG@10 {gate['reference_ndcg']:.4f} -> int8 "
        f"{gate['int8_ndcg']:.4f}, relative drop {gate['relative_drop']:+.1%} (allowed "
        f"{gate['max_ndcg_drop']:.0%}): **{'PASSED' if gate['passed'] else 'FAILED'}**.",
    ]
    for warning in gate.get("warnings", []):
        lines.append(f"- Warning: {warning}.")
    lines += [
        "",
        f"Bundle: `{report['bundle']['path']}` ({_fmt_bytes(report['bundle']['size_bytes'])}).",
        "",
    ]
    fallback = report.get("int8_fallback")
    if fallback:
        lines += [f"int8: the QAT student failed parity ({fallback['reason']}); the bundle is the "
                  f"`{fallback['from']}` student quantized after training.", ""]
    if "cold_items" in report:
        lines += [cold_items_line(report["cold_items"]), ""]
    return "\n".join(lines)


def cold_items_line(section: Mapping[str, Any]) -> str:
    """One line of what item features bought on items unseen at training (``cold_items``)."""
    if "skipped" in section:
        return f"Cold items: not measured ({section['skipped']})."
    protocol = section["protocol"]

    def ndcg(ranker: str, part: str) -> str:
        return f"{section[ranker][part]['ndcg@10']:.4f}"

    ratios = {(r["a"], r["b"], r["part"]): r for r in section.get("ratios", [])}
    versus = ratios.get(("with_features", "content_baseline", "cold"))
    interval = f" ({versus['ratio']:.2f}x the content baseline, [{versus['low']:.2f}, {versus['high']:.2f}])" \
        if versus else ""
    return (f"Cold items (the newest {protocol['cold_share']:.0%} of the log's time held out; "
            f"{protocol['cold_items_with_features']:,} items unseen at training, "
            f"{section['with_features']['cold']['events']:,} cold and {section['with_features']['warm']['events']:,} "
            f"warm test events): features give cold-item NDCG@10 {ndcg('with_features', 'cold')}{interval}, "
            f"against {ndcg('without_features', 'cold')} without features and {ndcg('content_baseline', 'cold')} "
            f"for the content baseline; warm items {ndcg('with_features', 'warm')} with features, "
            f"{ndcg('without_features', 'warm')} without.")


_VERDICT_TEXT = {"better": "A better", "worse": "A worse", "same": "no significant difference"}


def _verdict(comparison: Mapping[str, Any]) -> str:
    return _VERDICT_TEXT[PairedRatio(**comparison).verdict]


def write_report(built: BuildReport, run_dir: Path) -> dict[str, Path]:
    """Write report.json, report.md and (when matplotlib is installed) chart.png into ``run_dir``."""
    run_dir = Path(run_dir)
    report = built.to_dict()
    paths = {
        "json": write_text_atomic(run_dir / "report.json", json.dumps(report, indent=2) + "\n"),
        "markdown": write_text_atomic(run_dir / "report.md", report_markdown(report)),
    }
    chart = write_chart(report, run_dir / "chart.png")
    if chart is not None:
        paths["chart"] = chart
    return paths


#: Marker per kind of artifact in the chart: Keras models are circles, TFLite files squares.
_CHART_MARKERS = {"keras": "o", "tflite": "s"}


def write_chart(report: Mapping[str, Any], path: Path) -> Path | None:
    """NDCG@10 against model size for every stage with a size; None when matplotlib is missing.

    One legend entry per stage (colour) and per kind (marker), no text on the points, the
    popularity baseline as a dashed line, and a y axis from 0 so gaps look as large as they are.
    """
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        log.info("matplotlib is not installed: no chart (pip install 'edge-rec[plot]')")
        return None
    points = [
        (name, st["size_bytes"], st["metrics"]["ndcg@10"])
        for name, st in report["stages"].items()
        if st["size_bytes"]
    ]
    fig, ax = plt.subplots(figsize=(9, 5.5))
    colours = plt.get_cmap("tab10")
    for i, (name, size, ndcg) in enumerate(points):
        kind = "tflite" if name.startswith("tflite") else "keras"
        ax.scatter(size / 1024, ndcg, marker=_CHART_MARKERS[kind], s=70, color=colours(i % 10),
                   edgecolors="black", linewidths=0.5, label=f"{name} ({ndcg:.4f})", zorder=3)
    top = max([ndcg for _, _, ndcg in points] + [0.0])
    popularity = report["stages"].get(POPULARITY)
    if popularity:
        value = popularity["metrics"]["ndcg@10"]
        ax.axhline(value, color="grey", linestyle="--", linewidth=1, label=f"popularity ({value:.4f})")
        top = max(top, value)
    ax.set_ylim(0, top * 1.15 if top > 0 else 1.0)
    ax.set_xscale("log")
    ax.set_xlabel("model file size (KiB, TFLite float32 for Keras stages; log scale)")
    ax.set_ylabel("NDCG@10 on the test split (axis from 0)")
    ax.set_title("Ranking quality against size: circles = Keras models, squares = TFLite files", fontsize=10)
    ax.grid(True, alpha=0.3)
    ax.legend(loc="center left", bbox_to_anchor=(1.01, 0.5), fontsize=8, frameon=False)
    fig.tight_layout()
    tmp = path.with_name(path.name + ".tmp.png")
    fig.savefig(tmp, dpi=110)
    plt.close(fig)
    tmp.replace(path)
    return path
