"""One scoring rule: the build report's TFLite metrics equal `edge-rec benchmark --eval-data`'s.

The report path (``converters.tflite_evaluation.evaluate_tflite``: model bytes + index-space
eval set + the bundle's popularity order) and the benchmark path
(``device_runtime.benchmarking.engine.evaluate_recommender``: ``Recommender.recommend`` on external ids)
run the same tiny bundle on the same users, with histories long enough that the graph's top-K
runs out after seen items are removed, so the popularity fill is exercised.
"""

from __future__ import annotations

import numpy as np

from converters.tflite_evaluation import evaluate_tflite
from device_runtime.benchmarking.engine import EvalExamples, evaluate_recommender
from device_runtime.benchmarking.progress_line import ProgressLine
from device_runtime.bundle import PAD_INDEX
from device_runtime.recommender import Recommender
from device_runtime.served_ranking import (
    evaluation_depth,
    popularity_fill_order,
    served_items,
    served_rankings,
)
from tests.tiny_bundle import TINY_CATALOG, TINY_HISTORY_LENGTH, TINY_ITEM_IDS, TINY_TOP_K

pytest_plugins = ["conftest_bundle"]

METRICS = ("hr@10", "ndcg@10", "mrr", "coverage@10")


def test_graph_order_minus_banned_then_popularity_fill():
    fill = popularity_fill_order([9, 4], catalog_size=10)
    assert fill == [9, 4, 2, 3, 5, 6, 7, 8]
    items, from_model = served_items([5, 3, 0, 1, 9, 42], banned={3}, fill_order=fill, k=5, catalog_size=10)
    assert items == [5, 9, 4, 2, 6] and from_model == 2  # PAD, OOV, banned 3 and out-of-catalog 42 skipped
    assert served_items((), banned={9}, fill_order=fill, k=3, catalog_size=10) == ([4, 2, 3], 0)
    assert served_items([5], banned=set(range(2, 10)), fill_order=fill, k=3, catalog_size=10) == ([], 0)


def test_served_rankings_skips_the_graph_for_a_cold_history_and_pads_with_minus_one():
    top_ids = np.array([[5, 3, 9, 4], [5, 3, 9, 4]])
    ranked = served_rankings(top_ids, [[3, 4], [1]], fill_order=(), depth=5, catalog_size=10)
    np.testing.assert_array_equal(ranked, [[5, 9, -1, -1, -1], [-1] * 5])
    ranked = served_rankings(top_ids, [[3, 4], [1]], fill_order=[8, 7], depth=3, catalog_size=10)
    np.testing.assert_array_equal(ranked, [[5, 9, 8], [8, 7, -1]])


def test_evaluation_depth_is_at_least_ten_and_capped_by_the_catalog():
    assert evaluation_depth(5, 1000) == 10
    assert evaluation_depth(50, 1000) == 50
    assert evaluation_depth(500, 1000) == 100
    assert evaluation_depth(50, 22) == 20


def _examples(users: int, seed: int):
    """Index-space histories of 1..3L items (longer than the graph sees) and one target each."""
    rng = np.random.default_rng(seed)
    seen, targets = [], []
    for _ in range(users):
        length = int(rng.integers(1, 3 * TINY_HISTORY_LENGTH + 1))
        items = rng.choice(np.arange(2, TINY_CATALOG), size=length + 1, replace=False)
        seen.append([int(i) for i in items[:-1]])
        targets.append(int(items[-1]))
    return seen, targets


def test_report_path_and_benchmark_path_agree_on_a_tiny_bundle(tiny_bundle_dir):
    seen, targets = _examples(60, seed=3)
    histories = np.full((len(seen), TINY_HISTORY_LENGTH), PAD_INDEX, dtype=np.int32)
    for row, items in enumerate(seen):
        tail = items[-TINY_HISTORY_LENGTH:]
        histories[row, TINY_HISTORY_LENGTH - len(tail):] = tail

    class EvalSet:  # the fields of edge_rec.data.EvalSet
        pass

    eval_set = EvalSet()
    eval_set.histories, eval_set.targets, eval_set.seen = histories, np.asarray(targets), seen
    recommender = Recommender.load(tiny_bundle_dir)
    popularity = recommender.bundle.manifest.popularity
    report = evaluate_tflite(recommender.bundle.model_bytes, eval_set, TINY_CATALOG,
                             popularity_order=popularity)

    examples = EvalExamples(
        source="test", histories=[[TINY_ITEM_IDS[i] for i in row] for row in seen],
        targets=[TINY_ITEM_IDS[t] for t in targets], history_indices=seen, target_indices=targets,
        catalog_size=TINY_CATALOG)
    benchmark = evaluate_recommender(recommender, examples, ProgressLine("eval", enabled=False))

    for key in METRICS:
        assert round(report[key], 4) == round(benchmark[key], 4), (key, report, benchmark)
    assert report["users"] == benchmark["users"] == 60 and benchmark["depth"] == TINY_TOP_K
    # the fill matters here: some users saw enough of the graph's top-K to need popular items
    sources = {recommender.recommend([TINY_ITEM_IDS[i] for i in row], k=TINY_TOP_K).source for row in seen}
    assert "model+popularity" in sources
    # and it changes the numbers: without the fill (the old report rule) a target found only
    # among the popular items is missed
    graph_only = evaluate_tflite(recommender.bundle.model_bytes, eval_set, TINY_CATALOG, popularity_order=())
    assert graph_only["hr@10"] < report["hr@10"], (graph_only, report)
