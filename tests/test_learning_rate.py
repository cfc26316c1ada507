"""The fit's learning rate: warm-up then cosine, and a time budget that ends the decay early."""

from __future__ import annotations

import pytest

from edge_rec.config import FitConfig
from edge_rec.distill.learning_rate import FLOOR, WarmupCosineDecay, learning_rate_schedule
from edge_rec.time_budget import StopAtDeadline


def rate(schedule: WarmupCosineDecay, step: int) -> float:
    return float(schedule(step).numpy())


def test_warm_up_then_cosine_to_the_floor():
    schedule = WarmupCosineDecay(1e-3, warmup_steps=10, end_step=110)
    assert rate(schedule, 0) == 0.0
    assert rate(schedule, 5) == pytest.approx(5e-4)
    assert rate(schedule, 10) == pytest.approx(1e-3)
    assert rate(schedule, 60) == pytest.approx(1e-3 * (FLOOR + (1 - FLOOR) * 0.5), rel=1e-5)
    assert rate(schedule, 110) == pytest.approx(1e-3 * FLOOR)
    assert rate(schedule, 500) == pytest.approx(1e-3 * FLOOR)  # flat after the end


def test_end_by_only_brings_the_end_forward():
    schedule = WarmupCosineDecay(1e-3, warmup_steps=10, end_step=110)
    assert schedule.end_by(60) == 60
    assert rate(schedule, 60) == pytest.approx(1e-3 * FLOOR)
    assert schedule.end_by(200) == 60  # never later than planned
    assert schedule.end_by(3) == 11  # never inside the warm-up
    with pytest.raises(ValueError, match="warmup_steps < end_step"):
        WarmupCosineDecay(1e-3, warmup_steps=10, end_step=10)


def test_config_chooses_the_schedule():
    assert learning_rate_schedule(FitConfig(learning_rate=0.01), 7) == 0.01
    cosine = learning_rate_schedule(FitConfig(epochs=5, schedule="cosine", warmup_epochs=1.0), 10)
    assert isinstance(cosine, WarmupCosineDecay)
    assert (cosine.warmup_steps, cosine.initial_end_step) == (10, 50)


def test_a_deadline_ends_the_decay_with_the_last_epoch_that_fits(monkeypatch):
    clock = [0.0]
    monkeypatch.setattr("edge_rec.time_budget.time.perf_counter", lambda: clock[0])
    schedule = WarmupCosineDecay(1e-3, warmup_steps=10, end_step=400)  # planned: 40 epochs of 10 steps
    deadline = StopAtDeadline(100.0, "teacher")
    deadline.anneal(schedule, steps_per_epoch=10)

    class Model:
        stop_training = False

    deadline.set_model(Model())
    deadline.on_train_begin()
    for epoch in range(3):  # 10 s per epoch: 10 epochs fit in 100 s
        deadline.on_epoch_begin(epoch)
        clock[0] += 10.0
        deadline.on_epoch_end(epoch)
    assert int(schedule.end_step.numpy()) == 100  # 3 done + 7 left, 10 steps each
    deadline.on_epoch_begin(3)
    clock[0] += 30.0  # a slow epoch: the pace is the longest epoch's
    deadline.on_epoch_end(3)
    assert int(schedule.end_step.numpy()) == (4 + 1) * 10  # 40 s left / 30 s per epoch = 1 more
    assert not deadline.stopped_early


def test_progress_is_one_line_per_epoch_unless_stderr_is_a_terminal():
    import io

    from edge_rec.distill.training import progress_verbosity

    class Terminal(io.StringIO):
        def isatty(self) -> bool:
            return True

    assert progress_verbosity(False, io.StringIO()) == 2  # a log file: one line per epoch
    assert progress_verbosity(False, Terminal()) == 1  # a terminal: the live bar
    assert progress_verbosity(True, Terminal()) == 0
