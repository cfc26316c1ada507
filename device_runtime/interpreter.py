"""TFLite interpreter backends, model-byte sanity checks and model introspection.

Backends, in the order ``backend="auto"`` tries them: ``ai_edge_litert`` (maintained, works with
numpy 2), ``tflite_runtime`` (its predecessor; 2.14 fails under numpy 2) and ``tensorflow``
(``tensorflow.lite``; only when explicitly installed on a development machine — a device never
needs it). This module imports no backend at module level.

Every model is checked by :func:`check_model_bytes` before it reaches an interpreter, so a garbage
or truncated file raises :class:`ModelFormatError` instead of reaching native code unchecked.
"""

from __future__ import annotations

import importlib
import struct
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from device_runtime.bundle_schema import BundleError
from device_runtime.native_stderr import native_stderr_to_logging
from device_runtime.op_support import op_key, runs_on

BACKENDS = ("ai_edge_litert", "tflite_runtime", "tensorflow")
INSTALL_HINT = "pip install 'edge-rec[device]'  (or: pip install ai-edge-litert)"
LEAN_INSTALL_HINT = "pip install 'edge-rec[device-lean]': tflite-runtime 2.14 with numpy 1.x, Python <= 3.11"
TFLITE_IDENTIFIER = b"TFL3"
MIN_MODEL_BYTES = 16

_BACKEND_MODULES = {
    "ai_edge_litert": "ai_edge_litert.interpreter",
    "tflite_runtime": "tflite_runtime.interpreter",
    "tensorflow": "tensorflow.lite",
}


class InterpreterUnavailableError(ImportError):
    """No usable TFLite interpreter backend is installed; the message says which pip command fixes it."""


class ModelFormatError(BundleError):
    """Bytes that are not a loadable TFLite model (wrong identifier, truncated, rejected, or a
    signature naming tensors the model does not have); a :class:`BundleError`."""


@dataclass(frozen=True)
class Backend:
    """A resolved interpreter backend: its name and its ``Interpreter`` class."""

    name: str
    interpreter_class: type


@dataclass(frozen=True)
class SignatureSpec:
    """Inputs and outputs of one signature: ``{name: (shape, numpy dtype name, tensor index)}``."""

    key: str
    inputs: dict[str, tuple[tuple[int, ...], str, int]]
    outputs: dict[str, tuple[tuple[int, ...], str, int]]


