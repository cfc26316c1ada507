"""The low-rank pass: the shipped student's output layer factorized by truncated SVD, fine-tuned."""

from __future__ import annotations

from typing import TYPE_CHECKING

from edge_rec.config import LowRankConfig
from edge_rec.passes.base import BuildPass
from edge_rec.passes.registry import register
from edge_rec.passes.teacher import TEACHER

if TYPE_CHECKING:
    from edge_rec.passes.context import BuildContext

LOWRANK = "lowrank"


class LowRankPass(BuildPass):
    """Factorizes and fine-tunes the shipped student (:func:`edge_rec.stages.low_rank`) within its
    allowance; a side variant, reported beside the others (it does not feed the bundle)."""

    name = LOWRANK
    config_section = "lowrank"
    config_type = LowRankConfig
    budget_share = 0.06
    report_rows = {LOWRANK: "the shipped student with a low-rank output layer (float32)"}
    quick = {"rank": 4, "fit": {"epochs": 1}}

    def run(self, ctx: BuildContext) -> None:
        from edge_rec import stages

        with ctx.run.stage(LOWRANK):
            lowrank = stages.low_rank(
                ctx.data, ctx.student, ctx.models[TEACHER], ctx.cfg.lowrank, ctx.shipped.distill, seed=ctx.seed,
                quiet=ctx.quiet, time_limit=ctx.budget.allowance(LOWRANK),
            )
        ctx.record_keras_stage(lowrank, rank=ctx.cfg.lowrank.rank)


register(LowRankPass())
