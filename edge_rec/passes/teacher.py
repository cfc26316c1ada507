"""The teacher pass: the large sequential teacher (SASRec or GRU), trained within its budget."""

from __future__ import annotations

from typing import TYPE_CHECKING

from edge_rec.config import TeacherConfig
from edge_rec.passes.base import BuildPass
from edge_rec.passes.registry import register

if TYPE_CHECKING:
    from edge_rec.passes.context import BuildContext

TEACHER = "teacher"


class TeacherPass(BuildPass):
    """Trains the teacher (:func:`edge_rec.stages.train_teacher`) within its share of the budget;
    a teacher of several members weighs that many shares (:meth:`TimeBudget.weigh`)."""

    name = TEACHER
    config_section = "teacher"
    config_type = TeacherConfig
    budget_share = 0.40
    report_rows = {TEACHER: "the large teacher (Keras, float32)"}
    quick = {"hidden": 32, "blocks": 1, "fit": {"epochs": 2, "batch_size": 64}}

    def run(self, ctx: BuildContext) -> None:
        from edge_rec import stages

        with ctx.run.stage(TEACHER):
            teacher = stages.train_teacher(
                ctx.data, ctx.cfg.teacher, seed=ctx.seed, quiet=ctx.quiet, softmax=ctx.cfg.softmax,
                time_limit=ctx.budget.allowance(TEACHER),
            )
        ctx.record_keras_stage(teacher, **ctx.budget_note(TEACHER, teacher, ctx.cfg.teacher.fit.epochs))


register(TeacherPass())
