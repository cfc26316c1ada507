"""The bundle pass: the int8 model exported as a verified bundle (parity checked)."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from edge_rec.passes.base import BuildPass
from edge_rec.passes.convert import TFLITE_INT8
from edge_rec.passes.prune import PRUNED
from edge_rec.passes.registry import register

if TYPE_CHECKING:
    from edge_rec.passes.context import BuildContext

log = logging.getLogger(__name__)

BUNDLE = "bundle"


class BundlePass(BuildPass):
    """Writes ``RUN_DIR/bundle`` from the compressed student's int8 file
    (:func:`edge_rec.export.export_bundle`: parity, manifest, load-time self-check).

    When the QAT student's int8 file fails parity (a QAT cut short by the time budget leaves its
    ranges near their initial values), the student before QAT is quantized after training
    instead (calibrated on real histories), re-recorded as the ``tflite_int8`` row, and the report's
    ``int8_fallback`` section says why; only if that fails too does the build stop."""

    name = BUNDLE

    def run(self, ctx: BuildContext) -> None:
        from converters.parity import ParityError

        with ctx.run.stage(BUNDLE):
            try:
                self._export(ctx, qat=ctx.cfg.qat.enabled)
            except ParityError as exc:
                before_qat = ctx.models.get(PRUNED, ctx.student)
                if not ctx.cfg.qat.enabled or ctx.compressed_student is before_qat:
                    raise
                log.warning("bundle: %s; quantizing the %s student after training instead", exc, before_qat.name)
                self._post_training_int8(ctx, before_qat, str(exc))
        log.info("parity: top-10 overlap %.3f", ctx.exported.parity.top10_overlap)

    @staticmethod
    def _export(ctx: BuildContext, *, qat: bool) -> None:
        from edge_rec.data.titles import titles_by_index
        from edge_rec.export import export_bundle

        vocab = ctx.data.dataset.vocab
        ctx.exported = export_bundle(
            ctx.compressed_student.serving_model, ctx.data, ctx.run.path / BUNDLE, convert_cfg=ctx.cfg.convert,
            seed=ctx.seed, variant="int8", qat=qat, tflite=ctx.tflite_variants["int8"],
            metrics=ctx.rec.records[TFLITE_INT8].metrics,
            titles=None if ctx.titles is None else titles_by_index(vocab.ids, ctx.titles, vocab.titles),
        )

    def _post_training_int8(self, ctx: BuildContext, model, reason: str) -> None:
        from edge_rec import stages

        ctx.tflite_variants["int8"] = stages.convert(model, "int8", ctx.data, ctx.cfg.convert, seed=ctx.seed)
        ctx.rec.tflite(TFLITE_INT8, ctx.tflite_variants["int8"], params=model.params,
                       sparsity=ctx.rec.records[model.name].sparsity or 0.0, seconds=0.0)
        ctx.compressed_student = model
        ctx.report_sections["int8_fallback"] = {"from": model.name, "reason": reason}
        self._export(ctx, qat=False)


register(BundlePass())
