"""The int8 student bundle runs on tflite-runtime 2.14 (numpy 1.x) as on ai-edge-litert.

tflite-runtime 2.14 has no int8 DIV, so the student's pooling must not convert to one; the op
rule in ``device_runtime.op_support`` says which interpreters can run a model. The venv tests
(``slow``) run the bundle in a cached venv with ``tflite-runtime==2.14.0`` (see ``lean_venv``).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest
from conftest import REPO_ROOT
from int8_student_bundle import build_int8_student_bundle, fixed_histories
from lean_venv import LEAN_REQUIREMENTS, NUMPY2_REQUIREMENTS, lean_python

from device_runtime import InterpreterUnavailableError
from device_runtime import interpreter as interpreter_module
from device_runtime.interpreter import describe_model, is_numpy_abi_error
from device_runtime.op_support import AI_EDGE_LITERT, TFLITE_RUNTIME_2_14, runs_on, unsupported_ops
from device_runtime.recommender import Recommender

# Runs in the lean venv (or here): the Recommender's top-10 on the chosen backend, and the raw
# graph's top-10 ids with the interpreter's reference kernels (no XNNPACK delegate).
CHILD = r"""
import importlib, json, sys
import numpy as np
from device_runtime.recommender import Recommender
from device_runtime.bundle import verify_bundle
bundle, backend = sys.argv[1], sys.argv[2]
histories = json.loads(sys.stdin.read())
rec = Recommender.load(bundle, backend=backend)
served = [[[r.item_id, r.score] for r in rec.recommend(h, k=10)] for h in histories]
module = importlib.import_module(backend + ".interpreter")
verified = verify_bundle(bundle)
interpreter = module.Interpreter(
    model_content=verified.model_bytes,
    experimental_op_resolver_type=module.OpResolverType.BUILTIN_WITHOUT_DEFAULT_DELEGATES)
interpreter.allocate_tensors()
runner = interpreter.get_signature_runner("serving_default")
index = {item: i for i, item in enumerate(verified.item_ids)}
L = verified.manifest.history_length
reference = []
for h in histories:
    row = np.zeros((1, L), np.int32)
    tail = [index[i] for i in h][-L:]
    row[0, L - len(tail):] = tail
    reference.append(runner(history=row)["top_ids"][0, :10].tolist())
print(json.dumps({"backend": rec.backend, "numpy": np.__version__, "served": served,
                  "reference": reference}))
