"""Which commit produced a result file: every ``benchmarks/results/*.json`` carries ``commit`` and
``date``, its Markdown the same line, and ``SUMMARY.md`` says which files are stale."""

from __future__ import annotations

import json
import subprocess
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
RESULTS = REPO / "benchmarks" / "results"


def _git(*args: str) -> str:
    return subprocess.run(["git", *args], cwd=REPO, capture_output=True, text=True, check=False).stdout.strip()


#: What a result depends on: the product's code and the benchmark scripts (not the stamping itself).
CODE_PATHS = ("edge_rec", "converters", "device_runtime", "benchmarks/*.py", ":(exclude)benchmarks/stamp.py")


def current_stamp() -> dict[str, str]:
    """``{"commit": short SHA (``-dirty`` when the tree has changes), "date": now}``."""
    commit = _git("rev-parse", "--short", "HEAD") or "unknown"
    if _git("status", "--porcelain", "--untracked-files=no", "--", *CODE_PATHS):
        commit += "-dirty"
    return {"commit": commit, "date": time.strftime("%Y-%m-%d %H:%M")}


def stamp_result(name: str, stamp: dict[str, str] | None = None) -> None:
    """Add the stamp to ``RESULTS/name.json`` (a top-level ``commit`` and ``date``) and a first
    line to ``RESULTS/name.md`` when it has none."""
    stamp = stamp or current_stamp()
    path = RESULTS / f"{name}.json"
    if path.exists():
        data = json.loads(path.read_text())
        if isinstance(data, dict):
            data.update(stamp)
            path.write_text(json.dumps(data, indent=2) + "\n")
    md = RESULTS / f"{name}.md"
    if md.exists():
        text = md.read_text()
        line = f"_Produced by commit {stamp['commit']} on {stamp['date']} (`make bench`)._"
        lines = text.splitlines()
        if lines and lines[0].startswith("_Produced by commit"):
            lines = lines[2:] if len(lines) > 1 and not lines[1] else lines[1:]
        md.write_text("\n".join([line, "", *lines]) + "\n")


def staleness() -> list[dict[str, str]]:
    """Every result file's stamp and status: ``current`` (no commit since its stamp changed the code
    it measures: :data:`CODE_PATHS`), ``stale (N code commits since)``, or ``stale (unstamped)``."""
    rows = []
    for path in sorted(RESULTS.glob("*.json")):
        data = json.loads(path.read_text())
        commit = data.get("commit") if isinstance(data, dict) else None
        date = data.get("date", "") if isinstance(data, dict) else ""
        if not commit:
            status = "stale (unstamped)"
        else:
            behind = _git("rev-list", "--count", f"{commit.split('-')[0]}..HEAD", "--", *CODE_PATHS) or "?"
            if behind == "0" and not commit.endswith("-dirty"):
                status = "current"
            else:
                status = f"stale ({behind} code commits since{', dirty tree' if commit.endswith('-dirty') else ''})"
        rows.append({"file": path.name, "commit": commit or "—", "date": date or "—", "status": status})
    return rows


def staleness_markdown() -> str:
    """The table of :func:`staleness` for ``SUMMARY.md``."""
    lines = ["## Result files", "", "| file | commit | date | status |", "|---|---|---|---|"]
    lines += [f"| {r['file']} | {r['commit']} | {r['date']} | {r['status']} |" for r in staleness()]
    return "\n".join(lines) + "\n"
