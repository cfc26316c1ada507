"""Property tests: every mutated bundle is refused with a typed error or loads and serves validly.

A few hundred cases in the normal run (``EDGE_REC_FUZZ_BUNDLE_CASES`` per mutation kind, default
40); ``make fuzz`` runs the long version and writes ``benchmarks/results/fuzz.md``.
"""

from __future__ import annotations

import os

import pytest
from fuzz_cases import (
    MUTATION_KINDS,
    bundle_outcome,
    draw_mutation,
    is_failure,
    read_base,
    write_case,
)
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

pytest_plugins = ["conftest_bundle"]  # the tiny bundle fixtures

CASES = int(os.environ.get("EDGE_REC_FUZZ_BUNDLE_CASES", "40"))
HISTORY = ["1003", "1007", "1010"]


@pytest.fixture(scope="module")
def base(tiny_bundle_dir):
    return read_base(tiny_bundle_dir)


@pytest.fixture(scope="module")
def workdir(tmp_path_factory):
    return tmp_path_factory.mktemp("fuzz")


@pytest.mark.parametrize("kind", MUTATION_KINDS)
def test_mutated_bundles_are_refused_with_a_typed_error_or_serve_validly(base, workdir, kind):
    outcomes: list[str] = []

    @settings(max_examples=CASES, deadline=None, database=None, derandomize=True,
              suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
    @given(st.data())
    def check(data):
        description, bundle = draw_mutation(data.draw, base, kind)
        outcome = bundle_outcome(write_case(workdir / "case", bundle), HISTORY)
        outcomes.append(outcome)
        assert not is_failure(outcome), f"{description}: {outcome}"

    check()
    assert len(outcomes) >= min(CASES, 10)
    if kind != "model":  # damaged model bytes may still be a loadable model; the rest never is
        assert any(o.startswith("refused") for o in outcomes)
