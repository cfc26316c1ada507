"""Model compression stages: TF-MOT magnitude pruning, pruning-preserving QAT, low-rank output.

Each public function is a named transformation ``model -> model`` (plus a report where the
transformation changes the model's size). Import the submodules directly; they need TensorFlow.
"""
