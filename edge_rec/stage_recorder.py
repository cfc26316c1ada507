"""What a build measured per stage: evaluated on the test split, saved, sized, compared.

:class:`StageRecorder` is the pipeline's only way to record a stage: a Keras stage is ranked,
scored, saved and converted to float32 for its size; a TFLite stage is run in the interpreter by
the serving rule. It keeps every stage's ranked lists so the build can compare stages on the
same users (:meth:`StageRecorder.comparisons`).
"""

from __future__ import annotations

import logging
from typing import Any

import numpy as np

from edge_rec import stages
from edge_rec.config import EdgeRecConfig
from edge_rec.model_store import save_model_pair
from edge_rec.models.item_encoder import save_item_encoder
from edge_rec.paired_bootstrap import PairedRatio, paired_ratio
from edge_rec.passes import POPULARITY, STUDENT, TFLITE_INT8
from edge_rec.quality_gate import COMPARISONS
from edge_rec.report import StageRecord
from edge_rec.run_directory import RunDirectory

log = logging.getLogger(__name__)


class StageRecorder:
    """Collects a :class:`StageRecord` and the test-split ranked lists of every stage."""

    def __init__(self, run: RunDirectory, data: stages.PreparedData, cfg: EdgeRecConfig) -> None:
        self.run, self.data, self.cfg = run, data, cfg
        self.records: dict[str, StageRecord] = {}
        self.ranked: dict[str, np.ndarray] = {}

    def popularity(self) -> None:
        """The most-popular baseline, the floor every model must clear."""
        self.ranked[POPULARITY] = stages.rank_popularity(self.data)
        self.records[POPULARITY] = StageRecord(
            params=0, size_bytes=None, gzip_bytes=None, sparsity=None,
            metrics=stages.ranking_metrics(self.ranked[POPULARITY], self.data),
        )

    def comparisons(self, shipped: str) -> dict[tuple[str, str], PairedRatio]:
        """Paired NDCG@10 ratios with bootstrap intervals for every comparison both of whose
        stages ran (:data:`~edge_rec.quality_gate.COMPARISONS`, int8 against the ``shipped``
        float student)."""
        out = {}
        for a, b in COMPARISONS:
            b = shipped if (a, b) == (TFLITE_INT8, STUDENT) else b
            if a in self.ranked and b in self.ranked:
                out[(a, b)] = paired_ratio(
                    stages.per_user_ndcg(self.ranked[a], self.data),
                    stages.per_user_ndcg(self.ranked[b], self.data),
                    names=(a, b),
                    seed=self.cfg.seed,
                )
        return out

    def keras(self, model: stages.TrainedModel, *, sparsity: float | None = None, **extra: Any) -> bytes:
        """Evaluate, save and float32-convert a Keras stage; returns the float32 flatbuffer."""
        with self.run.stage(f"evaluate_{model.name}"):
            self.ranked[model.name] = stages.rank_keras(model.serving_model, self.data)
            metrics = stages.ranking_metrics(self.ranked[model.name], self.data)
            tflite = stages.convert(model, "float32", self.data, self.cfg.convert, seed=self.cfg.seed)
        path = self.run.write_tflite(f"{model.name}_float32", tflite)
        model_dir = save_model_pair(
            self.run.model_dir(model.name), serving=model.serving_model, sequence=model.sequence_model
        )
        if model.item_encoder is not None:
            save_item_encoder(model_dir, model.item_encoder)
        train = model.train
        self.records[model.name] = StageRecord(
            params=model.params,
            size_bytes=len(tflite),
            gzip_bytes=stages.gzip_size(tflite),
            sparsity=stages.overall_sparsity(model.serving_model) if sparsity is None else sparsity,
            metrics=metrics,
            seconds=round(model.seconds, 2),
            artifact=str(path),
            extra={
                "epochs_run": train.epochs_run if train else None,
                "best_epoch": train.best_epoch if train else None,
                "stopped_by": train.stopped_by if train else None,
                "best_val_ndcg@10": train.best_val_ndcg if train else None,
                **stages.averaged_teacher_summary(model, seed=self.cfg.seed),
                **extra,
            },
        )
        log.info("stage %s: NDCG@10 %.4f, %d params, %.0f s (%s epochs, %s)", model.name, metrics["ndcg@10"],
                 model.params, model.seconds, train.epochs_run if train else "-",
                 train.stopped_by if train else "not trained")
        return tflite

    def tflite(self, name: str, tflite: bytes, *, params: int, sparsity: float, seconds: float) -> None:
        """Store a TFLite variant and evaluate it by running it in the interpreter."""
        path = self.run.write_tflite(name.removeprefix("tflite_"), tflite)
        with self.run.stage(f"evaluate_{name}"):
            self.ranked[name] = stages.rank_tflite(tflite, self.data)
            metrics = stages.ranking_metrics(self.ranked[name], self.data)
        self.records[name] = StageRecord(
            params=params,
            size_bytes=len(tflite),
            gzip_bytes=stages.gzip_size(tflite),
            sparsity=sparsity,
            metrics=metrics,
            seconds=round(seconds, 2),
            artifact=str(path),
        )
        log.info("stage %s: NDCG@10 %.4f, %d bytes", name, metrics["ndcg@10"], len(tflite))
