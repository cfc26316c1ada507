"""The convert pass: TFLite variants of the shipped student, each evaluated in the interpreter."""

from __future__ import annotations

from typing import TYPE_CHECKING

from converters.variants import VARIANTS
from edge_rec.config import ConvertConfig
from edge_rec.passes.base import BuildPass
from edge_rec.passes.registry import register

if TYPE_CHECKING:
    from edge_rec.passes.context import BuildContext

CONVERT = "convert"


def tflite_stage(variant: str) -> str:
    """The stage name of a TFLite variant (``tflite_int8``, ...)."""
    if variant not in VARIANTS:
        raise ValueError(f"variant: expected one of {', '.join(VARIANTS)}, got {variant!r}")
    return f"tflite_{variant}"


TFLITE_INT8 = tflite_stage("int8")


class ConvertPass(BuildPass):
    """float32 / float16 / dynamic-range TFLite of the shipped student, full-integer int8 of the
    compressed student (:func:`edge_rec.stages.convert`); each recorded as a ``tflite_*`` row."""

    name = CONVERT
    config_section = "convert"
    config_type = ConvertConfig
    report_rows = {
        tflite_stage("float32"): "TFLite float32 of the shipped student, unpruned",
        tflite_stage("float16"): "TFLite float16 weights of the shipped student, unpruned",
        tflite_stage("dynamic"): "TFLite dynamic-range int8 weights of the shipped student, unpruned",
        TFLITE_INT8: "TFLite full-integer int8 of the pruned + QAT student: the bundle",
    }
    quick = {"representative_samples": 32, "top_k": 50}

    def run(self, ctx: BuildContext) -> None:
        from edge_rec import stages

        ctx.tflite_variants["float32"] = ctx.float32_flatbuffers[ctx.student.name]
        for variant in ctx.cfg.convert.variants:
            source = ctx.compressed_student if variant == "int8" else ctx.student
            if variant not in ctx.tflite_variants:
                with ctx.run.stage(f"convert_{variant}"):
                    ctx.tflite_variants[variant] = stages.convert(source, variant, ctx.data, ctx.cfg.convert,
                                                                  seed=ctx.seed)
            ctx.rec.tflite(
                tflite_stage(variant),
                ctx.tflite_variants[variant],
                params=source.params,
                sparsity=ctx.rec.records[source.name].sparsity or 0.0,
                seconds=ctx.run.timings.get(f"convert_{variant}", 0.0),
            )


register(ConvertPass())
