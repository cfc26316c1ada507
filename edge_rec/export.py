"""The export workflow shared by ``edge-rec build`` and ``edge-rec convert``: convert -> parity -> bundle.

One function, :func:`export_bundle`, takes a Keras serving model and the prepared data it was
trained on and writes a verified bundle whose manifest always carries the same fields:
``quantization`` {variant, scheme, sparsity_encoding}, the served metrics of the exported model
on the test split (:func:`converters.tflite_evaluation.evaluate_tflite`, the rule the device
serves by), and ``build`` {seed, source, parity_top10_overlap, keras_ndcg@10, ...}.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from converters.bundle_writer import write_bundle
from converters.parity import ParityResult, check_parity, require_parity
from converters.tflite import convert_to_tflite
from converters.tflite_evaluation import evaluate_tflite
from converters.variants import DEFAULT_VARIANT
from device_runtime.bundle import serving_top_k
from edge_rec.config import ConvertConfig
from edge_rec.stages import PreparedData, representative_histories

log = logging.getLogger(__name__)

#: ``quantization.scheme`` of an int8 model fine-tuned with pruning-preserving QAT.
SCHEME_QAT = "qat-prune-preserve"
#: ``quantization.scheme`` of a model quantized after training (int8, float16, dynamic).
SCHEME_POST_TRAINING = "post-training"
#: ``quantization.scheme`` of an unquantized float32 model.
SCHEME_NONE = "none"


def quantization_scheme(variant: str, *, qat: bool) -> str:
    """The manifest's ``quantization.scheme`` for ``variant``; ``qat``: the model went through QAT."""
    if variant == "float32":
        return SCHEME_NONE
    return SCHEME_QAT if qat and variant == "int8" else SCHEME_POST_TRAINING


@dataclass(frozen=True)
class ExportResult:
    """What :func:`export_bundle` wrote: the bundle, the flatbuffer in it, its graph's ``top_k``,
    the parity check and the served test-split metrics recorded in the manifest."""

    bundle_dir: Path
    tflite: bytes
    variant: str
    top_k: int
    parity: ParityResult
    metrics: dict[str, Any]


def export_bundle(
    serving_model: Any,
    data: PreparedData,
    out_dir: str | Path,
    *,
    convert_cfg: ConvertConfig,
    seed: int,
    variant: str = DEFAULT_VARIANT,
    qat: bool = False,
    tflite: bytes | None = None,
    metrics: Mapping[str, Any] | None = None,
    titles: Sequence[str] | None = None,
    build_info: Mapping[str, Any] | None = None,
) -> ExportResult:
    """Convert ``serving_model`` (logits [B, C] over ``data``'s vocabulary) to ``variant``, check
    parity on the test split, and write a verified bundle to ``out_dir``.

    - ``convert_cfg``: ``top_k`` (capped at the catalog), ``representative_samples`` (int8
      calibration), ``sparsity_encoding``, ``parity_threshold``;
    - ``tflite``: an already converted flatbuffer of this model (skips the conversion; its graph
      must return ``serving_top_k(convert_cfg.top_k, C)`` ids); ``metrics``: its served metrics
      when already measured (else measured here);
    - ``titles``: one per vocabulary index (default: the vocabulary's own);
    - ``build_info``: extra ``build`` fields of the manifest (e.g. the model path).

    Raises ``ParityError`` (nothing is written) when the mean top-10 overlap with the Keras model
    is below ``convert_cfg.parity_threshold``; ``ConversionError`` / ``BundleError`` for bad input.
    """
    top_k = serving_top_k(convert_cfg.top_k, data.catalog_size)
    if tflite is None:
        calibration = (representative_histories(data, convert_cfg.representative_samples, seed=seed)
                       if variant == "int8" else None)
        tflite = convert_to_tflite(serving_model, variant, history_length=data.history_length, top_k=top_k,
                                   representative_histories=calibration,
                                   sparsity_encoding=convert_cfg.sparsity_encoding)
    test = data.test_set
    parity = require_parity(check_parity(serving_model, tflite, test, data.catalog_size),
                            convert_cfg.parity_threshold, variant=variant)
    log.info("parity: top-10 overlap %.3f", parity.top10_overlap)
    popularity = data.split.popularity_order()
    if metrics is None:
        metrics = evaluate_tflite(tflite, test, data.catalog_size, popularity_order=popularity)
    bundle_dir = write_bundle(
        out_dir,
        tflite_bytes=tflite,
        vocabulary_ids=data.dataset.vocab.ids,
        titles=data.dataset.vocab.titles if titles is None else titles,
        history_length=data.history_length,
        top_k=top_k,
        quantization={"variant": variant, "scheme": quantization_scheme(variant, qat=qat),
                      "sparsity_encoding": bool(convert_cfg.sparsity_encoding)},
        popularity_order=popularity,
        metrics=dict(metrics),
        build_info={"seed": seed, "source": data.source, "parity_top10_overlap": parity.top10_overlap,
                    "keras_ndcg@10": parity.keras_ndcg, **dict(build_info or {})},
    )
    return ExportResult(bundle_dir=bundle_dir, tflite=tflite, variant=variant, top_k=top_k, parity=parity,
                        metrics=dict(metrics))
