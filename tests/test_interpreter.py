"""Interpreter backends, model-byte checks (in a subprocess: an error, never a crash), introspection."""

from __future__ import annotations

import importlib
import textwrap

import pytest
from conftest import run_without_tensorflow
from tiny_bundle import TINY_HISTORY_LENGTH, TINY_TOP_K

from device_runtime import interpreter as interp_module
from device_runtime.bundle import MODEL_FILE
from device_runtime.interpreter import (
    INSTALL_HINT,
    InterpreterUnavailableError,
    ModelFormatError,
    check_model_bytes,
    create_interpreter,
    describe_model,
    resolve_backend,
)

pytest_plugins = ["conftest_bundle"]  # the tiny bundle fixtures


def test_auto_prefers_ai_edge_litert():
    assert resolve_backend("auto").name == "ai_edge_litert"
    with pytest.raises(ValueError, match="backend 'litert' is unknown"):
        resolve_backend("litert")


def test_no_backend_error_names_the_pip_command(monkeypatch):
    real_import = importlib.import_module

    def no_backends(name, *args):
        if name in interp_module._BACKEND_MODULES.values():
            raise ImportError(f"No module named {name!r}")
        return real_import(name, *args)

    monkeypatch.setattr(interp_module.importlib, "import_module", no_backends)
    with pytest.raises(InterpreterUnavailableError) as info:
        resolve_backend("auto")
    message = str(info.value)
    assert "pip install 'edge-rec[device]'" in message and INSTALL_HINT in message
    for name in ("ai_edge_litert", "tflite_runtime", "tensorflow"):
        assert name in message


@pytest.mark.parametrize("data, match", [
    (b"", "too small"),
    (b"\x00" * 64, "not a TFLite flatbuffer"),
    (b"\xff\xff\xff\x7fTFL3" + b"\x00" * 24, "root table offset"),
])
def test_check_model_bytes_rejects_garbage(data, match):
    with pytest.raises(ModelFormatError, match=match):
        check_model_bytes(data, source="x.tflite")


def test_describe_model_reports_signature_ops_and_dtypes(tiny_bundle_dir):
    description = describe_model((tiny_bundle_dir / MODEL_FILE).read_bytes())
    signature = description.signatures["serving_default"]
    assert {n: v[:2] for n, v in signature.inputs.items()} == {"history": ((1, TINY_HISTORY_LENGTH), "int32")}
    assert {n: v[:2] for n, v in signature.outputs.items()} == {
        "top_ids": ((1, TINY_TOP_K), "int32"), "top_scores": ((1, TINY_TOP_K), "float32")}
    assert description.ops_available
    assert {"GATHER", "TOPK_V2", "FULLY_CONNECTED"} <= set(description.ops)
    assert "DELEGATE" not in description.ops
    assert set(description.tensor_dtypes) >= {"int32", "float32"}


def test_num_threads_is_validated(tiny_bundle_dir):
    with pytest.raises(ValueError, match="num_threads"):
        create_interpreter((tiny_bundle_dir / MODEL_FILE).read_bytes(), num_threads=0)


def test_truncated_and_garbage_models_raise_in_a_subprocess(tiny_bundle_dir, tmp_path):
    """Every truncation point and random corruption raises a Python error; the process survives."""
    model = tiny_bundle_dir / MODEL_FILE
    script = textwrap.dedent(f"""
        import random, sys
        from device_runtime.interpreter import ModelFormatError, create_interpreter
        data = open({str(model)!r}, "rb").read()
        rejected = 0
        variants = [data[:n] for n in range(0, len(data), max(1, len(data) // 60))]
        rng = random.Random(0)
        variants += [bytes(rng.randrange(256) for _ in range(512)) for _ in range(20)]
        variants += [data[:4] + b"TFL3" + bytes(rng.randrange(256) for _ in range(len(data) - 8))
                     for _ in range(20)]
        for variant in variants:
            try:
                create_interpreter(variant)
            except ModelFormatError:
                rejected += 1
        print("rejected", rejected, "of", len(variants))
        sys.exit(0 if rejected == len(variants) else 3)
    """)
    result = run_without_tensorflow(["-c", script])
    assert result.returncode == 0, result.stdout + result.stderr
    assert "rejected" in result.stdout

    garbage = tmp_path / "garbage.tflite"
    garbage.write_bytes(model.read_bytes()[:1000])
    cli = run_without_tensorflow(["-m", "edge_rec.cli", "inspect", str(garbage)])
    assert cli.returncode == 1, (cli.returncode, cli.stderr)  # a normal error exit, not a signal
    assert "garbage.tflite" in cli.stderr and "Traceback" not in cli.stderr


def test_backend_modules_are_not_imported_at_module_import():
    code = ("import sys, device_runtime.interpreter, device_runtime.recommender, "
            "device_runtime.server; print(any(m.startswith(('ai_edge_litert', 'tflite_runtime')) "
            "for m in sys.modules))")
    result = run_without_tensorflow(["-c", code])
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "False"
