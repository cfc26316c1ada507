"""Benchmark results as people and machines read them: a side-by-side text table, Markdown, JSON.

Every function takes the list of per-target result dicts produced by ``edge-rec benchmark`` (the
child's measurement plus sizes and the profile check); a failed target is ``{"target", "error"}``.
"""

from __future__ import annotations

import json
import platform
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from device_runtime.atomic_file import write_text_atomic
from device_runtime.benchmarking.device_profile import BUDGETS

SCHEMA = "edge-rec-benchmark/1"
KIB = 1024.0
TOP_OPS = 6

Row = tuple[str, Callable[[dict[str, Any]], str]]


def _num(value: Any, digits: int = 1) -> str:
    if value is None:
        return "-"
    if isinstance(value, float) and abs(value) >= 1000:
        return f"{value:,.0f}"
    return f"{value:.{digits}f}" if isinstance(value, float) else str(value)


def _get(*keys: str, digits: int = 1, scale: float = 1.0) -> Callable[[dict[str, Any]], str]:
    def read(result: dict[str, Any]) -> str:
        value: Any = result
        for key in keys:
            value = value.get(key) if isinstance(value, dict) else None
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            value = float(value) / scale
        return _num(value, digits)

    return read


def _ops(result: dict[str, Any]) -> str:
    ops = result.get("ops") or {}
    return f"{sum(ops.values())} ({len(ops)} kinds)" if ops else "-"


def _op_histogram(result: dict[str, Any]) -> str:
    ops = result.get("ops") or {}
    shown = ", ".join(f"{name} {count}" for name, count in list(ops.items())[:TOP_OPS])
    return shown + (", ..." if len(ops) > TOP_OPS else "")


def _batch(result: dict[str, Any]) -> str:
    batch = result.get("batch")
    if not batch:
        return "no batch signature"
    if batch.get("error"):
        return "failed"
    return f"{_num(batch['throughput_rps'], 0)} (batch {batch['size']})"


def _budget(key: str) -> Callable[[dict[str, Any]], str]:
    def read(result: dict[str, Any]) -> str:
        entry = ((result.get("profile") or {}).get("results") or {}).get(key)
        if not entry:
            return "-"
        status = entry["status"].upper()
        if entry["value"] is None:
            return status
        relation = "<=" if BUDGETS[key][1] == "max" else ">="
        return f"{status} {entry['value']:.3g} {relation} {entry['limit']:g} {entry['unit']}".rstrip()

    return read


def _verdict(result: dict[str, Any]) -> str:
    profile = result.get("profile")
    if not profile:
        return "-"
    return f"{'PASS' if profile['passed'] else 'FAIL'} ({profile['name']})"


ROWS: list[Row] = [
    ("kind", lambda r: str(r.get("kind", "-"))),
    ("backend", lambda r: str(r.get("backend", "-"))),
    ("model size (KiB)", _get("size_bytes", scale=KIB)),
    ("gzip size (KiB)", _get("gzip_bytes", scale=KIB)),
    ("process start (ms)", _get("startup_ms")),
    ("import (ms)", _get("import_ms")),
    ("load (ms)", _get("load_ms")),
    ("first inference (ms)", _get("first_inference_ms", digits=2)),
    ("cold start total (ms)", _get("cold_start_ms")),
    ("latency p50 (us)", _get("latency_us", "p50")),
    ("latency p90 (us)", _get("latency_us", "p90")),
    ("latency p99 (us)", _get("latency_us", "p99")),
    ("latency max (us)", _get("latency_us", "max")),
    ("latency mean±std (us)", lambda r: (f"{_get('latency_us', 'mean')(r)} ± {_get('latency_us', 'std')(r)}"
                                         if r.get("latency_us") else "-")),
    ("raw invoke p50 (us)", _get("raw_invoke_us", "p50")),
    ("raw invoke p99 (us)", _get("raw_invoke_us", "p99")),
    ("latency / raw p50", _get("overhead_p50", digits=2)),
    ("throughput (req/s)", lambda r: (f"{_get('throughput_rps', digits=0)(r)} "
                                      f"({(r.get('settings') or {}).get('threads', '?')} thr)"
                                      if r.get("throughput_rps") else "-")),
    ("batch throughput (items/s)", _batch),
    ("RSS after load (MiB)", _get("rss_after_load_mb")),
    ("peak RSS, serving (MiB)", _get("peak_rss_mb")),
    ("peak RSS, whole run (MiB)", _get("peak_rss_total_mb")),
    ("HR@10", _get("metrics", "hr@10", digits=4)),
    ("NDCG@10", _get("metrics", "ndcg@10", digits=4)),
    ("MRR", _get("metrics", "mrr", digits=4)),
    ("coverage@10", _get("metrics", "coverage@10", digits=4)),
    ("ops (kinds)", _ops),
    *[(f"budget {key}", _budget(key)) for key in BUDGETS],
    ("profile", _verdict),
]


