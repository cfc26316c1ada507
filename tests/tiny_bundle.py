"""A tiny but real edge-rec bundle, built at test time with TensorFlow.

A tf_keras model (Embedding -> mean -> Dense(C)) wrapped in the serving signature of the
contract (``history`` int32[1, L] -> ``top_ids`` int32[1, K], ``top_scores`` float32[1, K], top-K
over columns 2..C-1 inside the graph), converted with the TFLite converter and written by
:func:`converters.bundle_writer.write_bundle`.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from device_runtime.bundle import MANIFEST_FILE, manifest_digest

TINY_ITEMS = 30
TINY_CATALOG = TINY_ITEMS + 2
TINY_HISTORY_LENGTH = 5
TINY_TOP_K = 10
# external ids are numeric strings, so histories may be given as ints too
TINY_ITEM_IDS = ["<pad>", "<oov>"] + [str(1000 + i) for i in range(TINY_ITEMS)]
TINY_TITLES = ["", ""] + [f"Track {i}" for i in range(TINY_ITEMS)]
# popularity: a fixed, non-trivial order (reverse index order)
TINY_POPULARITY = list(range(TINY_CATALOG - 1, 1, -1))


def tiny_tflite_bytes(*, seed: int = 0, history_length: int = TINY_HISTORY_LENGTH,
                      top_k: int = TINY_TOP_K, catalog_size: int = TINY_CATALOG) -> bytes:
    """Convert a small seeded model with the contract's serving signature to TFLite bytes."""
    from edge_rec.keras_shim import keras, set_global_seed, tf

    set_global_seed(seed)
    history = keras.Input(shape=(history_length,), dtype="int32", name="history")
    embedded = keras.layers.Embedding(catalog_size, 8, name="items")(history)
    pooled = keras.layers.GlobalAveragePooling1D()(embedded)
    logits = keras.layers.Dense(catalog_size, name="logits")(pooled)
    model = keras.Model(history, logits)

    @tf.function(input_signature=[tf.TensorSpec([1, history_length], tf.int32, name="history")])
    def serve(history):
        scores = model(history)[:, 2:]
        top = tf.math.top_k(scores, k=top_k)
        return {"top_ids": top.indices + 2, "top_scores": top.values}

    concrete = serve.get_concrete_function()
    converter = tf.lite.TFLiteConverter.from_concrete_functions([concrete], model)
    return converter.convert()


def build_tiny_bundle(out_dir: Path, *, seed: int = 0) -> Path:
    """Write the tiny bundle to ``out_dir`` and return its path."""
    from converters.bundle_writer import write_bundle

    return write_bundle(
        out_dir,
        tflite_bytes=tiny_tflite_bytes(seed=seed),
        vocabulary_ids=TINY_ITEM_IDS,
        titles=TINY_TITLES,
        history_length=TINY_HISTORY_LENGTH,
        top_k=TINY_TOP_K,
        quantization={"variant": "float32"},
        popularity_order=np.asarray(TINY_POPULARITY, dtype=np.int64),
        metrics={"ndcg@10": 0.1},
        build_info={"seed": seed, "source": "tests/tiny_bundle.py"},
    )


def rewrite_manifest(bundle_dir: Path, change, *, resign: bool = True) -> None:
    """Apply ``change(manifest_dict)`` to a bundle's manifest; re-sign its digest when ``resign``."""
    path = bundle_dir / MANIFEST_FILE
    manifest = json.loads(path.read_text())
    change(manifest)
    if resign:
        manifest["manifest_sha256"] = manifest_digest(manifest)
    path.write_text(json.dumps(manifest, indent=2))


if __name__ == "__main__":  # build one by hand: python tests/tiny_bundle.py OUT_DIR
    import sys

    print(build_tiny_bundle(Path(sys.argv[1])))
