"""`edge-rec benchmark` end to end, with TensorFlow blocked in the benchmarking processes.

The models are made at test time with TensorFlow (a tiny bundle from tests/tiny_bundle.py, its
plain .tflite, and a small float conv net); the command itself runs in a subprocess in which
importing TensorFlow raises, as on a device with only ``edge-rec[device]``.
"""

from __future__ import annotations

import importlib.util
import json
import math
import resource
import sys
from pathlib import Path

import numpy as np
import pytest

from tests.conftest import run_without_tensorflow
from tests.tiny_bundle import TINY_ITEMS, build_tiny_bundle, tiny_tflite_bytes

STATS_KEYS = {"p50", "p90", "p99", "max", "mean", "std"}
METRIC_KEYS = {"hr@10", "ndcg@10", "mrr", "coverage@10"}
RUNS = ["--runs", "20", "--warmup", "3"]
USERS, PER_USER = 20, 8


def _eval_log(path):
    """20 users x 8 distinct consecutive items; every one of the 30 items gets >= 5 interactions."""
    lines = ["user_id,item_id,timestamp"]
    sequences = {}
    for user in range(USERS):
        items = [str(1000 + (user * PER_USER + t) % TINY_ITEMS) for t in range(PER_USER)]
        sequences[f"u{user:02d}"] = items
        lines += [f"u{user:02d},{item},{t}" for t, item in enumerate(items)]
    path.write_text("\n".join(lines) + "\n")
    return sequences


def _conv_net_tflite(path):
    from edge_rec.keras_shim import keras, set_global_seed, tf

    set_global_seed(0)
    image = keras.Input(shape=(8, 8, 3), dtype="float32", name="image")
    x = keras.layers.Conv2D(4, 3, activation="relu")(image)
    x = keras.layers.GlobalAveragePooling2D()(x)
    model = keras.Model(image, keras.layers.Dense(5, name="classes")(x))
    path.write_bytes(tf.lite.TFLiteConverter.from_keras_model(model).convert())


@pytest.fixture(scope="module")
def models(tmp_path_factory):
    root = tmp_path_factory.mktemp("bench")
    bundle = build_tiny_bundle(root / "bundle")
    (root / "tiny.tflite").write_bytes(tiny_tflite_bytes())
    _conv_net_tflite(root / "conv.tflite")
    sequences = _eval_log(root / "log.csv")
    (root / "pass.toml").write_text(
        'name = "generous"\nthreads = 2\n[budgets]\nlatency_p99_ms = 5000\npeak_rss_mb = 4000\n'
        "model_size_mb = 100\nmin_ndcg_at_10 = 0.0\n")
    (root / "fail.toml").write_text('name = "impossible"\n[budgets]\nlatency_p99_ms = 0.0001\n'
                                    "model_size_mb = 100\n")
    return {"root": root, "bundle": bundle, "sequences": sequences}


def _benchmark(*args):
    return run_without_tensorflow(["-m", "edge_rec.cli", "benchmark", *map(str, args)], timeout=300)


def _expected_bundle_metrics(bundle, sequences):
    """HR@10 and NDCG@10 recomputed here, straight from Recommender.recommend."""
    from device_runtime.recommender import Recommender

    rec = Recommender.load(bundle)
    hits, gains = [], []
    for items in sequences.values():
        top = rec.recommend(items[:-1], k=10, exclude_seen=True).item_ids
        position = top.index(items[-1]) if items[-1] in top else None
        hits.append(position is not None)
        gains.append(0.0 if position is None else 1.0 / math.log2(position + 2))
    return float(np.mean(hits)), float(np.mean(gains))


