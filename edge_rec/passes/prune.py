"""The pruning pass: TF-MOT magnitude pruning of the shipped student, the teacher still teaching."""

from __future__ import annotations

import dataclasses
from typing import TYPE_CHECKING

from edge_rec.config import PruneConfig
from edge_rec.passes.base import BuildPass
from edge_rec.passes.registry import register
from edge_rec.passes.teacher import TEACHER

if TYPE_CHECKING:
    from edge_rec.passes.context import BuildContext

PRUNED = "pruned"


class PrunePass(BuildPass):
    """Prunes the shipped student (:func:`edge_rec.stages.prune`) and makes it the compressed
    student. Its epochs (one sparsity level each) are fixed up front from the measured pace of
    the student's training so the schedule fits its allowance; the allowance is also a deadline."""

    name = PRUNED
    config_section = "prune"
    config_type = PruneConfig
    budget_share = 0.14
    report_rows = {PRUNED: "the shipped student after magnitude pruning, teacher on (float32)"}
    quick = {"fit": {"epochs": 1}}

    def run(self, ctx: BuildContext) -> None:
        from edge_rec import stages

        student = ctx.student
        epoch_seconds = student.seconds / max(1, student.train.epochs_run if student.train else 1)
        allowance = ctx.budget.allowance(PRUNED)
        epochs = ctx.budget.epochs_that_fit(allowance, epoch_seconds, ctx.cfg.prune.fit.epochs)
        cfg = dataclasses.replace(ctx.cfg.prune, fit=dataclasses.replace(ctx.cfg.prune.fit, epochs=epochs))
        with ctx.run.stage(PRUNED):
            pruned, per_layer, choice = stages.prune(
                ctx.data, student, ctx.models[TEACHER], cfg, ctx.cfg.student, ctx.shipped.distill,
                seed=ctx.seed, quiet=ctx.quiet, time_limit=allowance,
            )
        ctx.record_keras_stage(pruned, sparsity_per_layer=per_layer,
                               **({"sparsity_choice": choice.to_dict()} if choice else {}))
        ctx.compressed_student = pruned


register(PrunePass())
