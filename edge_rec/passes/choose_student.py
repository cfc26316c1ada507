"""The choose-student pass: distillation must never hurt, so the better-validating student ships."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from edge_rec.passes.base import BuildPass
from edge_rec.passes.registry import register
from edge_rec.passes.student import STUDENT, STUDENT_BASELINE

if TYPE_CHECKING:
    from edge_rec.passes.context import BuildContext

log = logging.getLogger(__name__)

CHOOSE_STUDENT = "choose_student"


class ChooseStudentPass(BuildPass):
    """Picks the student to compress (:func:`edge_rec.stages.choose_student`, on validation)."""

    name = CHOOSE_STUDENT

    def run(self, ctx: BuildContext) -> None:
        from edge_rec import stages

        ctx.shipped = stages.choose_student(ctx.models[STUDENT], ctx.models[STUDENT_BASELINE], ctx.cfg.distill)
        ctx.compressed_student = ctx.shipped.model
        ctx.report_sections["shipped_student"] = {"stage": ctx.shipped.model.name, "reason": ctx.shipped.reason}
        log.info("compressing %s: %s", ctx.shipped.model.name, ctx.shipped.reason)


register(ChooseStudentPass())