def test_three_targets_side_by_side_without_tensorflow(models):
    root = models["root"]
    out_json, out_md = root / "out.json", root / "out.md"
    proc = _benchmark(models["bundle"], root / "tiny.tflite", root / "conv.tflite", *RUNS,
                      "--eval-data", root / "log.csv", "--profile", root / "pass.toml",
                      "--output", out_json, "--markdown", out_md, "--quiet")
    assert proc.returncode == 0, proc.stderr + proc.stdout
    assert "is blocked" not in proc.stderr
    document = json.loads(out_json.read_text())
    bundle, tiny, conv = document["targets"]
    for result in (bundle, tiny, conv):
        for key in ("target", "size_bytes", "gzip_bytes", "load_ms", "first_inference_ms",
                    "throughput_rps", "peak_rss_mb", "rss_after_load_mb", "ops", "metrics",
                    "profile", "import_ms", "cold_start_ms"):
            assert key in result, key
        for key in ("latency_us", "raw_invoke_us"):
            stats = result[key]
            assert STATS_KEYS <= set(stats) and stats["count"] == 20
            assert 0 < stats["p50"] <= stats["p90"] <= stats["p99"] <= stats["max"]
        assert 0 < result["gzip_bytes"] and result["size_bytes"] > 0
        assert result["throughput_rps"] > 0 and result["peak_rss_mb"] >= result["rss_after_load_mb"] > 0
        assert result["peak_rss_total_mb"] >= result["peak_rss_mb"]
        assert result["raw_invoke_call"].startswith("interpreter.invoke() alone")
        assert result["cold_start_ms"] >= result["load_ms"] + result["first_inference_ms"]
        assert result["profile"]["name"] == "generous" and result["profile"]["passed"] is True
        assert result["settings"]["threads"] == 2  # from the profile
    # the bundle: measured through Recommender, metrics equal a direct computation
    assert bundle["kind"] == "bundle" and bundle["latency_call"].startswith("Recommender.recommend")
    assert {"GATHER", "TOPK_V2"} <= set(bundle["ops"])
    assert METRIC_KEYS <= set(bundle["metrics"]) and bundle["metrics"]["users"] == USERS
    hr, ndcg = _expected_bundle_metrics(models["bundle"], models["sequences"])
    assert bundle["metrics"]["hr@10"] == pytest.approx(hr)
    assert bundle["metrics"]["ndcg@10"] == pytest.approx(ndcg)
    assert all(v["status"] == "pass" for v in bundle["profile"]["results"].values())
    # the same model as a plain .tflite: evaluated through the interpreter in index space
    assert tiny["kind"] == "tflite" and METRIC_KEYS <= set(tiny["metrics"])
    assert tiny["size_bytes"] == (root / "tiny.tflite").stat().st_size
    assert bundle["size_bytes"] == (models["bundle"] / "model.tflite").stat().st_size
    assert bundle["bundle_bytes"] > bundle["size_bytes"]
    # the float conv net: synthesized float inputs, dynamic batch, no recommender metrics
    assert conv["inputs"][0]["dtype"] == "float32" and "CONV_2D" in conv["ops"]
    assert conv["batch"]["size"] == 32 and conv["batch"]["throughput_rps"] > 0
    assert "error" in conv["metrics"]
    assert conv["profile"]["results"]["min_ndcg_at_10"]["status"] == "skipped"
    # readable outputs name every target
    for text in (proc.stdout, out_md.read_text()):
        assert "bundle" in text and "tiny.tflite" in text and "conv.tflite" in text
        assert "latency p99 (us)" in text and "PASS (generous)" in text
        assert "peak RSS, serving (MiB)" in text and "peak RSS, whole run (MiB)" in text
    assert "- raw invoke: interpreter.invoke() alone" in out_md.read_text()


PARENT_BALLAST_MB = 256


