"""Build passes (Olive-style): each step of ``edge-rec build`` is a :class:`BuildPass` in a
registry (:mod:`edge_rec.passes.registry`); the workflow is the registry's order. Stage names are
the passes' constants, exported here."""

# the built-in passes register themselves in workflow order; this import comes first so that
# importing any one pass module cannot change that order
from edge_rec.passes import builtin  # noqa: F401, I001
from edge_rec.passes.base import BuildPass
from edge_rec.passes.bundle import BUNDLE
from edge_rec.passes.choose_student import CHOOSE_STUDENT
from edge_rec.passes.cold_items import COLD_ITEMS
from edge_rec.passes.convert import CONVERT, TFLITE_INT8, tflite_stage
from edge_rec.passes.lowrank import LOWRANK
from edge_rec.passes.popularity import POPULARITY
from edge_rec.passes.prune import PRUNED
from edge_rec.passes.qat import QAT
from edge_rec.passes.registry import get, register, registered, unregister
from edge_rec.passes.size_comparison import SIZE_COMPARISON
from edge_rec.passes.student import STUDENT, STUDENT_BASELINE
from edge_rec.passes.teacher import TEACHER

#: The stage that loads the log (not a pass: it runs before the budget's passes and sizes them).
DATA = "data"

__all__ = [
    "BUNDLE", "CHOOSE_STUDENT", "COLD_ITEMS", "CONVERT", "DATA", "LOWRANK", "POPULARITY", "PRUNED", "QAT", "SIZE_COMPARISON",
    "STUDENT", "STUDENT_BASELINE", "TEACHER", "TFLITE_INT8", "BuildPass", "get", "register", "registered",
    "tflite_stage", "unregister",
]
