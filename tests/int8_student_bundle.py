"""A trained tiny student converted to int8 and written as a bundle (the shape a build ships).

Used by the tests that check which interpreters can serve a real int8 student graph.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from tiny_student import CATALOG, HISTORY, clustered_histories, trained_serving_student

INT8_TOP_K = 20
INT8_ITEM_IDS = ["<pad>", "<oov>"] + [f"item-{i}" for i in range(CATALOG - 2)]


def int8_student_bytes(seed: int = 0, epochs: int = 3) -> bytes:
    """The int8 TFLite bytes of a trained tiny student (the project's converter, real calibration)."""
    from converters.tflite import convert_to_tflite

    model = trained_serving_student(seed=seed, epochs=epochs)
    calibration, _ = clustered_histories(256, seed + 3)
    return convert_to_tflite(model, "int8", history_length=HISTORY, top_k=INT8_TOP_K,
                             representative_histories=calibration)


def build_int8_student_bundle(out_dir: Path, *, seed: int = 0) -> Path:
    """Write the int8 student bundle to ``out_dir`` and return its path."""
    from converters.bundle_writer import write_bundle

    return write_bundle(
        out_dir,
        tflite_bytes=int8_student_bytes(seed),
        vocabulary_ids=INT8_ITEM_IDS,
        titles=None,
        history_length=HISTORY,
        top_k=INT8_TOP_K,
        quantization={"variant": "int8"},
        popularity_order=np.arange(2, CATALOG, dtype=np.int64),
        metrics={},
        build_info={"seed": seed, "source": "tests/int8_student_bundle.py"},
    )


def fixed_histories(count: int = 20, seed: int = 11) -> list[list[str]]:
    """``count`` clustered histories as external ids (lengths 1..L; no padding-only rows)."""
    rows, _ = clustered_histories(count, seed)
    return [[INT8_ITEM_IDS[i] for i in row if i > 0] for row in rows]
