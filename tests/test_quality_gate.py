"""The quality gate: int8 against the distilled float student, and its two warnings."""

from __future__ import annotations

import pytest

from edge_rec.paired_bootstrap import PairedRatio
from edge_rec.quality_gate import evaluate_gate


def _ratio(a: str, b: str, ratio: float, low: float, high: float) -> PairedRatio:
    return PairedRatio(a, b, "ndcg@10", ratio, low, high, users=100, resamples=1000)


@pytest.mark.parametrize(("student", "int8", "allowed", "passed"), [
    (0.40, 0.39, 0.05, True), (0.40, 0.37, 0.05, False), (0.40, 0.41, 0.0, True), (0.40, 0.30, 0.26, True),
])
def test_gate_compares_int8_with_the_distilled_student(student, int8, allowed, passed):
    gate = evaluate_gate({"teacher": 0.9, "student": student, "tflite_int8": int8}, {}, allowed)
    assert gate.passed is passed and gate.reference == "student"
    assert gate.relative_drop == pytest.approx((student - int8) / student)
    assert gate.warnings == ()


def test_gate_falls_back_to_the_teacher_without_a_student():
    gate = evaluate_gate({"teacher": 0.5, "tflite_int8": 0.4}, {}, 0.1)
    assert gate.reference == "teacher" and not gate.passed


def test_gate_warns_when_distillation_cannot_help_or_popularity_wins():
    comparisons = {
        ("teacher", "student_baseline"): _ratio("teacher", "student_baseline", 1.02, 0.97, 1.08),
        ("tflite_int8", "popularity"): _ratio("tflite_int8", "popularity", 0.9, 0.8, 1.01),
    }
    gate = evaluate_gate({"teacher": 0.5, "student": 0.4, "tflite_int8": 0.4}, comparisons, 0.05)
    assert gate.passed  # warnings do not fail the gate
    assert len(gate.warnings) == 2
    assert "teacher is not better" in gate.warnings[0] and "[0.970, 1.080]" in gate.warnings[0]
    assert "popular" in gate.warnings[1]
    strong = {
        ("teacher", "student_baseline"): _ratio("teacher", "student_baseline", 1.5, 1.3, 1.7),
        ("tflite_int8", "popularity"): _ratio("tflite_int8", "popularity", 3.0, 2.5, 3.5),
    }
    assert evaluate_gate({"teacher": 0.5, "student": 0.4, "tflite_int8": 0.4}, strong, 0.05).warnings == ()


def test_gate_judges_int8_against_the_student_that_was_shipped():
    gate = evaluate_gate(
        {"student": 0.30, "student_baseline": 0.40, "tflite_int8": 0.39}, {}, 0.05, reference="student_baseline"
    )
    assert gate.reference == "student_baseline" and gate.passed
    assert gate.relative_drop == pytest.approx(0.025)