def test_peak_rss_is_the_childs_own_not_the_parents(models):
    """Linux keeps ru_maxrss across fork + exec: a child that read it reported its parent's peak
    (all three demo models showed the CLI's 116 MiB). The child's peak must be its own."""
    from device_runtime.benchmarking.child import run_in_fresh_process
    from device_runtime.benchmarking.engine import BenchmarkSettings

    ballast = np.ones(PARENT_BALLAST_MB * 1024 * 1024 // 8)  # every page touched: resident
    del ballast
    parent_peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    assert parent_peak >= PARENT_BALLAST_MB
    settings = BenchmarkSettings(runs=5, warmup=1).to_dict()
    result = run_in_fresh_process(models["root"] / "tiny.tflite", settings, progress=False)
    assert result["peak_rss_source"] == ("VmHWM" if sys.platform == "linux" else "ru_maxrss")
    assert result["rss_after_load_mb"] <= result["peak_rss_mb"] <= result["peak_rss_total_mb"]
    assert result["peak_rss_mb"] < parent_peak - PARENT_BALLAST_MB / 2, (result, parent_peak)


def _hand_loop_module():
    path = Path(__file__).resolve().parent.parent / "benchmarks" / "raw_litert_loop.py"
    spec = importlib.util.spec_from_file_location("raw_litert_loop", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_hand_loop_feeds_ids_over_the_whole_embedding_table(models):
    """The reference loop must time the inputs the benchmark times (ids over the table's rows, not
    a single repeated input of a few ids), or the 20% agreement check compares different things."""
    from ai_edge_litert.interpreter import Interpreter

    from device_runtime.benchmarking.engine import synthesized_pool

    loop = _hand_loop_module()
    model = models["bundle"] / "model.tflite"
    interpreter = Interpreter(model_path=str(model))
    interpreter.allocate_tensors()
    history = interpreter.get_input_details()[0]["index"]
    assert loop._gather_rows(interpreter) == {history: TINY_ITEMS + 2}
    bench_ids = np.concatenate([inputs[0].ravel() for inputs in
                                synthesized_pool(interpreter, np.random.default_rng(0))])
    assert bench_ids.min() >= 0 and bench_ids.max() < TINY_ITEMS + 2 and len(set(bench_ids)) > 20
    pool = loop.input_pool(interpreter)
    hand_ids = np.concatenate([inputs[0][1].ravel() for inputs in pool])
    assert len(pool) == 64 and all(inputs[0][0] == history for inputs in pool)
    assert hand_ids.min() >= 0 and hand_ids.max() < TINY_ITEMS + 2 and len(set(hand_ids)) > 20
    assert len({inputs[0][1].tobytes() for inputs in pool}) == 64  # no input repeats
    result = loop.raw_invoke_p50(model, runs=5, warmup=1)
    assert result["pool"] == 64 and result["p50_us"] > 0


def test_failed_budget_exits_1(models):
    root = models["root"]
    out_json = root / "fail.json"
    proc = _benchmark(models["bundle"], *RUNS, "--profile", root / "fail.toml", "--output", out_json,
                      "--quiet")
    assert proc.returncode == 1, proc.stderr
    result = json.loads(out_json.read_text())["targets"][0]
    assert result["profile"]["passed"] is False
    assert result["profile"]["results"]["latency_p99_ms"]["status"] == "fail"
    assert result["profile"]["results"]["model_size_mb"]["status"] == "pass"
    assert "FAIL (impossible)" in proc.stdout and "FAILED" in proc.stderr


def test_builtin_profile_and_progress(models):
    proc = _benchmark(models["root"] / "tiny.tflite", *RUNS, "--profile", "tv")
    assert proc.returncode == 0, proc.stderr
    assert "PASS (tv)" in proc.stdout
    assert "raw invoke" in proc.stderr  # progress is shown without --quiet


def test_usage_errors_exit_2(models):
    root = models["root"]
    bad = root / "bad.toml"
    bad.write_text("[budgets]\nlatency_p99 = 3\n")
    proc = _benchmark(models["bundle"], "--profile", bad)
    assert proc.returncode == 2
    assert "bad.toml" in proc.stderr and "budgets.latency_p99" in proc.stderr
    proc = _benchmark(root / "log.csv")
    assert proc.returncode == 2 and "expected a bundle directory" in proc.stderr
    proc = _benchmark(models["bundle"], "--runs", "0")
    assert proc.returncode == 2


def test_broken_model_is_reported_not_crashed(models):
    broken = models["root"] / "broken.tflite"
    broken.write_bytes(b"\x00" * 64)
    proc = _benchmark(broken, *RUNS, "--quiet")
    assert proc.returncode == 1
    assert "broken.tflite" in proc.stdout and "ERROR" in proc.stdout
