"""Keras serving model -> TFLite flatbuffer with the top-K recommendation inside the graph.

Every variant has one signature, ``serving_default``: input ``history`` int32[1, L]; outputs
``top_ids`` int32[1, K] (item indices, never PAD 0 or OOV 1) and ``top_scores`` float32[1, K].
PAD and OOV are excluded by slicing them off the logits before ``TopKV2`` and shifting the indices
back by 2 — not by adding a large negative constant, which would blow up the int8 output scale.

Variants: ``float32`` (no optimization), ``float16`` (float16 weights), ``dynamic`` (int8
weights, float activations) and ``int8`` (full integer: ``TFLITE_BUILTINS_INT8``, activations
calibrated on real training histories; the id input stays int32 and ``top_scores`` is
dequantized to float32).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np

from converters.tensorflow_env import load_tensorflow, quiet_native_stderr
from converters.variants import VARIANTS
from device_runtime.bundle import (
    FIRST_ITEM_INDEX,
    HISTORY_INPUT,
    SIGNATURE_KEY,
    TOP_IDS_OUTPUT,
    TOP_SCORES_OUTPUT,
    real_item_count,
)

tf, keras = load_tensorflow()

__all__ = ["VARIANTS", "ConversionError", "TFLiteModelInfo", "check_histories", "convert_to_tflite",
           "describe_tflite", "run_tflite", "serving_catalog_size", "serving_function"]


class ConversionError(ValueError):
    """A model or argument cannot be converted; the message says what was expected."""


def _logits_index(model: keras.Model) -> int:
    names = list(model.output_names)
    return names.index("logits") if "logits" in names else 0


def serving_catalog_size(serving_model: keras.Model, history_length: int) -> int:
    """The catalog size ``C`` of a serving model, after checking its input and logits shapes."""
    if not isinstance(serving_model, keras.Model):
        raise ConversionError(f"expected a tf_keras Model, got {type(serving_model).__name__}")
    if len(serving_model.inputs) != 1:
        raise ConversionError(f"expected a model with one input 'history', got {len(serving_model.inputs)} inputs")
    shape = tuple(serving_model.inputs[0].shape)
    if len(shape) != 2 or shape[1] not in (None, history_length):
        raise ConversionError(
            f"model input has shape {shape}; expected (None, {history_length}) for history_length={history_length}"
        )
    logits_shape = tuple(serving_model.outputs[_logits_index(serving_model)].shape)
    if len(logits_shape) != 2 or logits_shape[1] is None:
        raise ConversionError(
            f"model logits have shape {logits_shape}; expected a serving model with logits (None, C). "
            "A sequence-mode model (None, L, C) must first go through student_serving_model()"
        )
    return int(logits_shape[1])


def check_histories(histories: np.ndarray, history_length: int, catalog_size: int, *, field: str) -> np.ndarray:
    """``histories`` as int32[N, L] after checking shape and index range (errors name ``field``)."""
    array = np.asarray(histories)
    if array.ndim != 2 or array.shape[1] != history_length or array.shape[0] == 0:
        raise ConversionError(f"{field}: expected an integer array [N >= 1, {history_length}], got shape {array.shape}")
    if not np.issubdtype(array.dtype, np.integer):
        raise ConversionError(f"{field}: expected integer item indices, got dtype {array.dtype}")
    if array.min() < 0 or array.max() >= catalog_size:
        raise ConversionError(
            f"{field}: item indices must lie in [0, {catalog_size - 1}], got [{array.min()}, {array.max()}]"
        )
    return array.astype(np.int32)


def serving_function(serving_model: keras.Model, *, history_length: int, top_k: int):
    """The concrete ``tf.function`` ``history int32[1, L] -> {top_ids, top_scores}`` of the model."""
    catalog_size = serving_catalog_size(serving_model, history_length)
    real_items = real_item_count(catalog_size)
    if isinstance(top_k, bool) or not isinstance(top_k, int) or not 1 <= top_k <= real_items:
        raise ConversionError(
            f"top_k: expected an integer in [1, {real_items}] (real items in the catalog), got {top_k!r}"
        )
    logits_at = _logits_index(serving_model)

    @tf.function(input_signature=[tf.TensorSpec([1, history_length], tf.int32, name=HISTORY_INPUT)])
    def serve(history):
        outputs = serving_model(history, training=False)
        logits = outputs[logits_at] if isinstance(outputs, list | tuple) else outputs
        scores, indices = tf.math.top_k(logits[:, FIRST_ITEM_INDEX:], k=top_k, sorted=True)
        return {TOP_IDS_OUTPUT: indices + FIRST_ITEM_INDEX, TOP_SCORES_OUTPUT: scores}

    return serve.get_concrete_function()


def _representative_dataset(histories: np.ndarray):
    def generate() -> Iterator[dict[str, np.ndarray]]:
        for row in histories:
            yield {HISTORY_INPUT: row[None, :]}

    return generate


def convert_to_tflite(
    serving_model: keras.Model,
    variant: str,
    *,
    history_length: int,
    top_k: int,
    representative_histories: np.ndarray | None = None,
    sparsity_encoding: bool = False,
) -> bytes:
    """Convert a serving model (logits [B, C]) to a TFLite flatbuffer of the given variant.

    ``representative_histories`` (int32[N, L], real training histories) is required for ``int8``
    and ignored otherwise. ``sparsity_encoding`` adds ``Optimize.EXPERIMENTAL_SPARSITY`` so that
    pruned weights may be stored in a sparse format. Raises :class:`ConversionError` for a wrong
    variant, model shape, ``top_k`` or representative data.
    """
    if variant not in VARIANTS:
        raise ConversionError(f"variant: expected one of {', '.join(VARIANTS)}, got {variant!r}")
    concrete = serving_function(serving_model, history_length=history_length, top_k=top_k)
    converter = tf.lite.TFLiteConverter.from_concrete_functions([concrete], serving_model)
    optimizations: list = []
    if variant in ("float16", "dynamic", "int8"):
        optimizations.append(tf.lite.Optimize.DEFAULT)
    if variant == "float16":
        converter.target_spec.supported_types = [tf.float16]
    if variant == "int8":
        if representative_histories is None:
            raise ConversionError(
                "representative_histories: the int8 variant needs real training histories int32[N, L] "
                "to calibrate activations (e.g. split.prefix_examples(L)[0][:256])"
            )
        catalog_size = serving_catalog_size(serving_model, history_length)
        rows = check_histories(
            representative_histories, history_length, catalog_size, field="representative_histories"
        )
        converter.representative_dataset = _representative_dataset(rows)
        converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
    if sparsity_encoding:
        optimizations.append(tf.lite.Optimize.EXPERIMENTAL_SPARSITY)
    converter.optimizations = optimizations
    try:
        with quiet_native_stderr():  # the converter's "fully_quantize: ..." lines
            return bytes(converter.convert())
    except Exception as exc:  # the converter raises several unrelated types
        raise ConversionError(f"TFLite conversion of variant {variant!r} failed: {exc}") from exc


@dataclass(frozen=True)
class TFLiteModelInfo:
    """What a TFLite flatbuffer contains, read through the interpreter.

    ``signatures``: {key: {"inputs": [...], "outputs": [...]}}; ``inputs`` / ``outputs``:
    {name: (shape, dtype name)} of the ``serving_default`` signature; ``ops``: op names in
    execution order; ``tensor_dtypes``: {tensor name: dtype name} of every tensor;
    ``constant_dtypes``: dtype names of the tensors that hold weights (buffers with data).
    """

    size_bytes: int
    signatures: dict
    inputs: dict
    outputs: dict
    ops: tuple[str, ...]
    tensor_dtypes: dict
    weight_dtypes: dict


def _interpreter(tflite_bytes: bytes):
    from ai_edge_litert.interpreter import Interpreter

    with quiet_native_stderr():  # "INFO: Created TensorFlow Lite XNNPACK delegate for CPU."
        interpreter = Interpreter(model_content=tflite_bytes)
        interpreter.allocate_tensors()
    return interpreter


def describe_tflite(tflite_bytes: bytes) -> TFLiteModelInfo:
    """Signature, op list and tensor dtypes of a flatbuffer (loaded in ``ai_edge_litert``)."""
    interpreter = _interpreter(tflite_bytes)
    runner = interpreter.get_signature_runner(SIGNATURE_KEY)
    inputs = {n: (tuple(int(v) for v in d["shape"]), np.dtype(d["dtype"]).name) for n, d in runner.get_input_details().items()}
    outputs = {n: (tuple(int(v) for v in d["shape"]), np.dtype(d["dtype"]).name) for n, d in runner.get_output_details().items()}
    ops = tuple(op["op_name"] for op in interpreter._get_ops_details())  # noqa: SLF001 - no public op list
    details = interpreter.get_tensor_details()
    op_inputs: set[int] = set()
    produced: set[int] = set()
    for op in interpreter._get_ops_details():  # noqa: SLF001
        op_inputs.update(int(i) for i in op["inputs"] if i >= 0)
        produced.update(int(i) for i in op["outputs"] if i >= 0)
    signature_inputs = {d["index"] for d in runner.get_input_details().values()}
    weight_dtypes = {
        d["name"]: np.dtype(d["dtype"]).name
        for d in details
        if d["index"] in op_inputs and d["index"] not in produced and d["index"] not in signature_inputs
        and len(d["shape"]) >= 2
    }
    return TFLiteModelInfo(
        size_bytes=len(tflite_bytes),
        signatures=interpreter.get_signature_list(),
        inputs=inputs,
        outputs=outputs,
        ops=ops,
        tensor_dtypes={d["name"]: np.dtype(d["dtype"]).name for d in details},
        weight_dtypes=weight_dtypes,
    )


def run_tflite(tflite_bytes: bytes, histories: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``(top_ids int32[N, K], top_scores float32[N, K])`` running the model one row at a time."""
    interpreter = _interpreter(tflite_bytes)
    runner = interpreter.get_signature_runner(SIGNATURE_KEY)
    ids, scores = [], []
    for row in np.asarray(histories, dtype=np.int32):
        out = runner(**{HISTORY_INPUT: row[None, :]})
        ids.append(out[TOP_IDS_OUTPUT][0])
        scores.append(out[TOP_SCORES_OUTPUT][0])
    return np.stack(ids).astype(np.int32), np.stack(scores).astype(np.float32)
