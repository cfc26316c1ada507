"""Recommender semantics, checked against the raw interpreter; concurrency and reload under load."""

from __future__ import annotations

import random
import threading

import numpy as np
import pytest
from tiny_bundle import (
    TINY_HISTORY_LENGTH,
    TINY_ITEM_IDS,
    TINY_POPULARITY,
    TINY_TOP_K,
    rewrite_manifest,
)

from converters.bundle_writer import archive_bundle
from device_runtime.bundle import MODEL_FILE, SCHEMA_VERSION, BundleError
from device_runtime.interpreter import create_interpreter
from device_runtime.recommender import Recommendation, Recommender

L = TINY_HISTORY_LENGTH
ITEMS = TINY_ITEM_IDS[2:]

pytest_plugins = ["conftest_bundle"]  # the tiny bundle fixtures


@pytest.fixture(scope="module")
def rec(tiny_bundle_dir):
    return Recommender.load(tiny_bundle_dir)


def raw_top(bundle_dir, padded_indices):
    """The graph's (top_ids, top_scores) for one already padded int32[L] row, straight from TFLite."""
    interpreter = create_interpreter((bundle_dir / MODEL_FILE).read_bytes())
    runner = interpreter.get_signature_runner("serving_default")
    out = runner(history=np.asarray([padded_indices], dtype=np.int32))
    return out["top_ids"][0].tolist(), out["top_scores"][0].tolist()


def index_of(item_id):
    return TINY_ITEM_IDS.index(str(item_id))


def test_recommend_matches_the_raw_graph_with_padding_and_oov(rec, tiny_bundle_dir):
    history = ["1003", "nope", 1007]
    result = rec.recommend(history, k=5)
    ids, scores = raw_top(tiny_bundle_dir, [0, 0, index_of(1003), 1, index_of(1007)])
    expected = [(TINY_ITEM_IDS[i], s) for i, s in zip(ids, scores, strict=True)
                if i not in (index_of(1003), index_of(1007))][:5]
    assert [(r.item_id, r.score) for r in result] == expected
    assert [r.rank for r in result] == [1, 2, 3, 4, 5]
    assert result.source == "model" and result.unknown_ids == 1
    assert all(isinstance(r, Recommendation) and r.source == "model" for r in result)
    assert result[0].title == f"Track {index_of(result[0].item_id) - 2}"


def test_ints_and_strings_are_the_same_ids(rec):
    assert rec.recommend([1003, 1010], k=7) == rec.recommend(["1003", "1010"], k=7)


def test_only_the_last_L_items_feed_the_model_but_all_are_excluded(rec, tiny_bundle_dir):
    history = ITEMS[:L + 4]
    tail = history[-L:]
    assert rec.recommend(history, k=8, exclude_seen=False) == rec.recommend(tail, k=8, exclude_seen=False)
    result = rec.recommend(history, k=20)
    assert not set(result.item_ids) & set(history)  # items older than L are excluded too
    assert len(result) == 20


def test_exclude_and_seen_never_appear_and_popularity_fills(rec, tiny_bundle_dir):
    history = ["1004"]
    ids, _ = raw_top(tiny_bundle_dir, [0] * (L - 1) + [index_of(1004)])
    model_items = [TINY_ITEM_IDS[i] for i in ids if TINY_ITEM_IDS[i] != "1004"]
    exclude = model_items[:3] + ["not-in-catalog"]
    result = rec.recommend(history, k=20, exclude=exclude)
    assert result.source == "model+popularity"
    assert not set(result.item_ids) & (set(exclude) | {"1004"})
    assert len(result) == 20 and len(set(result.item_ids)) == 20
    n_model = len(model_items) - 3
    assert result.item_ids[:n_model] == model_items[3:]
    assert all(r.source == "model" for r in result[:n_model])
    assert all(r.source == "popularity" for r in result[n_model:])
    popular_rest = [TINY_ITEM_IDS[i] for i in TINY_POPULARITY
                    if TINY_ITEM_IDS[i] not in set(result.item_ids[:n_model]) | set(exclude) | {"1004"}]
    assert result.item_ids[n_model:] == popular_rest[:20 - n_model]


def test_empty_and_all_unknown_histories_get_popularity(rec):
    popular = [TINY_ITEM_IDS[i] for i in TINY_POPULARITY]
    empty = rec.recommend([], k=4)
    assert empty.source == "popularity" and empty.item_ids == popular[:4] and empty.unknown_ids == 0
    unknown = rec.recommend(["x", "y"], k=4, exclude=[popular[0]])
    assert unknown.source == "popularity" and unknown.unknown_ids == 2
    assert unknown.item_ids == popular[1:5]


def test_k_and_id_types_are_validated(rec):
    assert len(rec.recommend(["1003"], k=len(ITEMS), exclude_seen=False)) == len(ITEMS)
    with pytest.raises(ValueError, match="catalog has 30 items"):
        rec.recommend(["1003"], k=len(ITEMS) + 1)
    with pytest.raises(ValueError):
        rec.recommend(["1003"], k=0)
    with pytest.raises(TypeError):
        rec.recommend(["1003"], k=True)
    with pytest.raises(TypeError, match="history must be a list"):
        rec.recommend("1003")
    with pytest.raises(TypeError, match="history contains 2.5"):
        rec.recommend(["1003", 2.5])


