"""The registry of build passes: the workflow of ``edge-rec build`` is its order.

Built-in passes register themselves when :mod:`edge_rec.passes.builtin` is imported (each pass
file ends with one ``register(...)`` call, and ``builtin`` imports the files in workflow order).
A new pass is one file plus one import line there; an extension may :func:`register` its own
pass at run time (``after=`` a named pass) and it is validated, budgeted, run and reported like
a built-in one.
"""

from __future__ import annotations

import importlib
from collections.abc import Mapping

from edge_rec.passes.base import BuildPass

_PASSES: dict[str, BuildPass] = {}


def register(build_pass: BuildPass, *, after: str | None = None) -> BuildPass:
    """Add ``build_pass`` to the workflow: at the end, or right after the pass named ``after``.

    Raises ValueError for a name already registered or an unknown ``after``."""
    if not getattr(build_pass, "name", None):
        raise ValueError(f"{build_pass!r}: a pass needs a name")
    if build_pass.name in _PASSES:
        raise ValueError(f"a pass named {build_pass.name!r} is already registered")
    if after is not None and after not in _PASSES:
        raise ValueError(f"after: no registered pass {after!r}; expected one of {', '.join(_PASSES)}")
    if after is None:
        _PASSES[build_pass.name] = build_pass
        return build_pass
    items = list(_PASSES.items())
    index = [name for name, _ in items].index(after) + 1
    items.insert(index, (build_pass.name, build_pass))
    _PASSES.clear()
    _PASSES.update(items)
    return build_pass


def unregister(name: str) -> None:
    """Remove the pass ``name`` (for extensions and tests); unknown names are ignored."""
    _PASSES.pop(name, None)


def registered() -> tuple[BuildPass, ...]:
    """Every registered pass, in workflow order (the built-in ones are loaded first)."""
    importlib.import_module("edge_rec.passes.builtin")
    return tuple(_PASSES.values())


def get(name: str) -> BuildPass:
    """The registered pass ``name``; KeyError naming the known passes otherwise."""
    for build_pass in registered():
        if build_pass.name == name:
            return build_pass
    raise KeyError(f"no pass {name!r}; registered: {', '.join(_PASSES)}")


def config_sections() -> dict[str, type]:
    """Config section name -> its type, for every registered pass that declares one."""
    sections: dict[str, type] = {}
    for build_pass in registered():
        if build_pass.config_section and build_pass.config_type is not None:
            sections.setdefault(build_pass.config_section, build_pass.config_type)
    return sections


def report_rows() -> dict[str, str]:
    """Every report row a registered pass may produce -> its one-line description, in order."""
    rows: dict[str, str] = {}
    for build_pass in registered():
        rows.update(build_pass.report_rows)
    return rows


def quick_overrides() -> dict[str, Mapping]:
    """The built-in ``quick`` profile's overrides contributed by the passes, by section."""
    out: dict[str, Mapping] = {}
    for build_pass in registered():
        if build_pass.quick and build_pass.config_section:
            out.setdefault(build_pass.config_section, build_pass.quick)
    return out
