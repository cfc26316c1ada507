"""Keras models of edge-rec: the teacher, the int8-friendly student and their custom layers."""

from edge_rec.models.layers import CUSTOM_OBJECTS
from edge_rec.models.student import build_student, student_serving_model
from edge_rec.models.teacher import build_teacher

__all__ = ["CUSTOM_OBJECTS", "build_student", "build_teacher", "student_serving_model"]