def target_labels(results: Sequence[dict[str, Any]]) -> list[str]:
    """Short column names: the file or folder name, with its parent when names repeat."""
    paths = [Path(str(r.get("target", "?"))) for r in results]
    names = [p.name for p in paths]
    return [f"{p.parent.name}/{p.name}" if names.count(p.name) > 1 else p.name for p in paths]


def _cells(results: Sequence[dict[str, Any]]) -> list[list[str]]:
    rows = []
    for label, read in ROWS:
        cells = [("error" if label == "kind" else "") if r.get("error") else read(r) for r in results]
        rows.append([label, *cells])
    return rows


def _notes(results: Sequence[dict[str, Any]]) -> list[str]:
    notes = []
    for label, result in zip(target_labels(results), results):
        if result.get("error"):
            notes.append(f"{label}: ERROR {result['error']}")
            continue
        if result.get("ops"):
            notes.append(f"{label} ops: {_op_histogram(result)}")
        if (result.get("metrics") or {}).get("error"):
            notes.append(f"{label}: no metrics: {result['metrics']['error']}")
        if (result.get("batch") or {}).get("error"):
            notes.append(f"{label}: batch signature failed: {result['batch']['error']}")
    return notes


def format_table(results: Sequence[dict[str, Any]]) -> str:
    """A fixed-width text table, one column per target, followed by error notes."""
    header = ["", *target_labels(results)]
    rows = [header, *_cells(results)]
    widths = [max(len(row[i]) for row in rows) for i in range(len(header))]
    lines = ["  ".join(cell.ljust(widths[i]) if i == 0 else cell.rjust(widths[i])
                       for i, cell in enumerate(row)).rstrip() for row in rows]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines + _notes(results)) + "\n"


def format_markdown(results: Sequence[dict[str, Any]], *, title: str = "Device benchmark") -> str:
    """A Markdown document: settings, the side-by-side table, and notes."""
    header = ["", *target_labels(results)]
    lines = [f"# {title}", ""]
    settings = next((r.get("settings") for r in results if r.get("settings")), None)
    if settings:
        lines += [f"Settings: {settings['runs']} runs after {settings['warmup']} warm-up calls, "
                  f"{settings['threads']} throughput thread(s), {settings['interpreter_threads']} "
                  f"interpreter thread(s), backend `{settings['backend']}`; host `{platform.machine()}` "
                  f"Python {platform.python_version()}. Every target ran in a fresh process.", ""]
    lines.append("| " + " | ".join(header) + " |")
    lines.append("|" + "|".join(["---"] + ["---:"] * (len(header) - 1)) + "|")
    for row in _cells(results):
        lines.append("| " + " | ".join(cell.replace("|", "\\|") for cell in row) + " |")
    notes = _notes(results)
    if notes:
        lines += ["", *[f"- {note}" for note in notes]]
    lines += ["", *[f"- {note}" for note in _definitions(results)]]
    return "\n".join(lines) + "\n"


def _definitions(results: Sequence[dict[str, Any]]) -> list[str]:
    """What the latency, raw-invoke and memory rows measure, as the children reported it."""
    measured = [r for r in results if not r.get("error")]
    calls = sorted({str(r["latency_call"]) for r in measured if r.get("latency_call")})
    raw = next((str(r["raw_invoke_call"]) for r in measured if r.get("raw_invoke_call")), None)
    moment = next((str(r["peak_rss_moment"]) for r in measured if r.get("peak_rss_moment")), None)
    source = next((str(r["peak_rss_source"]) for r in measured if r.get("peak_rss_source")), None)
    definitions = []
    if calls:
        definitions.append("latency: " + "; ".join(f"`{c}`" for c in calls))
    if raw:
        definitions.append(f"raw invoke: {raw}")
    if moment:
        definitions.append(f"peak RSS, serving: {moment} (`{source}`); whole run: the same mark at "
                           "the end of the child process")
    return definitions


def benchmark_document(results: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """The JSON document: ``{"schema", "host", "targets": [one object per target]}``."""
    return {
        "schema": SCHEMA,
        "host": {"machine": platform.machine(), "system": platform.system(),
                 "python": platform.python_version()},
        "targets": list(results),
    }


def write_json(path: str | Path, results: Sequence[dict[str, Any]]) -> Path:
    """Write :func:`benchmark_document` to ``path`` atomically (2-space indent)."""
    return write_text_atomic(path, json.dumps(benchmark_document(results), indent=2) + "\n")


def write_markdown(path: str | Path, results: Sequence[dict[str, Any]], *,
                   title: str = "Device benchmark") -> Path:
    """Write :func:`format_markdown` to ``path`` atomically."""
    return write_text_atomic(path, format_markdown(results, title=title))
