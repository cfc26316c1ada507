"""The names of a build's stages: the keys of ``report.json["stages"]``, of the run directory's
model folders and timings, and of the comparisons and the gate. Written once, here.

They are plain strings (they are JSON keys and folder names); import the constants rather than
spelling a name again.
"""

from __future__ import annotations

from converters.variants import VARIANTS

DATA = "data"
POPULARITY = "popularity"
TEACHER = "teacher"
STUDENT_BASELINE = "student_baseline"  # the student trained alone
STUDENT = "student"  # the distilled student
PRUNED = "pruned"
LOWRANK = "lowrank"
QAT = "qat"
BUNDLE = "bundle"



def tflite_stage(variant: str) -> str:
    """The stage name of a TFLite variant (``tflite_int8``, ...)."""
    if variant not in VARIANTS:
        raise ValueError(f"variant: expected one of {', '.join(VARIANTS)}, got {variant!r}")
    return f"tflite_{variant}"


TFLITE_INT8 = tflite_stage("int8")

#: Every stage in the order tables and charts show them.
STAGE_ORDER = (POPULARITY, TEACHER, STUDENT_BASELINE, STUDENT, PRUNED, QAT, LOWRANK,
               *(tflite_stage(v) for v in VARIANTS))
