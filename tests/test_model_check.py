"""Load-time self-check, memory limit, bounded interpreter pool, and non-finite scores at serve time.

The hostile models below have valid hashes and the contract's signature; only what they compute is
wrong, which is what the self-check exists for.
"""

from __future__ import annotations

import threading

import numpy as np
import pytest
from tiny_bundle import (
    TINY_CATALOG,
    TINY_HISTORY_LENGTH,
    TINY_ITEM_IDS,
    TINY_POPULARITY,
    TINY_TITLES,
    TINY_TOP_K,
)

from device_runtime import (
    BundleError,
    InterpreterPoolTimeout,
    ModelCheckError,
    ModelMemoryError,
    ModelOutputError,
    Recommender,
    RuntimeLimits,
)
from device_runtime.interpreter_pool import InterpreterPool

pytest_plugins = ["conftest_bundle"]

HUGE_ELEMENTS = 2**28  # float32: 1 GiB
TRAP_INDEX = 5  # a history holding this item makes the "trap" model return NaN
L, K, C = TINY_HISTORY_LENGTH, TINY_TOP_K, TINY_CATALOG


def hostile_bytes(kind: str) -> bytes:
    """A model with the serving signature whose outputs are wrong in the way ``kind`` says."""
    from edge_rec.keras_shim import keras, set_global_seed, tf

    set_global_seed(0)
    history = keras.Input(shape=(L,), dtype="int32", name="history")
    embedded = keras.layers.Embedding(C, 4)(history)
    logits = keras.layers.Dense(C)(keras.layers.GlobalAveragePooling1D()(embedded))
    model = keras.Model(history, logits)

    @tf.function(input_signature=[tf.TensorSpec([1, L], tf.int32, name="history")])
    def serve(history):
        scores = model(history)[:, 2:]
        if kind == "fails":  # Gather out of bounds: fails to invoke
            scores = scores + tf.gather(tf.zeros([C]), history + 1000)[:, :1]
        elif kind == "huge":  # a 1 GiB intermediate tensor from a few-KB file
            wide = tf.tile(tf.cast(history, tf.float32), [1, HUGE_ELEMENTS // L])
            scores = scores + tf.reduce_sum(wide, axis=1, keepdims=True) * 0.0
        top = tf.math.top_k(scores, k=K)
        ids, values = top.indices + 2, top.values
        if kind == "nan":
            values = values * float("nan")
        elif kind == "outside":
            ids = ids + C
        elif kind == "trap":  # NaN only for histories holding TRAP_INDEX
            trapped = tf.reduce_any(tf.equal(history, TRAP_INDEX))
            values = values + tf.where(trapped, float("nan"), 0.0)
        return {"top_ids": ids, "top_scores": values}

    converter = tf.lite.TFLiteConverter.from_concrete_functions([serve.get_concrete_function()], model)
    return converter.convert()


def write_hostile(out_dir, kind: str):
    from converters.bundle_writer import write_bundle

    return write_bundle(out_dir, tflite_bytes=hostile_bytes(kind), vocabulary_ids=TINY_ITEM_IDS,
                        titles=TINY_TITLES, history_length=L, top_k=K,
                        quantization={"variant": "float32"},
                        popularity_order=np.asarray(TINY_POPULARITY, dtype=np.int64),
                        metrics={}, build_info={"source": f"tests/test_model_check.py ({kind})"})


@pytest.fixture(scope="module")
def hostile(tmp_path_factory):
    root = tmp_path_factory.mktemp("hostile")
    return {kind: write_hostile(root / kind, kind) for kind in ("nan", "outside", "fails", "trap", "huge")}


@pytest.mark.parametrize(("kind", "message"), [
    ("nan", "non-finite scores"),
    ("outside", "outside the catalog"),
    ("fails", "fails to run on a padding-only history"),
])
def test_a_model_that_fails_its_self_check_is_refused_with_a_bundle_error(hostile, kind, message):
    with pytest.raises(ModelCheckError, match=message) as caught:
        Recommender.load(hostile[kind])
    assert isinstance(caught.value, BundleError)
    assert "model.tflite" in str(caught.value)


def test_reload_of_a_hostile_model_is_refused_and_the_old_model_keeps_serving(tiny_bundle_dir, hostile):
    rec = Recommender.load(tiny_bundle_dir)
    before = rec.recommend(["1003", "1004"], k=5).item_ids
    for kind in ("nan", "outside", "fails"):
        with pytest.raises(ModelCheckError):
            rec.reload(hostile[kind])
    assert rec.info()["bundle"] == str(tiny_bundle_dir)
    assert rec.recommend(["1003", "1004"], k=5).item_ids == before


def test_a_non_finite_score_at_serve_time_is_an_error_not_a_result(hostile):
    rec = Recommender.load(hostile["trap"])  # passes the self-check: popular items are not the trap
    assert len(rec.recommend([TINY_ITEM_IDS[3]], k=5)) == 5
    with pytest.raises(ModelOutputError, match="non-finite score"):
        rec.recommend([TINY_ITEM_IDS[TRAP_INDEX]], k=5)


def test_a_model_over_the_memory_limit_is_refused_before_it_serves(tiny_bundle_dir):
    needed = Recommender.load(tiny_bundle_dir).info()["tensor_bytes"]
    assert needed > 0
    with pytest.raises(ModelMemoryError, match="memory limit") as caught:
        Recommender.load(tiny_bundle_dir, limits=RuntimeLimits(memory_limit_bytes=needed - 1))
    assert isinstance(caught.value, BundleError)
    # the budget also caps how many interpreters the pool may hold
    rec = Recommender.load(tiny_bundle_dir, limits=RuntimeLimits(memory_limit_bytes=2 * needed + 1))
    assert rec.info()["max_interpreters"] == 2


def test_a_model_asking_for_a_gibibyte_is_refused_by_default_without_allocating_it(hostile):
    from device_runtime.benchmarking.process_memory import current_rss_mb

    assert (hostile["huge"] / "model.tflite").stat().st_size < 64 * 1024
    before = current_rss_mb()
    with pytest.raises(ModelMemoryError, match=r"1024\.\d MiB, more than the memory limit of 256\.0 MiB"):
        Recommender.load(hostile["huge"])
    assert current_rss_mb() - before < 100  # refused before allocate_tensors


def test_the_pool_never_exceeds_its_maximum_and_callers_wait(tiny_bundle_dir):
    rec = Recommender.load(tiny_bundle_dir, limits=RuntimeLimits(max_interpreters=2))
    expected = rec.recommend(["1001", "1002"], k=5).item_ids
    barrier = threading.Barrier(6)
    results, errors = [], []

    def call():
        barrier.wait()
        try:
            for _ in range(30):
                results.append(rec.recommend(["1001", "1002"], k=5).item_ids)
        except Exception as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    threads = [threading.Thread(target=call) for _ in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert not errors and len(results) == 180 and all(r == expected for r in results)
    assert rec.info()["interpreters"] <= 2 and rec.info()["max_interpreters"] == 2


def test_a_caller_that_waits_too_long_gets_a_timeout(tiny_bundle_dir):
    rec = Recommender.load(tiny_bundle_dir, limits=RuntimeLimits(max_interpreters=1, pool_wait_s=0.2))
    pool = rec._serving.pool
    held = pool.acquire()
    try:
        with pytest.raises(InterpreterPoolTimeout, match="busy"):
            rec.recommend(["1001"], k=3)
    finally:
        pool.release(held)
    assert len(rec.recommend(["1001"], k=3)) == 3


def test_pool_wakes_a_waiting_caller_and_recovers_capacity_after_a_factory_error():
    made: list = []

    def factory():
        made.append(object() if made else "failed")
        if made == ["failed"]:
            raise RuntimeError("boom")
        return made[-1]

    pool = InterpreterPool(factory, capacity=2, wait_s=5.0, first="first")
    first = pool.acquire()
    with pytest.raises(RuntimeError, match="boom"):
        pool.acquire()  # the factory's failure does not use up capacity
    second = pool.acquire()
    assert pool.size == 2 and second is made[-1]
    got = []
    waiter = threading.Thread(target=lambda: got.append(pool.acquire()))
    waiter.start()
    waiter.join(0.2)
    assert waiter.is_alive() and not got  # capacity reached: it waits
    pool.release(first)
    waiter.join(5)
    assert got == [first] and pool.size == 2


@pytest.mark.parametrize("bad", [
    {"memory_limit_bytes": 0}, {"max_interpreters": 0}, {"max_interpreters": 1.5},
    {"pool_wait_s": 0}, {"pool_wait_s": float("inf")},
])
def test_runtime_limits_refuse_nonsense(bad):
    with pytest.raises(ValueError, match="RuntimeLimits"):
        RuntimeLimits(**bad)
