"""The quality gate of a build: what a device maker needs to hear before shipping a bundle.

- **Fails** when the int8 bundle loses more than ``max_ndcg_drop`` (relative NDCG@10) of the
  float student it was compressed from (the distilled one, unless the student trained alone
  validated better: :func:`edge_rec.stages.choose_student`): compression must not cost real
  quality.
- **Warns** when the teacher is not significantly better than the student trained alone
  (distillation cannot be counted on then, though soft labels from a teacher as good as the
  student may still help a little: on the weak-order preset a 1.04x teacher gave a 1.09x
  student; train a stronger teacher), and when the bundle is not
  significantly better than recommending the most popular items.

"Significantly" means the 95 % paired bootstrap interval of the ratio lies above 1
(:mod:`edge_rec.paired_bootstrap`).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from edge_rec.paired_bootstrap import PairedRatio
from edge_rec.passes import POPULARITY, STUDENT, STUDENT_BASELINE, TEACHER, TFLITE_INT8

#: The comparisons every build reports, (numerator, denominator): what distillation can buy,
#: what it bought, what compression cost, and whether the models beat popularity.
COMPARISONS = (
    (TEACHER, STUDENT_BASELINE),
    (STUDENT, STUDENT_BASELINE),
    (TFLITE_INT8, STUDENT),
    (TEACHER, POPULARITY),
    (TFLITE_INT8, POPULARITY),
)


@dataclass(frozen=True)
class GateResult:
    """The gate's verdict: int8 NDCG@10 against the distilled float student, plus warnings."""

    passed: bool
    max_ndcg_drop: float
    reference: str
    reference_ndcg: float
    int8_ndcg: float
    relative_drop: float
    teacher_ndcg: float
    warnings: tuple[str, ...] = ()


def _ratio_text(ratio: PairedRatio) -> str:
    return f"{ratio.ratio:.3f}x, 95% interval [{ratio.low:.3f}, {ratio.high:.3f}]"


def evaluate_gate(
    ndcg: Mapping[str, float],
    comparisons: Mapping[tuple[str, str], PairedRatio],
    max_ndcg_drop: float,
    *,
    reference: str = STUDENT,
) -> GateResult:
    """Judge a build from each stage's NDCG@10 and the paired comparisons of :data:`COMPARISONS`.

    The reference is the float student that was compressed: ``reference`` (the distilled
    ``student``, or ``student_baseline`` when the student alone validated better), the
    ``teacher`` when no student was trained. Comparisons missing from ``comparisons`` produce no
    warning.
    """
    reference = reference if reference in ndcg else TEACHER
    ref, int8 = ndcg[reference], ndcg[TFLITE_INT8]
    drop = (ref - int8) / ref if ref > 0 else 0.0
    warnings = []
    teacher_vs_alone = comparisons.get((TEACHER, STUDENT_BASELINE))
    if teacher_vs_alone is not None and teacher_vs_alone.verdict != "better":
        warnings.append(
            "the teacher is not better than the student trained alone "
            f"({_ratio_text(teacher_vs_alone)}): distillation cannot be counted on to help (the "
            "student vs student_baseline row says whether it did); train a stronger teacher (more "
            "epochs: a larger --time-budget, or longer histories)"
        )
    int8_vs_popularity = comparisons.get((TFLITE_INT8, POPULARITY))
    if int8_vs_popularity is not None and int8_vs_popularity.verdict != "better":
        warnings.append(
            "the int8 bundle does not beat recommending the most popular items "
            f"({_ratio_text(int8_vs_popularity)})"
        )
    return GateResult(
        passed=bool(drop <= max_ndcg_drop),
        max_ndcg_drop=max_ndcg_drop,
        reference=reference,
        reference_ndcg=ref,
        int8_ndcg=int8,
        relative_drop=drop,
        teacher_ndcg=ndcg.get(TEACHER, 0.0),
        warnings=tuple(warnings),
    )