def test_batch_equals_single_calls(rec):
    histories = [ITEMS[i:i + 3] for i in range(0, 20, 4)] + [[]]
    batch = rec.recommend_batch(histories, k=6, exclude=["1000"])
    assert batch == [rec.recommend(h, k=6, exclude=["1000"]) for h in histories]


def test_archive_loads_like_the_directory(rec, tiny_bundle_dir, tmp_path):
    from_archive = Recommender.load(archive_bundle(tiny_bundle_dir, tmp_path / "b.tar.gz"))
    assert from_archive.recommend(["1002", "1009"], k=10) == rec.recommend(["1002", "1009"], k=10)
    assert from_archive.info()["manifest_sha256"] == rec.info()["manifest_sha256"]


def test_signature_mismatch_with_manifest_is_refused(bundle_copy):
    def claim_longer_history(manifest):
        manifest["history_length"] = L + 1
        manifest["model"]["inputs"][0]["shape"] = [1, L + 1]

    rewrite_manifest(bundle_copy, claim_longer_history)
    with pytest.raises(BundleError, match="the model does not belong to this manifest"):
        Recommender.load(bundle_copy)


def test_info_describes_the_serving_bundle(rec, tiny_bundle_dir):
    info = rec.info()
    assert info["bundle"] == str(tiny_bundle_dir.resolve())
    assert (info["items"], info["history_length"], info["top_k"]) == (30, L, TINY_TOP_K)
    assert info["backend"] == "ai_edge_litert" and info["schema_version"] == SCHEMA_VERSION


def _workload(seed, n):
    rng = random.Random(seed)
    return [([rng.choice(ITEMS + ["unknown"]) for _ in range(rng.randrange(0, 9))], rng.randrange(1, 15))
            for _ in range(n)]


def _hammer(rec, work, results, errors, start):
    start.wait()
    try:
        results.extend(rec.recommend(history, k=k) for history, k in work)
    except Exception as exc:  # noqa: BLE001 - any failure is a test failure
        errors.append(exc)


def test_eight_threads_return_what_sequential_calls_return(tiny_bundle_dir):
    rec = Recommender.load(tiny_bundle_dir)
    work = [_workload(seed, 500) for seed in range(8)]
    expected = [[rec.recommend(h, k=k) for h, k in w] for w in work]
    results = [[] for _ in work]
    errors: list[Exception] = []
    start = threading.Event()
    threads = [threading.Thread(target=_hammer, args=(rec, w, r, errors, start))
               for w, r in zip(work, results, strict=True)]
    for t in threads:
        t.start()
    start.set()
    for t in threads:
        t.join()
    assert not errors
    assert results == expected
    assert 1 <= rec.info()["interpreters"] <= 8


def test_reload_under_load_fails_no_request(tiny_bundle_dir, other_bundle_dir, bundle_copy):
    rec = Recommender.load(tiny_bundle_dir)
    other = Recommender.load(other_bundle_dir)
    work = [_workload(100 + seed, 500) for seed in range(8)]
    allowed = [[(rec.recommend(h, k=k), other.recommend(h, k=k)) for h, k in w] for w in work]
    assert any(a != b for pairs in allowed for a, b in pairs)  # the two models really differ
    (bundle_copy / MODEL_FILE).write_bytes(b"garbage")
    results = [[] for _ in work]
    errors: list[Exception] = []
    start = threading.Event()
    threads = [threading.Thread(target=_hammer, args=(rec, w, r, errors, start))
               for w, r in zip(work, results, strict=True)]
    for t in threads:
        t.start()
    start.set()
    failed_reloads = 0
    while any(t.is_alive() for t in threads):
        for path in (other_bundle_dir, bundle_copy, tiny_bundle_dir):
            try:
                rec.reload(path)
            except BundleError:
                failed_reloads += 1
    for t in threads:
        t.join()
    assert not errors
    assert failed_reloads >= 1
    for got, pairs in zip(results, allowed, strict=True):
        assert len(got) == len(pairs)
        assert all(g in pair for g, pair in zip(got, pairs, strict=True))
    # the last successful reload was tiny_bundle_dir; the failed one left it serving
    rec.reload(other_bundle_dir)
    with pytest.raises(BundleError):
        rec.reload(bundle_copy)
    assert rec.info()["bundle"] == str(other_bundle_dir.resolve())
    assert rec.recommend(["1003"], k=5) == other.recommend(["1003"], k=5)


def test_graph_ids_outside_the_catalog_are_never_served():
    from device_runtime.served_ranking import graph_positions
    ids = [5, 1, -3, 7, 9000, 5, 8, 6]
    banned = {0, 1, 8}
    # negative / >= C ids and repeats are dropped, as well as banned ones
    assert graph_positions(ids, banned, 3, catalog_size=100) == [0, 3, 7]
    assert graph_positions(ids, banned, 10, catalog_size=100) == [0, 3, 7]
    assert graph_positions([5, 7, 1, 9], banned, 2, catalog_size=100) == [0, 1]  # the fast path
