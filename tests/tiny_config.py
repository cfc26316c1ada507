"""The one tiny build config of the tests: a few hundred synthetic users, one-epoch fits, small
models. Each test states only what it changes (:func:`tiny_config`)."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

#: Sizes that train in seconds on two cores; every key is a real config key.
TINY: dict[str, Any] = {
    "seed": 3,
    "data": {"source": "synthetic-tv", "synthetic_users": 160, "synthetic_items": 120, "history_length": 12},
    "teacher": {"hidden": 16, "blocks": 1, "heads": 2, "fit": {"epochs": 1, "batch_size": 32}},
    "student": {"embedding_dim": 8, "hidden": [8], "fit": {"epochs": 1, "batch_size": 32}},
    "prune": {"min_weights": 0, "fit": {"epochs": 1, "batch_size": 32}},
    "qat": {"fit": {"epochs": 1, "batch_size": 32}},
    "convert": {"variants": ["float32", "int8"], "top_k": 30, "representative_samples": 16,
                "parity_threshold": 0.6},
}


def _merged(base: Mapping[str, Any], changes: Mapping[str, Any]) -> dict[str, Any]:
    out = dict(base)
    for key, value in changes.items():
        out[key] = _merged(out[key], value) if isinstance(value, Mapping) and isinstance(out.get(key), Mapping) else value
    return out


def _toml_value(value: Any) -> str:
    if isinstance(value, Mapping):
        return "{ " + ", ".join(f"{k} = {_toml_value(v)}" for k, v in value.items()) + " }"
    return json.dumps(value)  # numbers, booleans, strings and lists read the same in TOML


def tiny_config(**changes: Any) -> str:
    """The tiny config with ``changes`` merged in (nested tables merge key by key), as TOML."""
    config = _merged(TINY, changes)
    lines = [f"{key} = {_toml_value(value)}" for key, value in config.items() if not isinstance(value, Mapping)]
    for section, table in config.items():
        if isinstance(table, Mapping):
            lines.append(f"[{section}]")
            lines += [f"{key} = {_toml_value(value)}" for key, value in table.items()]
    return "\n".join(lines) + "\n"