@dataclass(frozen=True)
class ModelDescription:
    """What :func:`describe_model` learns about a model: signatures, op histogram, tensor dtypes.

    ``ops`` is empty (and ``ops_available`` False) when the backend cannot list operators.
    ``typed_ops`` counts ``"OP:dtype"`` (the dtype of each op's first input, e.g. ``"DIV:int8"``)
    and ``runs_on`` names the interpreters that can run the model
    (:func:`device_runtime.op_support.runs_on`; empty when the ops are not available).
    """

    backend: str
    size_bytes: int
    signatures: dict[str, SignatureSpec]
    inputs: list[dict[str, Any]]
    outputs: list[dict[str, Any]]
    ops: dict[str, int] = field(default_factory=dict)
    ops_available: bool = False
    tensor_dtypes: dict[str, int] = field(default_factory=dict)
    typed_ops: dict[str, int] = field(default_factory=dict)
    runs_on: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form."""
        return {
            "backend": self.backend,
            "size_bytes": self.size_bytes,
            "signatures": {
                key: {
                    "inputs": {n: {"shape": list(s), "dtype": d} for n, (s, d, _) in sig.inputs.items()},
                    "outputs": {n: {"shape": list(s), "dtype": d} for n, (s, d, _) in sig.outputs.items()},
                }
                for key, sig in self.signatures.items()
            },
            "inputs": self.inputs,
            "outputs": self.outputs,
            "ops": self.ops,
            "ops_available": self.ops_available,
            "tensor_dtypes": self.tensor_dtypes,
            "typed_ops": self.typed_ops,
            "runs_on": list(self.runs_on),
        }


def resolve_backend(backend: str = "auto") -> Backend:
    """Import and return the requested interpreter backend.

    ``"auto"`` tries ``ai_edge_litert``, ``tflite_runtime``, ``tensorflow`` in that order and takes
    the first that imports (any import-time failure counts as not installed). Raises
    :class:`InterpreterUnavailableError` with the pip command that fixes it (for a backend built
    against NumPy 1.x under numpy 2: install ``numpy<2`` or use ai-edge-litert), or ``ValueError``
    for an unknown backend name.
    """
    if backend != "auto" and backend not in BACKENDS:
        raise ValueError(f"backend {backend!r} is unknown; expected 'auto' or one of {', '.join(BACKENDS)}")
    candidates = BACKENDS if backend == "auto" else (backend,)
    failures = []
    abi_mismatch = None
    for name in candidates:
        try:
            module = importlib.import_module(_BACKEND_MODULES[name])
            return Backend(name=name, interpreter_class=module.Interpreter)
        except Exception as exc:  # noqa: BLE001 - a broken install is as good as a missing one
            if is_numpy_abi_error(exc):
                if backend != "auto":
                    raise InterpreterUnavailableError(numpy_abi_message(name)) from exc
                abi_mismatch = abi_mismatch or name
            failures.append(f"{name}: {type(exc).__name__}: {exc}")
    fix = numpy_abi_message(abi_mismatch) if abi_mismatch else f"Install one with: {INSTALL_HINT}"
    raise InterpreterUnavailableError(
        "no TFLite interpreter backend could be imported (" + "; ".join(failures) + "). " + fix
    )


def check_model_bytes(data: bytes, *, source: str = "model") -> None:
    """Cheap structural checks on TFLite flatbuffer bytes before any native code sees them.

    Checks the ``TFL3`` file identifier, a minimum size, that the root table offset and its vtable
    lie inside the buffer. Raises :class:`ModelFormatError` naming ``source``.
    """
    if not isinstance(data, (bytes, bytearray, memoryview)):
        raise ModelFormatError(f"{source}: expected model bytes, got {type(data).__name__}")
    size = len(data)
    if size < MIN_MODEL_BYTES:
        raise ModelFormatError(f"{source}: {size} bytes is too small to be a TFLite model "
                               "(truncated file?); re-export or re-download it")
    if bytes(data[4:8]) != TFLITE_IDENTIFIER:
        raise ModelFormatError(f"{source}: not a TFLite flatbuffer (file identifier "
                               f"{bytes(data[4:8])!r}, expected {TFLITE_IDENTIFIER!r})")
    root = struct.unpack_from("<I", data, 0)[0]
    if not 8 <= root <= size - 4:
        raise ModelFormatError(f"{source}: root table offset {root} lies outside the {size}-byte "
                               "file; the model is truncated or corrupt")
    vtable = root - struct.unpack_from("<i", data, root)[0]
    if not 0 <= vtable <= size - 4:
        raise ModelFormatError(f"{source}: flatbuffer vtable offset {vtable} lies outside the file; "
                               "the model is truncated or corrupt")
    vtable_size = struct.unpack_from("<H", data, vtable)[0]
    if vtable_size < 4 or vtable + vtable_size > size:
        raise ModelFormatError(f"{source}: flatbuffer vtable is malformed; the model is truncated or corrupt")


def create_interpreter(model_bytes: bytes, *, num_threads: int = 1, backend: str | Backend = "auto",
                       source: str = "model",
                       before_allocate: Callable[[Any], object] | None = None) -> Any:
    """A new interpreter for ``model_bytes`` with tensors allocated.

    The bytes are checked first (:func:`check_model_bytes`); a model the backend rejects raises
    :class:`ModelFormatError` naming ``source``. ``num_threads`` must be >= 1.
    ``before_allocate(interpreter)`` runs between construction and ``allocate_tensors`` (e.g. a
    memory check); whatever it raises propagates and the tensors are never allocated. What the
    backend prints natively meanwhile goes to ``logging`` (its INFO lines at DEBUG), not stderr:
    see :mod:`device_runtime.native_stderr`.
    """
    if type(num_threads) is not int or num_threads < 1:
        raise ValueError(f"num_threads must be an integer >= 1, got {num_threads!r}")
    check_model_bytes(model_bytes, source=source)
    chosen = backend if isinstance(backend, Backend) else resolve_backend(backend)
    with native_stderr_to_logging(__name__):  # the "Created ... XNNPACK delegate" INFO line
        with _backend_errors(chosen, source):
            interpreter = chosen.interpreter_class(model_content=bytes(model_bytes),
                                                   num_threads=num_threads)
        if before_allocate is not None:
            before_allocate(interpreter)
        with _backend_errors(chosen, source):
            interpreter.allocate_tensors()
    return interpreter


@contextmanager
def _backend_errors(chosen: Backend, source: str) -> Iterator[None]:
    """Backend failures as the documented errors: a rejected model is :class:`ModelFormatError`,
    a numpy ABI mismatch is :class:`InterpreterUnavailableError` with the fix."""
    try:
        yield
    except (ValueError, RuntimeError) as exc:
        raise ModelFormatError(f"{source}: the {chosen.name} interpreter rejected the model: {exc}") from exc
    except (SystemError, ImportError) as exc:
        if is_numpy_abi_error(exc):
            raise InterpreterUnavailableError(numpy_abi_message(chosen.name)) from exc
        raise


def is_numpy_abi_error(exc: BaseException) -> bool:
    """True when ``exc`` (or what caused it) is a native module failing to load numpy's C API:
    tflite-runtime 2.14 under numpy 2 raises ``SystemError`` caused by ``ImportError('numpy.core.
    multiarray failed to import')``."""
    seen: BaseException | None = exc
    for _ in range(4):  # the chain is short; bounded against cycles
        if seen is None:
            return False
        if isinstance(seen, (SystemError, ImportError)) and "numpy" in str(seen).lower():
            return True
        seen = seen.__cause__ or seen.__context__
    return False


def numpy_abi_message(backend_name: str) -> str:
    """The error text for a backend built against another numpy major version, with the fix."""
    return (f"the {backend_name} interpreter was compiled against NumPy 1.x and cannot run with "
            f"numpy {np.__version__}. Fix: pip install 'numpy<2' beside it "
            f"({LEAN_INSTALL_HINT}), or use ai-edge-litert, which supports numpy 2 ({INSTALL_HINT})")


def _dtype_name(dtype: Any) -> str:
    return np.dtype(dtype).name


def _tensor_entry(detail: dict[str, Any]) -> tuple[tuple[int, ...], str, int]:
    return tuple(int(d) for d in detail["shape"]), _dtype_name(detail["dtype"]), int(detail["index"])


def read_signatures(interpreter: Any) -> dict[str, SignatureSpec]:
    """Every signature of an interpreter: input/output names with shape, dtype and tensor index."""
    signatures: dict[str, SignatureSpec] = {}
    for key in interpreter.get_signature_list():
        try:
            runner = interpreter.get_signature_runner(key)
            signatures[key] = SignatureSpec(
                key=key,
                inputs={name: _tensor_entry(d) for name, d in runner.get_input_details().items()},
                outputs={name: _tensor_entry(d) for name, d in runner.get_output_details().items()},
            )
        except (ValueError, TypeError, OverflowError, IndexError) as exc:
            # a hostile model can name tensor indices it does not have
            raise ModelFormatError(f"signature {key!r}: {exc}") from None
    return signatures


def describe_model(model_bytes: bytes, *, backend: str | Backend = "auto",
                   source: str = "model") -> ModelDescription:
    """Signatures, inputs/outputs, op histogram and tensor dtype histogram of a TFLite model.

    The op histogram uses the interpreter's ``_get_ops_details()`` (ai_edge_litert and recent
    TensorFlow); when the backend lacks it, ``ops`` is empty and ``ops_available`` is False.
    """
    chosen = backend if isinstance(backend, Backend) else resolve_backend(backend)
    interpreter = create_interpreter(model_bytes, backend=chosen, source=source)

    def public(detail: dict[str, Any]) -> dict[str, Any]:
        scale, zero_point = detail.get("quantization", (0.0, 0))
        return {"name": detail["name"], "shape": [int(d) for d in detail["shape"]],
                "dtype": _dtype_name(detail["dtype"]),
                "quantization": {"scale": float(scale), "zero_point": int(zero_point)}}

    dtypes: Counter[str] = Counter()
    dtype_of: dict[int, str] = {}
    try:
        for detail in interpreter.get_tensor_details():
            dtype_of[int(detail["index"])] = name = _dtype_name(detail["dtype"])
            dtypes[name] += 1
    except Exception:  # noqa: BLE001 - some backends fail on tensors without data
        dtypes.clear()
    ops: Counter[str] = Counter()
    typed: Counter[tuple[str, str]] = Counter()
    ops_available = False
    get_ops = getattr(interpreter, "_get_ops_details", None)
    if get_ops is not None:
        try:
            for op in get_ops():
                name = str(op.get("op_name", "?"))
                if name == "DELEGATE":  # the runtime's XNNPACK partitions, not ops of the model
                    continue
                inputs = [int(i) for i in op.get("inputs", ()) if int(i) >= 0]
                ops[name] += 1
                typed[(name, dtype_of.get(inputs[0], "?") if inputs else "none")] += 1
            ops_available = True
        except Exception:  # noqa: BLE001 - private API; an op list is a nice-to-have
            ops.clear()
            typed.clear()
    return ModelDescription(
        backend=chosen.name,
        size_bytes=len(model_bytes),
        signatures=read_signatures(interpreter),
        inputs=[public(d) for d in interpreter.get_input_details()],
        outputs=[public(d) for d in interpreter.get_output_details()],
        ops=dict(sorted(ops.items(), key=lambda kv: (-kv[1], kv[0]))),
        ops_available=ops_available,
        tensor_dtypes=dict(sorted(dtypes.items())),
        typed_ops={op_key(*key): n for key, n in sorted(typed.items())},
        runs_on=runs_on(typed) if ops_available else [],
    )
