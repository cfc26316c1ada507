"""The student passes: the small student trained alone (the baseline distillation must beat) and
distilled from the teacher, with the same code path, seeds and wall-clock."""

from __future__ import annotations

from typing import TYPE_CHECKING

from edge_rec.config import StudentConfig
from edge_rec.passes.base import BuildPass
from edge_rec.passes.registry import register
from edge_rec.passes.teacher import TEACHER

if TYPE_CHECKING:
    from edge_rec.passes.context import BuildContext

STUDENT_BASELINE = "student_baseline"  # the student trained alone
STUDENT = "student"  # the distilled student


class StudentPass(BuildPass):
    """Trains the student (:func:`edge_rec.stages.train_student`): alone, or distilled from the
    teacher pass's model."""

    config_section = "student"
    config_type = StudentConfig

    def __init__(self, name: str, *, with_teacher: bool, share: float, like: str | None, description: str,
                 quick: dict | None = None) -> None:
        self.name = name
        self.with_teacher = with_teacher
        self.budget_share = share
        self.budget_like = like
        self.report_rows = {name: description}
        self.quick = quick or {}

    def run(self, ctx: BuildContext) -> None:
        from edge_rec import stages

        with ctx.run.stage(self.name):
            student = stages.train_student(
                ctx.data, ctx.models[TEACHER] if self.with_teacher else None, ctx.cfg.student, ctx.cfg.distill,
                seed=ctx.seed, name=self.name, quiet=ctx.quiet, softmax=ctx.cfg.softmax,
                time_limit=ctx.budget.allowance(self.name),
            )
        ctx.record_keras_stage(student, **ctx.budget_note(self.name, student, ctx.cfg.student.fit.epochs))


register(StudentPass(
    STUDENT_BASELINE, with_teacher=False, share=0.17, like=None,
    description="the small student trained alone (no teacher): what distillation must beat",
    quick={"embedding_dim": 8, "hidden": [16], "fit": {"epochs": 2, "batch_size": 64}},
))
# the same wall-clock as the student alone, so "what distillation buys" compares equal compute
register(StudentPass(
    STUDENT, with_teacher=True, share=0.17, like=STUDENT_BASELINE,
    description="the student distilled from the teacher (Keras, float32, unpruned)",
))
