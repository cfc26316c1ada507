"""What the passes of one build share: its inputs, and what each pass made so far."""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from edge_rec.config import EdgeRecConfig
from edge_rec.run_directory import RunDirectory
from edge_rec.sizing import SizingChoice
from edge_rec.time_budget import TimeBudget

if TYPE_CHECKING:
    from edge_rec.export import ExportResult
    from edge_rec.stage_recorder import StageRecorder
    from edge_rec.stages import PreparedData, ShippedStudent, TrainedModel

log = logging.getLogger(__name__)


@dataclass
class BuildContext:
    """Inputs of a build (config, run directory, data, sizing, budget, recorder) and the outputs
    of its passes so far.

    ``models``: every trained Keras stage by name. ``float32_flatbuffers``: each Keras stage's
    float32 TFLite file. ``tflite_variants``: the converted variants of the shipped student by
    variant name (``int8`` is the compressed student's). ``shipped``: the student chosen for
    compression. ``compressed_student``: the shipped student after the compression passes run
    so far (itself before any; the int8 conversion and the bundle take it). ``exported``: the
    bundle. ``report_sections``: top-level ``report.json`` entries a pass adds (name -> JSON).
    """

    cfg: EdgeRecConfig
    run: RunDirectory
    data: PreparedData
    sizing: tuple[SizingChoice, ...]
    budget: TimeBudget
    rec: StageRecorder
    quiet: bool = False
    titles: Mapping[str, str] | None = None
    models: dict[str, TrainedModel] = field(default_factory=dict)
    float32_flatbuffers: dict[str, bytes] = field(default_factory=dict)
    tflite_variants: dict[str, bytes] = field(default_factory=dict)
    shipped: ShippedStudent | None = None
    compressed_student: TrainedModel | None = None
    exported: ExportResult | None = None
    report_sections: dict[str, Any] = field(default_factory=dict)

    @property
    def seed(self) -> int:
        """The build's seed."""
        return self.cfg.seed

    @property
    def student(self) -> TrainedModel:
        """The student that ships (set by the choose-student pass)."""
        assert self.shipped is not None, "the choose-student pass runs before compression"
        return self.shipped.model

    def record_keras_stage(self, model: TrainedModel, **extra: Any) -> None:
        """Evaluate and record a trained Keras stage (:meth:`StageRecorder.keras`), keep it and
        its float32 flatbuffer for later passes, and time the evaluation for the budget's reserve."""
        self.models[model.name] = model
        start = time.perf_counter()
        self.float32_flatbuffers[model.name] = self.rec.keras(model, **extra)
        self.budget.evaluation_took(time.perf_counter() - start)

    def budget_note(self, stage: str, model: TrainedModel, planned_epochs: int) -> dict[str, str]:
        """``{"budget_note": ...}`` for the stage's record when the budget cut its training short
        while it was still improving (logged as a warning too); else nothing."""
        note = self.budget.undertrained_note(stage, model.train, planned_epochs) if model.train else None
        if note is None:
            return {}
        log.warning("%s", note)
        return {"budget_note": note}
