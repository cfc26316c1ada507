"""The build's time budget: shares of what remains, unused time passed on, epochs that fit."""

from __future__ import annotations

import pytest

from edge_rec.time_budget import RESERVE, STAGE_SHARES, TimeBudget


def test_no_budget_means_no_limits():
    budget = TimeBudget(None)
    assert budget.allowance("teacher") is None
    assert TimeBudget.epochs_that_fit(None, 10.0, 7) == 7


def test_each_stage_gets_its_share_of_what_remains():
    budget = TimeBudget(1000.0)
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
    budget = TimeBudget(1000.0)
    budget.elapsed = lambda: 300.0
    budget.allowance("teacher")
    alone = budget.allowance("student_baseline")
    budget.elapsed = lambda: 300.0 + alone / 3  # the student alone stopped early
    assert budget.allowance("student") == alone


def test_an_averaged_teacher_weighs_as_many_teachers_as_it_has_members():
    budget = TimeBudget(1000.0)
    budget.weigh_teacher(3)
    budget.elapsed = lambda: 0.0
    shares = {**STAGE_SHARES, "teacher": 3 * STAGE_SHARES["teacher"]}
    assert budget.allowance("teacher") == pytest.approx(
        1000.0 * (1 - RESERVE) * shares["teacher"] / sum(shares.values()))
    assert budget.allowance("teacher") > TimeBudget(1000.0).allowance("teacher")
