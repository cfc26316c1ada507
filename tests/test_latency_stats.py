"""Latency summaries: percentiles of known lists, agreement with numpy, µs conversion."""

import numpy as np
import pytest

from device_runtime.benchmarking.latency_stats import percentile, summarize_ns, summarize_us


def test_known_list_one_to_hundred():
    stats = summarize_us(list(range(100, 0, -1)))  # order must not matter
    # rank = q/100 * 99: p50 -> 49.5 -> 50.5; p90 -> 89.1 -> 90.1; p99 -> 98.01 -> 99.01
    assert stats.p50 == pytest.approx(50.5)
    assert stats.p90 == pytest.approx(90.1)
    assert stats.p99 == pytest.approx(99.01)
    assert stats.max == 100.0
    assert stats.mean == pytest.approx(50.5)
    assert stats.std == pytest.approx(((100**2 - 1) / 12) ** 0.5)  # population std of 1..n
    assert stats.count == 100


def test_small_known_list():
    stats = summarize_us([10.0, 20.0, 30.0, 1000.0])
    assert stats.p50 == pytest.approx(25.0)
    assert stats.p90 == pytest.approx(30.0 + 0.7 * 970.0)
    assert stats.max == 1000.0


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_agrees_with_numpy(seed):
    values = np.random.default_rng(seed).lognormal(3.0, 1.0, size=257)
    stats = summarize_us(values)
    assert stats.p50 == pytest.approx(np.percentile(values, 50))
    assert stats.p90 == pytest.approx(np.percentile(values, 90))
    assert stats.p99 == pytest.approx(np.percentile(values, 99))
    assert stats.mean == pytest.approx(values.mean())
    assert stats.std == pytest.approx(values.std())
    assert stats.max == values.max()


def test_nanoseconds_become_microseconds():
    stats = summarize_ns(np.array([1000, 2000, 3000], dtype=np.int64))
    assert stats.p50 == pytest.approx(2.0)
    assert stats.to_dict()["max"] == pytest.approx(3.0)
    assert set(stats.to_dict()) == {"p50", "p90", "p99", "max", "mean", "std", "count"}


def test_single_sample_and_errors():
    assert summarize_us([7.0]).p99 == 7.0
    with pytest.raises(ValueError, match="no latency samples"):
        summarize_us([])
    with pytest.raises(ValueError, match="non-negative"):
        summarize_us([1.0, -1.0])
    with pytest.raises(ValueError, match="0..100"):
        percentile([1.0], 101)
