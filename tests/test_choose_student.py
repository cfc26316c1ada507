"""Distillation never hurts: the better-validating student is the one compressed and shipped."""

from __future__ import annotations

from edge_rec.config import DistillConfig
from edge_rec.distill.training import TrainResult
from edge_rec.stages import TrainedModel, choose_student


def _trained(name: str, val: float) -> TrainedModel:
    return TrainedModel(name, None, None, TrainResult(best_val_ndcg=val), 1.0)


def test_the_distilled_student_ships_when_it_validates_at_least_as_well():
    distill = DistillConfig(ce_weight=0.3, rank_weight=0.5)
    chosen = choose_student(_trained("student", 0.061), _trained("student_baseline", 0.055), distill)
    assert chosen.model.name == "student" and chosen.distill == distill
    tie = choose_student(_trained("student", 0.05), _trained("student_baseline", 0.05), distill)
    assert tie.model.name == "student"


def test_the_student_alone_ships_without_the_teacher_when_it_validates_better():
    chosen = choose_student(_trained("student", 0.08), _trained("student_baseline", 0.09), DistillConfig(ce_weight=0.3))
    assert chosen.model.name == "student_baseline"
    assert chosen.distill.ce_weight == 1.0 and chosen.distill.kd_weight == 0.0 and chosen.distill.rank_weight == 0.0
    assert "did not help" in chosen.reason
