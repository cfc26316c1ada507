"""The bundle pass: the int8 model exported as a verified bundle (parity checked)."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from edge_rec.passes.base import BuildPass
from edge_rec.passes.convert import TFLITE_INT8
from edge_rec.passes.registry import register

if TYPE_CHECKING:
    from edge_rec.passes.context import BuildContext

log = logging.getLogger(__name__)

BUNDLE = "bundle"


class BundlePass(BuildPass):
    """Writes ``RUN_DIR/bundle`` from the compressed student's int8 file
    (:func:`edge_rec.export.export_bundle`: parity, manifest, load-time self-check)."""

    name = BUNDLE

    def run(self, ctx: BuildContext) -> None:
        from edge_rec.data.titles import titles_by_index
        from edge_rec.export import export_bundle

        vocab = ctx.data.dataset.vocab
        with ctx.run.stage(BUNDLE):
            ctx.exported = export_bundle(
                ctx.compressed_student.serving_model, ctx.data, ctx.run.path / BUNDLE, convert_cfg=ctx.cfg.convert,
                seed=ctx.seed, variant="int8", qat=ctx.cfg.qat.enabled, tflite=ctx.tflite_variants["int8"],
                metrics=ctx.rec.records[TFLITE_INT8].metrics,
                titles=None if ctx.titles is None else titles_by_index(vocab.ids, ctx.titles, vocab.titles),
            )
        log.info("parity: top-10 overlap %.3f", ctx.exported.parity.top10_overlap)


register(BundlePass())
