"""The built-in passes of ``edge-rec build``, in workflow order: each module registers its pass
when imported. A new built-in pass is one file in this package and one line here."""

import importlib

BUILTIN_PASS_MODULES = (
    "popularity",
    "teacher",
    "student",
    "choose_student",
    "prune",
    "lowrank",
    "qat",
    "convert",
    "bundle",
    "size_comparison",
    "cold_items",
)

for _module in BUILTIN_PASS_MODULES:
    importlib.import_module(f"edge_rec.passes.{_module}")
