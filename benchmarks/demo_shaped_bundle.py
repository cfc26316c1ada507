"""An untrained int8 bundle shaped like the demo's (for runtime benchmarks without `make demo`).

    .venv/bin/python benchmarks/demo_shaped_bundle.py OUT_DIR [ITEMS]

ITEMS real items (default 1,350; ids ``show-0`` ...) plus PAD and OOV, history length 50, the demo student (embedding 15, hidden 16, position
pooling), top-K 100, converted to int8 with the project's converter on 256 random histories. Its
scores mean nothing; its graph, sizes and latency are the demo's. Imports TensorFlow.
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

CATALOG, HISTORY, TOP_K = 1352, 50, 100


def main() -> int:
    from converters.bundle_writer import write_bundle
    from converters.tflite import convert_to_tflite
    from edge_rec.config import StudentConfig
    from edge_rec.keras_shim import set_global_seed
    from edge_rec.models import build_student

    if len(sys.argv) not in (2, 3):
        print(__doc__, file=sys.stderr)
        return 2
    catalog = int(sys.argv[2]) + 2 if len(sys.argv) == 3 else CATALOG
    set_global_seed(0)
    model = build_student(StudentConfig(embedding_dim=15, hidden=(16,), pooling="position"),
                          catalog, HISTORY, sequence=False)
    rng = np.random.default_rng(0)
    calibration = np.zeros((256, HISTORY), np.int32)
    for row in calibration:
        length = rng.integers(1, HISTORY + 1)
        row[HISTORY - length:] = rng.integers(2, catalog, length)
    data = convert_to_tflite(model, "int8", history_length=HISTORY, top_k=TOP_K,
                             representative_histories=calibration)
    ids = ["<pad>", "<oov>"] + [f"show-{i}" for i in range(catalog - 2)]
    out = write_bundle(sys.argv[1], tflite_bytes=data, vocabulary_ids=ids, titles=None,
                       history_length=HISTORY, top_k=TOP_K, quantization={"variant": "int8"},
                       popularity_order=np.arange(2, catalog), metrics={},
                       build_info={"seed": 0, "source": "benchmarks/demo_shaped_bundle.py (untrained)"})
    print(out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
