"""The popularity pass: the most popular training items, the floor every model must beat."""

from __future__ import annotations

from typing import TYPE_CHECKING

from edge_rec.passes.base import BuildPass
from edge_rec.passes.registry import register

if TYPE_CHECKING:
    from edge_rec.passes.context import BuildContext

POPULARITY = "popularity"


class PopularityPass(BuildPass):
    """Ranks the test users' items by training popularity (seen excluded) and records it."""

    name = POPULARITY
    report_rows = {POPULARITY: "the most popular training items, seen excluded: the floor"}

    def run(self, ctx: BuildContext) -> None:
        ctx.rec.popularity()


register(PopularityPass())
