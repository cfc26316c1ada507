"""Keras models of edge-rec: the teacher, the int8-friendly student and their custom layers."""

from edge_rec.models.layers import CUSTOM_OBJECTS as _LAYERS
from edge_rec.models.student import build_student, student_serving_model
from edge_rec.models.teacher import build_teacher

#: Every custom Keras object of edge-rec models, for loading saved models.
CUSTOM_OBJECTS = dict(_LAYERS)

__all__ = ["CUSTOM_OBJECTS", "build_student", "build_teacher", "student_serving_model"]
