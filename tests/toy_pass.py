"""A toy build pass, registered by the tests to show that a pass needs no edit outside its file."""

from __future__ import annotations

from dataclasses import dataclass

from edge_rec.config import param
from edge_rec.passes import TEACHER, BuildPass, register
from edge_rec.report import StageRecord

NAME = "reverse_popularity"


@dataclass(frozen=True)
class ReversePopularityConfig:
    """The toy pass's section: ``depth`` items are ranked, least popular first."""

    enabled: bool = True
    depth: int = param(10, check=lambda value: value >= 1, expected="an integer >= 1")


class ReversePopularityPass(BuildPass):
    """Ranks items least-popular first and records that as a stage of the report."""

    name = NAME
    config_section = NAME
    config_type = ReversePopularityConfig
    budget_share = 0.01
    report_rows = {NAME: "the least popular items first: a toy pass"}

    def run(self, ctx) -> None:
        import numpy as np

        from edge_rec import stages

        ctx.budget.allowance(NAME)
        ranked = np.ascontiguousarray(stages.rank_popularity(ctx.data)[:, ::-1])
        ctx.rec.records[NAME] = StageRecord(
            params=0, size_bytes=None, gzip_bytes=None, sparsity=None,
            metrics=stages.ranking_metrics(ranked, ctx.data), extra={"depth": self.config(ctx.cfg).depth},
        )


def register_toy_pass() -> None:
    """Register the toy pass right after the teacher."""
    register(ReversePopularityPass(), after=TEACHER)
