"""Synthetic inputs for any TFLite model, made from its input signature.

A third-party ``.tflite`` comes without data, so the benchmark feeds it random inputs of the
right shape and dtype: integer inputs that index an embedding table (a ``GATHER`` whose indices
are the input) get ids within that table's rows, so the model runs its real lookup path instead
of reading out of range; other integer inputs get 0 or 1 (in range for any table, any mask);
float inputs get standard-normal values; int8/uint8/int16 inputs (full-integer quantized models)
get values over the dtype's whole range; bool inputs get random booleans.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

GATHER_OPS = ("GATHER", "GATHER_ND", "EMBEDDING_LOOKUP")
SAFE_ID_HIGH = 2  # exclusive bound used when no embedding table reveals the id range
QUANTIZED_DTYPES = (np.int8, np.uint8, np.int16)


def id_upper_bounds(ops: Sequence[Mapping[str, Any]], tensor_shapes: Mapping[int, Sequence[int]],
                    input_indices: Sequence[int]) -> dict[int, int]:
    """For each input tensor index used as indices of a gather, the smallest table's row count.

    ``ops`` are interpreter op details (``op_name``, ``inputs``); ``tensor_shapes`` maps tensor
    index to shape. Inputs that feed no gather are absent from the result.
    """
    wanted = set(int(i) for i in input_indices)
    bounds: dict[int, int] = {}
    for op in ops:
        if op.get("op_name") not in GATHER_OPS:
            continue
        operands = [int(i) for i in op.get("inputs", [])]
        if len(operands) < 2 or operands[1] not in wanted:
            continue
        shape = tensor_shapes.get(operands[0])
        if shape is None or len(shape) == 0 or int(shape[0]) < 1:
            continue
        rows = int(shape[0])
        bounds[operands[1]] = min(rows, bounds.get(operands[1], rows))
    return bounds


def synthesize_input(detail: Mapping[str, Any], rng: np.random.Generator, *,
                     id_high: int | None = None, shape: Sequence[int] | None = None) -> np.ndarray:
    """A random array for one interpreter input ``detail`` (``dtype``, ``shape``).

    ``id_high`` is the exclusive upper bound for integer ids (see :func:`id_upper_bounds`);
    ``shape`` overrides the detail's shape (e.g. a resized batch). Raises ``ValueError`` for an
    input dtype that cannot be synthesized (strings) or a dynamic dimension without ``shape``.
    """
    dims = tuple(int(d) for d in (shape if shape is not None else detail["shape"]))
    if any(d < 0 for d in dims):
        raise ValueError(f"input {detail.get('name')!r} has a dynamic shape {dims}; pass a shape")
    dtype = np.dtype(detail["dtype"])
    if dtype == np.bool_:
        return rng.integers(0, 2, size=dims).astype(np.bool_)
    if np.issubdtype(dtype, np.floating):
        return rng.standard_normal(size=dims).astype(dtype)
    if np.issubdtype(dtype, np.integer):
        if id_high is not None:
            return rng.integers(0, max(1, id_high), size=dims).astype(dtype)
        if dtype.type in QUANTIZED_DTYPES:
            info = np.iinfo(dtype)
            return rng.integers(info.min, int(info.max) + 1, size=dims).astype(dtype)
        return rng.integers(0, SAFE_ID_HIGH, size=dims).astype(dtype)
    raise ValueError(
        f"input {detail.get('name')!r} has dtype {dtype}, which the benchmark cannot synthesize; "
        "benchmark this model through a bundle or with numeric inputs"
    )
