"""The cold-items pass: in a build with item features, how well items unseen at training are
ranked, with and without features and against a content baseline (:mod:`edge_rec.cold_items`)."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from edge_rec.config import EdgeRecConfig, FeaturesConfig
from edge_rec.passes.base import BuildPass
from edge_rec.passes.registry import register

if TYPE_CHECKING:
    from edge_rec.passes.context import BuildContext

log = logging.getLogger(__name__)

COLD_ITEMS = "cold_items"


class ColdItemsPass(BuildPass):
    """Trains the student alone twice (with and without features) on the log before the cold cut
    and records ``report.json``'s ``cold_items`` section; runs when the build has item features
    and ``[features] cold_evaluation`` is on. A log whose times cannot be split is noted, not fatal."""

    name = COLD_ITEMS
    config_section = "features"
    config_type = FeaturesConfig
    budget_share = 0.10

    def enabled(self, cfg: EdgeRecConfig) -> bool:
        """Only in builds with item features (and ``cold_evaluation`` on)."""
        return bool(cfg.data.item_features) and cfg.features.cold_evaluation

    def run(self, ctx: BuildContext) -> None:
        from edge_rec import stages
        from edge_rec.cold_items import cold_split, evaluate_cold_items

        cfg = ctx.cfg
        if ctx.data.log is None or ctx.data.item_features is None or ctx.data.feature_spec is None:
            return
        try:
            split = cold_split(ctx.data.log, cold_share=cfg.features.cold_share, history_length=ctx.data.history_length)
        except ValueError as exc:
            log.warning("cold items: not measured (%s)", exc)
            ctx.report_sections[COLD_ITEMS] = {"skipped": str(exc)}
            return
        allowance = ctx.budget.allowance(COLD_ITEMS)

        def train(data, name):
            return stages.train_student(data, None, cfg.student, cfg.distill, seed=ctx.seed, name=name,
                                        quiet=ctx.quiet, softmax=cfg.softmax,
                                        time_limit=None if allowance is None else allowance / 2)

        with ctx.run.stage(COLD_ITEMS):
            try:
                section = evaluate_cold_items(split, ctx.data.item_features, ctx.data.feature_spec, cfg.data,
                                              cfg.features, train, seed=ctx.seed)
            except ValueError as exc:  # e.g. nothing left of the log before the cut after filtering
                log.warning("cold items: not measured (%s)", exc)
                section = {"skipped": str(exc)}
        ctx.report_sections[COLD_ITEMS] = section


register(ColdItemsPass())
