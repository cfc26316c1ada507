"""The build's time budget: shares of what remains, unused time passed on, epochs that fit."""

from __future__ import annotations

import dataclasses

import pytest

from edge_rec.config import EdgeRecConfig, LowRankConfig, PruneConfig
from edge_rec.pipeline import time_budget_for, workflow
from edge_rec.time_budget import EVALUATIONS_AFTER_TRAINING, RESERVE, TimeBudget

#: The training stages' shares in a default build, as the passes declare them.
STAGE_SHARES = {step.name: step.budget_share for step in workflow(EdgeRecConfig()) if step.budget_share}


def _budget(seconds: float | None, cfg: EdgeRecConfig | None = None) -> TimeBudget:
    cfg = cfg or EdgeRecConfig()
    budget = time_budget_for(cfg, workflow(cfg))
    budget.seconds = seconds
    return budget


def test_the_default_build_budgets_its_five_training_passes():
    assert STAGE_SHARES == {"teacher": 0.40, "student_baseline": 0.17, "student": 0.17, "pruned": 0.14, "qat": 0.06}


def test_only_enabled_passes_share_the_budget():
    cfg = dataclasses.replace(EdgeRecConfig(), prune=PruneConfig(enabled=False), lowrank=LowRankConfig(enabled=True))
    budget = _budget(1000.0, cfg)
    assert "pruned" not in budget.shares and budget.shares["lowrank"] > 0
    budget.elapsed = lambda: 0.0
    assert budget.allowance("teacher") == pytest.approx(1000.0 * (1 - RESERVE) * 0.40 / sum(budget.shares.values()))


def test_no_budget_means_no_limits():
    budget = _budget(None)
    assert budget.allowance("teacher") is None
    assert TimeBudget.epochs_that_fit(None, 10.0, 7) == 7


def test_each_stage_gets_its_share_of_what_remains():
    budget = _budget(1000.0)
    budget.elapsed = lambda: 0.0
    usable = 1000.0 * (1 - RESERVE)
    first = budget.allowance("teacher")
    assert first == pytest.approx(usable * STAGE_SHARES["teacher"] / sum(STAGE_SHARES.values()))
    # the teacher finished early: the next stage shares everything that is left
    budget.elapsed = lambda: first / 2
    rest = [s for s in STAGE_SHARES if s != "teacher"]
    second = budget.allowance("student_baseline")
    expected = (usable - first / 2) * STAGE_SHARES["student_baseline"] / sum(STAGE_SHARES[s] for s in rest)
    assert second == pytest.approx(expected)
    budget.elapsed = lambda: 10_000.0  # overrun: a stage still gets a first epoch's second
    assert budget.allowance("qat") == 1.0


def test_epochs_that_fit():
    assert TimeBudget.epochs_that_fit(100.0, 30.0, 10) == 3
    assert TimeBudget.epochs_that_fit(100.0, 300.0, 10) == 1
    assert TimeBudget.epochs_that_fit(1e6, 3.0, 10) == 10


def test_the_distilled_student_gets_the_wall_clock_of_the_student_alone():
    budget = _budget(1000.0)
    budget.elapsed = lambda: 300.0
    budget.allowance("teacher")
    alone = budget.allowance("student_baseline")
    budget.elapsed = lambda: 300.0 + alone / 3  # the student alone stopped early
    assert budget.allowance("student") == alone
    assert budget.granted["student"] == alone  # so its budget note can say what would fix it


def test_an_averaged_teacher_weighs_as_many_teachers_as_it_has_members():
    budget = _budget(1000.0)
    budget.weigh("teacher", 3)
    budget.elapsed = lambda: 0.0
    shares = {**STAGE_SHARES, "teacher": 3 * STAGE_SHARES["teacher"]}
    assert budget.allowance("teacher") == pytest.approx(
        1000.0 * (1 - RESERVE) * shares["teacher"] / sum(shares.values()))
    assert budget.allowance("teacher") > _budget(1000.0).allowance("teacher")


def _result(scores, stopped_by, seconds=100.0):
    from edge_rec.distill.training import TrainResult

    return TrainResult(history={"val_ndcg@10": list(scores)}, seconds=seconds, epochs_run=len(scores),
                       stopped_by=stopped_by)


def test_a_fit_stopped_on_the_budget_while_rising_is_undertrained_and_the_report_says_what_would_fix_it():
    rising = _result([0.01, 0.02, 0.03, 0.033, 0.036], "time budget", seconds=50.0)  # 10 s an epoch
    assert rising.validation_gain_per_epoch() == pytest.approx((0.036 / 0.03) ** 0.5 - 1)
    assert rising.undertrained
    budget = _budget(1000.0)
    budget.elapsed = lambda: 0.0
    granted = budget.allowance("teacher")
    note = budget.undertrained_note("teacher", rising, planned_epochs=40)
    # 40 epochs at 10 s need 400 s of the teacher's stage: the whole budget scaled by 400 / granted
    assert note.startswith("teacher undertrained at epoch 5")
    assert f"about {1000.0 * 400 / granted / 60:.0f} minutes" in note
    flat = _result([0.01, 0.03, 0.0300, 0.0301, 0.0302], "time budget")
    assert not flat.undertrained and budget.undertrained_note("teacher", flat, 40) is None
    converged = _result([0.01, 0.02, 0.03], "early stopping")
    assert not converged.undertrained
    assert _budget(None).undertrained_note("teacher", rising, 40) is None


def test_another_teacher_member_starts_only_when_it_can_converge():
    from edge_rec.stages import MEMBER_TIME_MARGIN, _another_member_fits

    converged = (None, None, _result([0.01, 0.02], "early stopping", seconds=300.0))
    cut_short = (None, None, _result([0.01, 0.02], "time budget", seconds=300.0))
    assert _another_member_fits([converged], 300.0 * MEMBER_TIME_MARGIN + 1)
    assert not _another_member_fits([converged], 300.0 * MEMBER_TIME_MARGIN - 1)
    assert not _another_member_fits([cut_short], 10_000.0)  # an undertrained member: no average of two


def test_the_reserve_grows_with_the_measured_cost_of_an_evaluation():
    budget = _budget(1000.0)
    budget.elapsed = lambda: 0.0
    assert budget.reserve_seconds == pytest.approx(1000.0 * RESERVE)
    budget.evaluation_took(5.0)  # 8 x 5 s < 6 % of 1000 s: unchanged
    assert budget.reserve_seconds == pytest.approx(1000.0 * RESERVE)
    budget.evaluation_took(20.0)
    assert budget.reserve_seconds == pytest.approx(EVALUATIONS_AFTER_TRAINING * 20.0)
    assert budget.allowance("teacher") == pytest.approx(
        (1000.0 - EVALUATIONS_AFTER_TRAINING * 20.0) * STAGE_SHARES["teacher"] / sum(STAGE_SHARES.values()))
    assert _budget(None).reserve_seconds == 0.0
