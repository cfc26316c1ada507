"""Property tests: every request body gets 200 or a 4xx with a JSON body, never a 500 or HTML.

``EDGE_REC_FUZZ_HTTP_CASES`` cases (default 200) over one keep-alive connection; ``make fuzz``
runs the long version.
"""

from __future__ import annotations

import http.client
import os
import threading

import pytest
from fuzz_cases import (
    http_bodies,
    http_outcome,
    is_failure,
    raw_exchange,
    raw_outcome,
    raw_requests,
)
from hypothesis import HealthCheck, given, settings

from device_runtime.recommender import Recommender
from device_runtime.server import RecommendationServer

pytest_plugins = ["conftest_bundle"]  # the tiny bundle fixtures

CASES = int(os.environ.get("EDGE_REC_FUZZ_HTTP_CASES", "200"))


@pytest.fixture(scope="module")
def live_server(tiny_bundle_dir):
    srv = RecommendationServer(Recommender.load(tiny_bundle_dir), "127.0.0.1", 0, max_body_bytes=1 << 20)
    thread = threading.Thread(target=srv.serve_forever, kwargs={"poll_interval": 0.05})
    thread.start()
    yield srv
    srv.shutdown()
    srv.server_close()
    thread.join()


def test_hostile_bodies_get_200_or_4xx_json(live_server):
    conn = http.client.HTTPConnection(*live_server.server_address[:2], timeout=10)
    outcomes: list[str] = []

    @settings(max_examples=CASES, deadline=None, database=None, derandomize=True,
              suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
    @given(http_bodies)
    def check(body):
        conn.request("POST", "/recommend", body=body, headers={"Content-Type": "application/json"})
        response = conn.getresponse()
        outcome = http_outcome(response.status, response.getheader("Content-Type"), response.read())
        outcomes.append(outcome)
        if response.will_close:
            conn.close()
        assert not is_failure(outcome), f"{body[:200]!r}: {outcome}"

    check()
    conn.close()
    assert {"200", "400"} <= set(outcomes)


def test_hostile_raw_requests_get_json_answers(live_server):
    @settings(max_examples=CASES // 2, deadline=None, database=None, derandomize=True,
              suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
    @given(raw_requests)
    def check(request):
        answer = raw_exchange(live_server.server_address[:2], request)
        outcome = raw_outcome(answer, head=request.startswith(b"HEAD "))
        assert not is_failure(outcome), f"{request[:200]!r}: {outcome} {answer[:300]!r}"

    check()
