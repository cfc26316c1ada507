"""Device profiles: how many threads a device gives the recommender, and the budgets it must meet.

A profile is a TOML file::

    name = "smart-speaker"
    description = "..."
    threads = 1
    [budgets]
    latency_p99_ms = 30.0      # p99 of Recommender.recommend(), milliseconds
    peak_rss_mb = 80.0         # peak resident set size of the serving process, MiB
    model_size_mb = 8.0        # size of the .tflite model file, MiB
    min_ndcg_at_10 = 0.02      # NDCG@10 on the --eval-data test split

Every budget is optional. Two profiles ship with the package (``smart-speaker`` and ``tv``, in
``device_runtime/benchmarking/profiles/``, where the comments say where their numbers come from); any other
path to a ``.toml`` file is loaded as a user profile. :func:`check_budgets` compares one benchmark
result with a profile: every budget is ``pass``, ``fail`` or ``skipped`` (value not measured, e.g.
NDCG without ``--eval-data``), and the profile passes when no budget fails.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

from device_runtime.toml_reader import TOMLDecodeError, loads_toml

BUILTIN_PROFILES = ("smart-speaker", "tv")
MIB = 1024 * 1024

# budget key -> (unit, "max" or "min", human description)
BUDGETS: dict[str, tuple[str, str, str]] = {
    "latency_p99_ms": ("ms", "max", "recommend() latency p99"),
    "peak_rss_mb": ("MiB", "max", "peak RSS"),
    "model_size_mb": ("MiB", "max", "model file size"),
    "min_ndcg_at_10": ("", "min", "NDCG@10"),
}
TOP_LEVEL_KEYS = ("name", "description", "threads", "budgets")


class ProfileError(ValueError):
    """A device profile is missing or invalid; the message names the file and the field."""


@dataclass(frozen=True)
class DeviceProfile:
    """A device class: a name, the worker threads it grants, and budgets (``None`` = not checked)."""

    name: str
    description: str
    threads: int
    source: str
    latency_p99_ms: float | None = None
    peak_rss_mb: float | None = None
    model_size_mb: float | None = None
    min_ndcg_at_10: float | None = None

    def budgets(self) -> dict[str, float]:
        """The budgets this profile sets, keyed as in the TOML ``[budgets]`` table."""
        values = {key: getattr(self, key) for key in BUDGETS}
        return {key: value for key, value in values.items() if value is not None}


def load_profile(spec: str | Path) -> DeviceProfile:
    """Load a built-in profile by name (``smart-speaker``, ``tv``) or a user profile from a TOML path.

    Raises :class:`ProfileError` naming the file and field for an unknown name, a missing or
    unparsable file, an unknown key, a wrong type or a non-positive value.
    """
    text_spec = str(spec)
    if text_spec in BUILTIN_PROFILES:
        resource = resources.files("device_runtime.benchmarking") / "profiles" / f"{text_spec}.toml"
        return parse_profile(resource.read_text(encoding="utf-8"), source=f"built-in:{text_spec}")
    path = Path(text_spec)
    if path.suffix != ".toml":
        raise ProfileError(
            f"unknown profile {text_spec!r}: use one of {', '.join(BUILTIN_PROFILES)} "
            "or the path of a .toml profile file"
        )
    if not path.is_file():
        raise ProfileError(f"{path}: profile file not found (expected a .toml device profile)")
    return parse_profile(path.read_text(encoding="utf-8"), source=str(path))


def parse_profile(text: str, *, source: str) -> DeviceProfile:
    """Parse and validate profile TOML ``text``; ``source`` names the file in every error."""
    try:
        data = loads_toml(text)
    except TOMLDecodeError as exc:
        raise ProfileError(f"{source}: not valid TOML: {exc}") from exc
    unknown = sorted(set(data) - set(TOP_LEVEL_KEYS))
    if unknown:
        raise ProfileError(
            f"{source}: unknown key {unknown[0]!r}; expected only {', '.join(TOP_LEVEL_KEYS)}"
        )
    name = data.get("name", Path(source).stem)
    if not isinstance(name, str) or not name:
        raise ProfileError(f"{source}: field 'name' must be a non-empty string")
    description = data.get("description", "")
    if not isinstance(description, str):
        raise ProfileError(f"{source}: field 'description' must be a string")
    threads = data.get("threads", 1)
    if isinstance(threads, bool) or not isinstance(threads, int) or threads < 1:
        raise ProfileError(f"{source}: field 'threads' must be an integer >= 1, got {threads!r}")
    budgets = data.get("budgets", {})
    if not isinstance(budgets, dict):
        raise ProfileError(f"{source}: [budgets] must be a table of numbers")
    values: dict[str, float] = {}
    for key, value in budgets.items():
        if key not in BUDGETS:
            raise ProfileError(
                f"{source}: unknown field 'budgets.{key}'; expected one of {', '.join(BUDGETS)}"
            )
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
            raise ProfileError(f"{source}: field 'budgets.{key}' must be a number, got {value!r}")
        if value < 0 or (value == 0 and BUDGETS[key][1] == "max"):
            raise ProfileError(f"{source}: field 'budgets.{key}' must be positive, got {value!r}")
        if key == "min_ndcg_at_10" and value > 1:
            raise ProfileError(f"{source}: field 'budgets.{key}' is an NDCG and must be <= 1, got {value!r}")
        values[key] = float(value)
    return DeviceProfile(name=name, description=description, threads=threads, source=source, **values)


def budget_values(result: dict[str, Any]) -> dict[str, float | None]:
    """The measured value of every budget in one benchmark result (``None`` when not measured)."""
    latency = result.get("latency_us") or {}
    metrics = result.get("metrics") or {}
    size = result.get("size_bytes")
    return {
        "latency_p99_ms": latency["p99"] / 1000.0 if "p99" in latency else None,
        "peak_rss_mb": result.get("peak_rss_mb"),
        "model_size_mb": size / MIB if size is not None else None,
        "min_ndcg_at_10": metrics.get("ndcg@10"),
    }


def check_budgets(profile: DeviceProfile, result: dict[str, Any]) -> dict[str, Any]:
    """Compare ``result`` (one target's benchmark dict) with ``profile``'s budgets.

    Returns ``{"name", "source", "threads", "budgets", "results", "passed"}`` where ``results``
    maps each budget to ``{"limit", "value", "unit", "status"}`` with status ``pass``/``fail``/
    ``skipped``; ``passed`` is true when no budget has status ``fail``.
    """
    measured = budget_values(result)
    results: dict[str, dict[str, Any]] = {}
    for key, limit in profile.budgets().items():
        unit, direction, _ = BUDGETS[key]
        value = measured[key]
        if value is None:
            status = "skipped"
        elif direction == "max":
            status = "pass" if value <= limit else "fail"
        else:
            status = "pass" if value >= limit else "fail"
        results[key] = {"limit": limit, "value": value, "unit": unit, "status": status}
    return {
        "name": profile.name,
        "source": profile.source,
        "threads": profile.threads,
        "budgets": profile.budgets(),
        "results": results,
        "passed": all(entry["status"] != "fail" for entry in results.values()),
    }
