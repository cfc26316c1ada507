"""The QAT pass: pruning-preserving quantization-aware training, the teacher still teaching."""

from __future__ import annotations

from typing import TYPE_CHECKING

from edge_rec.config import QATConfig
from edge_rec.passes.base import BuildPass
from edge_rec.passes.registry import register
from edge_rec.passes.teacher import TEACHER

if TYPE_CHECKING:
    from edge_rec.passes.context import BuildContext

QAT = "qat"


class QATPass(BuildPass):
    """Fine-tunes the compressed student with fake quantization
    (:func:`edge_rec.stages.quantization_aware_training`); the result is the compressed student."""

    name = QAT
    config_section = "qat"
    config_type = QATConfig
    budget_share = 0.06
    report_rows = {QAT: "the pruned student after quantization-aware training (Keras, fake-quantized)"}
    quick = {"fit": {"epochs": 1}}

    def run(self, ctx: BuildContext) -> None:
        from edge_rec import stages

        source = ctx.compressed_student
        with ctx.run.stage(QAT):
            qat = stages.quantization_aware_training(
                ctx.data, source, ctx.models[TEACHER], ctx.cfg.qat, ctx.shipped.distill, seed=ctx.seed,
                quiet=ctx.quiet, time_limit=ctx.budget.allowance(QAT),
            )
        ctx.record_keras_stage(qat, sparsity=stages.overall_sparsity(source.serving_model))
        ctx.compressed_student = qat


register(QATPass())
