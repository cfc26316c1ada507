"""The size-comparison pass: what pruning buys on the wire, int8 and float32, dense and sparse."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from edge_rec.passes.base import BuildPass
from edge_rec.passes.convert import TFLITE_INT8
from edge_rec.passes.prune import PRUNED
from edge_rec.passes.registry import register

if TYPE_CHECKING:
    from edge_rec.passes.context import BuildContext

SIZE_COMPARISON = "size_comparison"


class SizeComparisonPass(BuildPass):
    """Converts the shipped student to int8 without pruning and records, in ``report.json``'s
    ``compression`` section, each file's size and gzip size at the sparsity it actually has:
    int8 dense vs the bundle's int8, float32 dense vs pruned."""

    name = SIZE_COMPARISON

    def run(self, ctx: BuildContext) -> None:
        from edge_rec import stages

        with ctx.run.stage("convert_int8_unpruned"):
            dense_int8 = stages.convert(ctx.student, "int8", ctx.data, ctx.cfg.convert, seed=ctx.seed)

        def flatbuffer(data: bytes, sparsity: float) -> dict[str, Any]:
            return {"sparsity": sparsity, "size_bytes": len(data), "gzip_bytes": stages.gzip_size(data)}

        def recorded(stage: str, sparsity: float | None = None) -> dict[str, Any]:
            record = ctx.rec.records[stage]
            return {"sparsity": record.sparsity if sparsity is None else sparsity,
                    "size_bytes": record.size_bytes, "gzip_bytes": record.gzip_bytes}

        kept = ctx.rec.records[TFLITE_INT8].sparsity or 0.0
        sizes = {
            "int8_sparsity_0": flatbuffer(dense_int8, 0.0),
            f"int8_sparsity_{kept:.2f}": flatbuffer(ctx.tflite_variants["int8"], kept),
            "float32_sparsity_0": recorded(ctx.student.name, sparsity=0.0),
        }
        if PRUNED in ctx.rec.records:
            sizes[f"float32_sparsity_{ctx.rec.records[PRUNED].sparsity or 0.0:.2f}"] = recorded(PRUNED)
        ctx.report_sections["compression"] = sizes


register(SizeComparisonPass())