"""


@pytest.fixture(scope="module")
def int8_bundle(tmp_path_factory):
    return build_int8_student_bundle(tmp_path_factory.mktemp("int8_student") / "bundle")


def run_child(python, bundle, backend: str, histories) -> dict:
    env = dict(os.environ, PYTHONPATH=str(REPO_ROOT))
    done = subprocess.run([str(python), "-c", CHILD, str(bundle), backend], input=json.dumps(histories),
                          capture_output=True, text=True, timeout=300, env=env)
    assert done.returncode == 0, done.stderr[-2000:]
    return json.loads(done.stdout)


def test_op_rule_knows_the_int8_div_gap():
    assert runs_on([("DIV", "int8"), ("MUL", "int8")]) == [AI_EDGE_LITERT]
    assert runs_on([("DIV", "float32"), ("RSQRT", "int8")]) == [AI_EDGE_LITERT, TFLITE_RUNTIME_2_14]
    assert unsupported_ops([("DIV", "int8"), ("DIV", "int8")], TFLITE_RUNTIME_2_14) == ["DIV:int8"]
    with pytest.raises(ValueError, match="unknown"):
        unsupported_ops([], "tflite-runtime 1.0")


def test_int8_student_graph_has_no_div_and_runs_on_both_interpreters(int8_bundle):
    description = describe_model((int8_bundle / "model.tflite").read_bytes())
    assert description.ops_available
    assert "TOPK_V2" in description.ops and "FULLY_CONNECTED:int8" in description.typed_ops
    assert "DIV" not in description.ops, description.typed_ops
    assert description.runs_on == [AI_EDGE_LITERT, TFLITE_RUNTIME_2_14]
    assert description.to_dict()["runs_on"] == description.runs_on


def test_all_padding_and_real_histories_serve_from_the_int8_bundle(int8_bundle):
    rec = Recommender.load(int8_bundle)
    for history in fixed_histories(5):
        result = rec.recommend(history, k=10)
        assert len(result) == 10 and result.source == "model"
    assert rec.recommend([], k=3).source == "popularity"


def test_numpy_abi_errors_are_recognised_through_the_cause_chain():
    try:
        try:
            raise ImportError("numpy.core.multiarray failed to import")
        except ImportError as inner:
            raise SystemError("CreateWrapperFromBuffer returned a result with an exception set") from inner
    except SystemError as outer:
        assert is_numpy_abi_error(outer)
    assert not is_numpy_abi_error(SystemError("unrelated"))
    assert not is_numpy_abi_error(ValueError("numpy"))


@pytest.mark.parametrize("requested", ["tflite_runtime", "auto"])
def test_a_backend_failing_to_import_numpy_is_unavailable_with_the_fix(tmp_path, monkeypatch, requested):
    (tmp_path / "abi_broken_backend.py").write_text(
        "raise ImportError('numpy.core.multiarray failed to import')\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    for name in ("ai_edge_litert", "tflite_runtime", "tensorflow"):
        monkeypatch.setitem(interpreter_module._BACKEND_MODULES, name,
                            "abi_broken_backend" if name == "tflite_runtime" else "no_such_backend_module")
    with pytest.raises(InterpreterUnavailableError, match=r"numpy<2.*ai-edge-litert"):
        interpreter_module.resolve_backend(requested)


@pytest.mark.slow
def test_int8_bundle_on_tflite_runtime_2_14_matches_ai_edge_litert(int8_bundle):
    lean = lean_python("tflite-runtime-2.14", LEAN_REQUIREMENTS)
    histories = fixed_histories(20)
    on_lean = run_child(lean, int8_bundle, "tflite_runtime", histories)
    here = run_child(sys.executable, int8_bundle, "ai_edge_litert", histories)
    assert on_lean["backend"] == "tflite_runtime" and on_lean["numpy"].startswith("1.")
    # the graph itself: identical top-10 ids with both interpreters' reference kernels
    assert on_lean["reference"] == here["reference"]
    # served through the Recommender with the default XNNPACK delegate, whose int8 kernels may
    # round one step differently between versions: same ids for nearly every history
    same = sum([a[0] for a in x] == [b[0] for b in y] for x, y in zip(on_lean["served"], here["served"], strict=True))
    overlap = sum(len({a[0] for a in x} & {b[0] for b in y}) for x, y in zip(on_lean["served"], here["served"], strict=True))
    assert same >= len(histories) - 2 and overlap >= 0.95 * 10 * len(histories), (same, overlap)


@pytest.mark.slow
def test_tflite_runtime_under_numpy_2_raises_interpreter_unavailable_with_the_fix(int8_bundle):
    python = lean_python("tflite-runtime-2.14-numpy2", NUMPY2_REQUIREMENTS)
    code = ("import sys\nfrom device_runtime import Recommender, InterpreterUnavailableError\n"
            "try:\n    Recommender.load(sys.argv[1], backend='tflite_runtime')\n"
            "except InterpreterUnavailableError as exc:\n    print('UNAVAILABLE', exc)\n")
    done = subprocess.run([str(python), "-c", code, str(int8_bundle)], capture_output=True, text=True,
                          timeout=300, env=dict(os.environ, PYTHONPATH=str(REPO_ROOT)))
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.startswith("UNAVAILABLE"), done.stdout
    assert "numpy<2" in done.stdout and "ai-edge-litert" in done.stdout
    assert issubclass(InterpreterUnavailableError, ImportError)
