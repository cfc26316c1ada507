"""The contract of a build pass: one named model -> model step of ``edge-rec build``."""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, ClassVar

if TYPE_CHECKING:
    from edge_rec.config import EdgeRecConfig
    from edge_rec.passes.context import BuildContext


class BuildPass:
    """One step of the build, declared in one file and registered with one line
    (:mod:`edge_rec.passes.builtin`).

    A pass declares, as class attributes:

    - ``name``: the stage name (a ``report.json["stages"]`` key, a run-directory folder, a timing);
    - ``config_section`` and ``config_type``: its frozen config section (``[name]`` in a config
      file), whose keys carry their constraints (:func:`edge_rec.config.param`); validated on load
      with every other section. Several passes may read one section;
    - ``budget_share``: its relative share of ``--time-budget`` (0: it does not train; the shares
      of enabled passes are what :class:`~edge_rec.time_budget.TimeBudget` splits), and
      ``budget_like``: the name of a pass whose granted allowance it gets exactly instead;
    - ``report_rows``: the report's stage rows it produces, each with its one-line description,
      in the order the report shows them (empty: it adds no row);
    - ``quick``: its section's overrides in the built-in ``--preset quick``.

    ``run(ctx)`` reads what earlier passes made from the :class:`~edge_rec.passes.context.BuildContext`
    and records what it makes there. ``enabled(cfg)`` switches it: by default, the section's
    ``enabled`` key when it has one. A pass never writes outside the run directory.
    """

    name: ClassVar[str]
    config_section: ClassVar[str | None] = None
    config_type: ClassVar[type | None] = None
    budget_share: ClassVar[float] = 0.0
    budget_like: ClassVar[str | None] = None
    report_rows: ClassVar[Mapping[str, str]] = {}
    quick: ClassVar[Mapping[str, Any]] = {}

    def config(self, cfg: EdgeRecConfig) -> Any:
        """This pass's config section (None when it has none)."""
        return cfg.section(self.config_section) if self.config_section else None

    def enabled(self, cfg: EdgeRecConfig) -> bool:
        """Whether the build runs this pass: its section's ``enabled`` key, else always."""
        return bool(getattr(self.config(cfg), "enabled", True))

    def run(self, ctx: BuildContext) -> None:
        """Do the step: read inputs from ``ctx``, record outputs in it."""
        raise NotImplementedError(f"pass {self.name!r} does not implement run()")

    def __repr__(self) -> str:
        return f"<pass {self.name}>"
