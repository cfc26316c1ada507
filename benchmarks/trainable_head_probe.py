"""Probe for on-device personalization "design B": a small FLOAT TFLite model with training
signatures, running beside the shipped int8 model and learning per user on the device.

The head: ``scores = base + item_bias[candidates] + item_vec[candidates] @ user_vec`` with
``item_vec`` a fixed float32 [C, d] constant (random, standing in for exported item vectors) and
two trainable variables, ``user_vec`` float32[d] and ``item_bias`` float32[C] (both start at 0).

Signatures: ``infer(candidates, base) -> scores``; ``train(candidates, base, target, lr) -> loss``
(one SGD step of softmax cross-entropy over the K candidates, positive at ``target``, plus
``1e-3 * (|user_vec|^2 + |item_bias|^2)``, computed with tf.GradientTape and applied with
assign_sub); ``get_state() -> (user_vec, item_bias)`` and ``set_state(user_vec, item_bias)``.
Converted with builtin ops only (no Flex) and resource variables enabled.

    .venv/bin/python benchmarks/trainable_head_probe.py [--json out.json]

The parent (needs TensorFlow) builds the model into a temp dir, then measures it in two children:
ai-edge-litert in this interpreter and tflite-runtime 2.14 in ``.venv-device`` (Python 3.9, no
TensorFlow). Each child also runs a pure-numpy head with the same math in float32. Prints JSON.
The child half of this file must stay Python 3.9 compatible and must not import TensorFlow.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parent.parent
DEVICE_PYTHON = REPO / ".venv-device" / "bin" / "python"

C = 10000  # catalog size
D = 32  # vector width
K = 100  # candidates per call
L2 = 1e-3
LR = 0.05
TARGET = 17  # position of the positive among the K candidates
LEARN_STEPS = 50
WARMUP = 100
CALLS = 2000
STATE_CALLS = 200
SIGNATURES = ["infer", "train", "get_state", "set_state"]


# --------------------------------------------------------------------------- numpy reference


class NumpyHead:
    """The same head in float32 numpy (same math as the TFLite model)."""

    def __init__(self, item_vec: np.ndarray) -> None:
        self.item_vec = item_vec
        self.user_vec = np.zeros(D, np.float32)
        self.item_bias = np.zeros(item_vec.shape[0], np.float32)
        self.l2 = np.float32(L2)
        self.two_l2 = np.float32(2 * L2)

    def infer(self, candidates: np.ndarray, base: np.ndarray) -> np.ndarray:
        return base + self.item_bias[candidates] + self.item_vec[candidates] @ self.user_vec

    def train(
        self, candidates: np.ndarray, base: np.ndarray, target: int, lr: np.float32
    ) -> np.float32:
        vecs = self.item_vec[candidates]
        logits = base + self.item_bias[candidates] + vecs @ self.user_vec
        top = logits.max()
        exp = np.exp(logits - top)
        total = exp.sum()
        loss = np.log(total) + top - logits[target]
        loss = loss + self.l2 * (self.user_vec @ self.user_vec + self.item_bias @ self.item_bias)
        grad_logits = exp / total
        grad_logits[target] -= np.float32(1.0)
        grad_user = vecs.T @ grad_logits + self.two_l2 * self.user_vec
        grad_bias = self.two_l2 * self.item_bias
        np.add.at(grad_bias, candidates, grad_logits)
        self.user_vec -= lr * grad_user
        self.item_bias -= lr * grad_bias
        return np.float32(loss)


# --------------------------------------------------------------------------- child: measure


def _percentiles_us(samples_ns: list) -> dict:
    arr = np.asarray(samples_ns, dtype=np.float64) / 1000.0
    return {
        "p50_us": round(float(np.percentile(arr, 50)), 2),
        "p99_us": round(float(np.percentile(arr, 99)), 2),
    }


def _time_calls(fn, warmup: int, calls: int) -> dict:
    for _ in range(warmup):
        fn()
    samples = []
    for _ in range(calls):
        start = time.perf_counter_ns()
        fn()
        samples.append(time.perf_counter_ns() - start)
    return _percentiles_us(samples)


def measure(runtime: str, work: Path) -> dict:
    if runtime == "ai_edge_litert":
        import ai_edge_litert
        from ai_edge_litert.interpreter import Interpreter

        version = getattr(ai_edge_litert, "__version__", "?")
    else:
        import tflite_runtime
        from tflite_runtime.interpreter import Interpreter

        version = tflite_runtime.__version__
    model_path = work / "head.tflite"
    inputs = np.load(work / "inputs.npz")
    item_vec = np.load(work / "item_vec.npy")
    candidates = inputs["candidates"].astype(np.int32)
    base = inputs["base"].astype(np.float32)
    target = np.int32(TARGET)
    lr = np.float32(LR)
    out = {
        "runtime": runtime,
        "runtime_version": version,
        "python": sys.version.split()[0],
        "numpy": np.__version__,
        "model_bytes": model_path.stat().st_size,
        "loadavg_start": [round(x, 2) for x in os.getloadavg()],
    }

    try:
        start = time.perf_counter()
        interp = Interpreter(model_path=str(model_path))
        out["load_ms"] = round((time.perf_counter() - start) * 1000, 2)
        out["loads"] = True
    except Exception as exc:  # noqa: BLE001 - report verbatim
        out["loads"] = False
        out["load_error"] = f"{type(exc).__name__}: {exc}"
        return out
    out["signature_list"] = interp.get_signature_list()

    runners = {}
    sig_status = {}
    for key in SIGNATURES:
        if key not in out["signature_list"]:
            sig_status[key] = "absent from model"
            continue
        try:
            runners[key] = interp.get_signature_runner(key)
            sig_status[key] = "runner ok"
        except Exception as exc:  # noqa: BLE001
            sig_status[key] = f"runner error: {type(exc).__name__}: {exc}"

    def call(key, **kwargs):
        try:
            result = runners[key](**kwargs)
            sig_status[key] = "runs"
            return result
        except Exception as exc:  # noqa: BLE001
            sig_status[key] = f"run error: {type(exc).__name__}: {exc}"
            raise

    # --- learning: 50 steps towards one target from zero state
    scores_before = call("infer", candidates=candidates, base=base)["scores"].copy()
    losses = [
        float(call("train", candidates=candidates, base=base, target=target, lr=lr)["loss"])
        for _ in range(LEARN_STEPS)
    ]
    scores_after = call("infer", candidates=candidates, base=base)["scores"].copy()
    state = {}
    if "get_state" in runners:
        got = call("get_state")
        state = {"user_vec": got["user_vec"].copy(), "item_bias": got["item_bias"].copy()}
    out["learning"] = {
        "steps": LEARN_STEPS,
        "lr": LR,
        "target_score_before": float(scores_before[TARGET]),
        "target_score_after": float(scores_after[TARGET]),
        "target_rank_before": int((scores_before > scores_before[TARGET]).sum()) + 1,
        "target_rank_after": int((scores_after > scores_after[TARGET]).sum()) + 1,
        "loss_first": losses[0],
        "loss_last": losses[-1],
    }

    # set_state: back to zero, infer must give the base scores again; then restore the learnt state
    if "set_state" in runners:
        call("set_state", user_vec=np.zeros(D, np.float32), item_bias=np.zeros(C, np.float32))
        reset_scores = call("infer", candidates=candidates, base=base)["scores"]
        out["set_state_zero_gives_base"] = bool(np.array_equal(reset_scores, base))
        if state:
            call("set_state", user_vec=state["user_vec"], item_bias=state["item_bias"])
            restored = call("infer", candidates=candidates, base=base)["scores"]
            out["set_state_restore_exact"] = bool(np.array_equal(restored, scores_after))

    # --- numpy head, same 50 steps
    head = NumpyHead(item_vec)
    np_before = head.infer(candidates, base)
    np_losses = [float(head.train(candidates, base, TARGET, lr)) for _ in range(LEARN_STEPS)]
    np_after = head.infer(candidates, base)
    out["numpy_learning"] = {
        "target_score_before": float(np_before[TARGET]),
        "target_score_after": float(np_after[TARGET]),
        "loss_first": np_losses[0],
        "loss_last": np_losses[-1],
    }
    out["tflite_vs_numpy_max_abs"] = {
        "scores_after_50": float(np.abs(scores_after - np_after).max()),
        "loss_per_step": float(np.abs(np.asarray(losses) - np.asarray(np_losses)).max()),
    }
    if state:
        out["tflite_vs_numpy_max_abs"]["user_vec"] = float(
            np.abs(state["user_vec"] - head.user_vec).max()
        )
        out["tflite_vs_numpy_max_abs"]["item_bias"] = float(
            np.abs(state["item_bias"] - head.item_bias).max()
        )
    np.savez(
        work / f"result_{runtime}.npz",
        scores_after=scores_after,
        np_scores_after=np_after,
        losses=np.asarray(losses, np.float32),
        **{k: v for k, v in state.items()},
    )

    # --- latency (per call through the signature runner: set inputs, invoke, read outputs)
    timings = {}
    if "set_state" in runners:
        call("set_state", user_vec=np.zeros(D, np.float32), item_bias=np.zeros(C, np.float32))
    timings["tflite_train"] = _time_calls(
        lambda: runners["train"](candidates=candidates, base=base, target=target, lr=lr),
        WARMUP,
        CALLS,
    )
    timings["tflite_infer"] = _time_calls(
        lambda: runners["infer"](candidates=candidates, base=base), WARMUP, CALLS
    )
    if "get_state" in runners:
        timings["tflite_get_state"] = _time_calls(lambda: runners["get_state"](), 10, STATE_CALLS)
    if "set_state" in runners:
        uv, ib = np.zeros(D, np.float32), np.zeros(C, np.float32)
        timings["tflite_set_state"] = _time_calls(
            lambda: runners["set_state"](user_vec=uv, item_bias=ib), 10, STATE_CALLS
        )
    head = NumpyHead(item_vec)
    timings["numpy_train"] = _time_calls(
        lambda: head.train(candidates, base, TARGET, lr), WARMUP, CALLS
    )
    timings["numpy_infer"] = _time_calls(lambda: head.infer(candidates, base), WARMUP, CALLS)
    out["timings"] = timings
    out["signatures"] = sig_status
    out["loadavg_end"] = [round(x, 2) for x in os.getloadavg()]
    return out


# --------------------------------------------------------------------------- parent: build


def _op_names(model_bytes: bytes) -> dict:
    try:
        from tensorflow.lite.python import schema_py_generated as schema
    except ImportError as exc:
        return {"error": str(exc)}
    model = schema.ModelT.InitFromPackedBuf(model_bytes, 0)
    names = {v: k for k, v in vars(schema.BuiltinOperator).items() if not k.startswith("_")}
    builtin = sorted(
        {
            names.get(max(oc.builtinCode, oc.deprecatedBuiltinCode), "?")
            for oc in model.operatorCodes
        }
    )
    custom = sorted({oc.customCode.decode() for oc in model.operatorCodes if oc.customCode})
    return {"builtin": builtin, "custom": custom}


def build(work: Path, item_vec: np.ndarray) -> dict:
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    import tensorflow as tf

    cand_spec = tf.TensorSpec([K], tf.int32, name="candidates")
    base_spec = tf.TensorSpec([K], tf.float32, name="base")

    class Head(tf.Module):
        def __init__(self):
            super().__init__()
            self.item_vec = tf.constant(item_vec)
            self.user_vec = tf.Variable(tf.zeros([D], tf.float32), name="user_vec")
            self.item_bias = tf.Variable(tf.zeros([C], tf.float32), name="item_bias")

        def _scores(self, candidates, base):
            vecs = tf.gather(self.item_vec, candidates)
            return (
                base + tf.gather(self.item_bias, candidates) + tf.linalg.matvec(vecs, self.user_vec)
            )

        @tf.function(input_signature=[cand_spec, base_spec])
        def infer(self, candidates, base):
            return {"scores": self._scores(candidates, base)}

        @tf.function(
            input_signature=[
                cand_spec,
                base_spec,
                tf.TensorSpec([], tf.int32, name="target"),
                tf.TensorSpec([], tf.float32, name="lr"),
            ]
        )
        def train(self, candidates, base, target, lr):
            with tf.GradientTape() as tape:
                logits = self._scores(candidates, base)
                ce = tf.nn.sparse_softmax_cross_entropy_with_logits(labels=target, logits=logits)
                reg = tf.reduce_sum(tf.square(self.user_vec)) + tf.reduce_sum(
                    tf.square(self.item_bias)
                )
                loss = ce + L2 * reg
            grad_user, grad_bias = tape.gradient(loss, [self.user_vec, self.item_bias])
            self.user_vec.assign_sub(lr * grad_user)
            self.item_bias.assign_sub(lr * tf.convert_to_tensor(grad_bias))
            return {"loss": loss}

        @tf.function(input_signature=[])
        def get_state(self):
            return {
                "user_vec": self.user_vec.read_value(),
                "item_bias": self.item_bias.read_value(),
            }

        @tf.function(
            input_signature=[
                tf.TensorSpec([D], tf.float32, name="user_vec"),
                tf.TensorSpec([C], tf.float32, name="item_bias"),
            ]
        )
        def set_state(self, user_vec, item_bias):
            self.user_vec.assign(user_vec)
            self.item_bias.assign(item_bias)
            return {"ok": tf.constant(1, tf.int32)}

    head = Head()
    saved = work / "saved_model"
    signatures = {key: getattr(head, key).get_concrete_function() for key in SIGNATURES}
    tf.saved_model.save(head, str(saved), signatures=signatures)

    attempts = []
    # First the full design; if builtin-only conversion fails, the minimum change: drop the state
    # signatures; then drop item_bias would be the next step (not reached when the first works).
    for keys in (SIGNATURES, ["infer", "train"]):
        converter = tf.lite.TFLiteConverter.from_saved_model(str(saved), signature_keys=keys)
        converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS]
        converter.experimental_enable_resource_variables = True
        try:
            start = time.perf_counter()
            model = converter.convert()
            attempts.append(
                {
                    "signature_keys": keys,
                    "ok": True,
                    "seconds": round(time.perf_counter() - start, 2),
                }
            )
            break
        except Exception as exc:  # noqa: BLE001 - recorded verbatim
            attempts.append(
                {"signature_keys": keys, "ok": False, "error": f"{type(exc).__name__}: {exc}"}
            )
    else:
        return {"tensorflow": tf.__version__, "conversion_attempts": attempts}
    (work / "head.tflite").write_bytes(model)
    return {
        "tensorflow": tf.__version__,
        "conversion_attempts": attempts,
        "model_bytes": len(model),
        "item_vec_bytes": int(item_vec.nbytes),
        "ops": _op_names(model),
    }


def run_child(python: Path, runtime: str, work: Path) -> dict:
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2")
    proc = subprocess.run(
        [str(python), str(Path(__file__).resolve()), "--measure", runtime, str(work)],
        capture_output=True,
        text=True,
        env=env,
        timeout=1800,
    )
    if proc.returncode != 0:
        return {"runtime": runtime, "child_failed": proc.returncode, "stderr": proc.stderr[-4000:]}
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    result["child_stderr"] = [line for line in proc.stderr.splitlines() if line.strip()][-5:]
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--measure", nargs=2, metavar=("RUNTIME", "WORKDIR"), help=argparse.SUPPRESS
    )
    parser.add_argument("--json", type=Path, help="also write the JSON here")
    args = parser.parse_args()
    if args.measure:
        print(json.dumps(measure(args.measure[0], Path(args.measure[1]))))
        return

    rng = np.random.default_rng(0)
    item_vec = (rng.standard_normal((C, D)) * 0.1).astype(np.float32)
    candidates = rng.choice(np.arange(2, C), size=K, replace=False).astype(np.int32)
    base = (rng.standard_normal(K) * 0.5).astype(np.float32)
    report = {
        "config": {
            "C": C,
            "d": D,
            "K": K,
            "l2": L2,
            "lr": LR,
            "target_position": TARGET,
            "learn_steps": LEARN_STEPS,
            "warmup": WARMUP,
            "calls": CALLS,
            "cpus": os.cpu_count(),
        },
    }
    with tempfile.TemporaryDirectory(prefix="trainable_head_") as tmp:
        work = Path(tmp)
        np.save(work / "item_vec.npy", item_vec)
        np.savez(work / "inputs.npz", candidates=candidates, base=base)
        report["build"] = build(work, item_vec)
        if not (work / "head.tflite").exists():
            print(json.dumps(report, indent=2))
            sys.exit(1)
        report["ai_edge_litert"] = run_child(Path(sys.executable), "ai_edge_litert", work)
        if DEVICE_PYTHON.exists():
            report["tflite_runtime"] = run_child(DEVICE_PYTHON, "tflite_runtime", work)
        else:
            report["tflite_runtime"] = {"skipped": f"{DEVICE_PYTHON} not found"}
        files = {name: work / f"result_{name}.npz" for name in ("ai_edge_litert", "tflite_runtime")}
        if all(path.exists() for path in files.values()):
            a, b = (np.load(path) for path in files.values())
            cross = {
                "tflite_scores_after_50": float(
                    np.abs(a["scores_after"] - b["scores_after"]).max()
                ),
                "tflite_losses": float(np.abs(a["losses"] - b["losses"]).max()),
                "numpy_scores_after_50_py311_vs_py39": float(
                    np.abs(a["np_scores_after"] - b["np_scores_after"]).max()
                ),
            }
            for key in ("user_vec", "item_bias"):
                if key in a.files and key in b.files:
                    cross[f"tflite_{key}"] = float(np.abs(a[key] - b[key]).max())
            report["cross_runtime_max_abs"] = cross
    text = json.dumps(report, indent=2)
    print(text)
    if args.json:
        args.json.write_text(text + "\n")


if __name__ == "__main__":
    main()
