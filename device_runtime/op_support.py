"""Which TFLite interpreters can run a model, from its operators and their input dtypes.

The rule is a table of known gaps, not a full op registry: an interpreter is listed as able to run
a model unless one of the model's (operator, input dtype) pairs is a known gap of that
interpreter. The gaps were measured, not guessed: ``tflite-runtime`` 2.14 (its last release)
fails to invoke an int8 or int16 ``DIV`` ("Div only supports FLOAT32, INT32 and quantized UINT8").
Add a row here when another gap is found; ``edge-rec inspect`` and the bundle tests read it.
"""

from __future__ import annotations

from collections.abc import Iterable

AI_EDGE_LITERT = "ai-edge-litert"
TFLITE_RUNTIME_2_14 = "tflite-runtime 2.14"
INTERPRETERS = (AI_EDGE_LITERT, TFLITE_RUNTIME_2_14)

# interpreter -> {(op name, dtype of the op's first input)} it cannot invoke
KNOWN_GAPS: dict[str, frozenset[tuple[str, str]]] = {
    AI_EDGE_LITERT: frozenset(),
    TFLITE_RUNTIME_2_14: frozenset({("DIV", "int8"), ("DIV", "int16")}),
}


def op_key(op_name: str, input_dtype: str) -> str:
    """The ``"OP:dtype"`` form used in model descriptions (e.g. ``"DIV:int8"``)."""
    return f"{op_name}:{input_dtype}"


def unsupported_ops(typed_ops: Iterable[tuple[str, str]], interpreter: str) -> list[str]:
    """The ``"OP:dtype"`` keys of ``typed_ops`` that ``interpreter`` cannot run (sorted, unique).

    Raises ``ValueError`` for an interpreter not in :data:`INTERPRETERS`.
    """
    if interpreter not in KNOWN_GAPS:
        raise ValueError(f"interpreter {interpreter!r} is unknown; expected one of {', '.join(INTERPRETERS)}")
    gaps = KNOWN_GAPS[interpreter]
    return sorted({op_key(op, dtype) for op, dtype in typed_ops if (op, dtype) in gaps})


def runs_on(typed_ops: Iterable[tuple[str, str]]) -> list[str]:
    """The interpreters of :data:`INTERPRETERS` that can run a model with these (op, input dtype)
    pairs, in that order."""
    typed = list(typed_ops)
    return [name for name in INTERPRETERS if not unsupported_ops(typed, name)]
