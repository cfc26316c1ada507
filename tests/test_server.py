"""The JSON HTTP API: answers, 4xx for every kind of bad input, token-guarded reload."""

from __future__ import annotations

import http.client
import json
import threading

import pytest

from device_runtime.bundle import MODEL_FILE
from device_runtime.recommender import Recommender
from device_runtime.server import RecommendationServer

TOKEN = "s3cret-token"

pytest_plugins = ["conftest_bundle"]  # the tiny bundle fixtures


@pytest.fixture
def server(tiny_bundle_dir):
    """A server on a free loopback port, with a reload token; shut down after the test."""
    def start(token=TOKEN, max_body_bytes=4096):
        srv = RecommendationServer(Recommender.load(tiny_bundle_dir), "127.0.0.1", 0,
                                   token=token, max_body_bytes=max_body_bytes)
        thread = threading.Thread(target=srv.serve_forever, kwargs={"poll_interval": 0.05})
        thread.start()
        started.append((srv, thread))
        return srv

    started: list = []
    yield start
    for srv, thread in started:
        srv.shutdown()
        srv.server_close()
        thread.join()


def call(srv, method, path, body=None, headers=None, raw=None):
    """(status, parsed JSON) of one request."""
    conn = http.client.HTTPConnection(*srv.server_address[:2], timeout=10)
    data = raw if raw is not None else (None if body is None else json.dumps(body).encode())
    conn.request(method, path, body=data, headers=headers or {})
    response = conn.getresponse()
    payload = json.loads(response.read())
    conn.close()
    assert response.getheader("Content-Type") == "application/json"
    return response.status, payload


def test_health_and_recommend(server):
    srv = server()
    status, health = call(srv, "GET", "/health")
    assert status == 200 and health["status"] == "ok" and health["items"] == 30
    status, answer = call(srv, "POST", "/recommend", {"history": ["1003", 1007, "zz"], "k": 4,
                                                      "exclude": ["1000"]})
    expected = srv.recommender.recommend(["1003", 1007, "zz"], 4, exclude=["1000"])
    assert status == 200
    assert [item["item_id"] for item in answer["items"]] == expected.item_ids
    assert [item["score"] for item in answer["items"]] == pytest.approx([r.score for r in expected])
    assert answer["unknown_ids"] == 1 and answer["source"] == "model"
    assert answer["manifest_sha256"] == health["manifest_sha256"]
    status, cold = call(srv, "POST", "/recommend", {"history": []})
    assert status == 200 and cold["source"] == "popularity" and len(cold["items"]) == 10


@pytest.mark.parametrize("raw, status, fragment", [
    (b"{not json", 400, "not valid JSON"),
    (b'["a list"]', 400, "JSON object"),
    (b'{"history": "1003"}', 400, "'history' must be a JSON array"),
    (b'{"history": [1.5]}', 400, "history[0]"),
    (b'{"history": [true]}', 400, "history[0]"),
    (b'{"history": ["1003"], "k": "10"}', 400, "'k' must be an integer"),
    (b'{"history": ["1003"], "k": 100000000000000000000}', 400, "out of range"),
    (b'{"history": ["1003"], "k": 0}', 400, "out of range"),
    (b'{"history": ["1003"], "exclude": {"a": 1}}', 400, "'exclude' must be"),
    (b'{"history": ["1003"], "colour": "red"}', 400, "unknown field"),
    (b'{"k": 3}', 400, "missing field 'history'"),
    (b"\xff\xfe", 400, "not valid JSON"),
])
def test_bad_recommend_requests_get_4xx_json(server, raw, status, fragment):
    srv = server()
    got, payload = call(srv, "POST", "/recommend", raw=raw)
    assert got == status and payload["status"] == status
    assert fragment in payload["error"]


def test_oversized_body_missing_length_and_wrong_routes(server):
    srv = server(max_body_bytes=1024)
    body = json.dumps({"history": ["1003"] * 500}).encode()
    assert len(body) > 1024
    status, payload = call(srv, "POST", "/recommend", raw=body)
    assert status == 413 and "exceeds the limit of 1024" in payload["error"]
    assert call(srv, "GET", "/nowhere")[0] == 404
    assert call(srv, "GET", "/recommend")[0] == 405
    assert call(srv, "DELETE", "/health")[0] == 405
    conn = http.client.HTTPConnection(*srv.server_address[:2], timeout=10)
    conn.putrequest("POST", "/recommend")
    conn.endheaders()
    response = conn.getresponse()
    assert response.status == 411
    conn.close()
    assert call(srv, "GET", "/health")[0] == 200  # still serving


def test_reload_is_refused_without_a_configured_token(server, other_bundle_dir):
    srv = server(token=None)
    status, payload = call(srv, "POST", "/reload", {"path": str(other_bundle_dir)},
                           headers={"Authorization": "Bearer anything"})
    assert status == 403 and "--token" in payload["error"]


def test_reload_with_token(server, other_bundle_dir, bundle_copy):
    srv = server()
    before = call(srv, "GET", "/health")[1]["manifest_sha256"]
    good = {"Authorization": f"Bearer {TOKEN}"}
    status, _ = call(srv, "POST", "/reload", {"path": str(other_bundle_dir)},
                     headers={"Authorization": "Bearer wrong-token"})
    assert status == 401
    assert call(srv, "POST", "/reload", {"path": str(other_bundle_dir)})[0] == 401
    assert call(srv, "POST", "/reload", {"path": 3}, headers=good)[0] == 400
    (bundle_copy / MODEL_FILE).write_bytes(b"garbage")
    status, payload = call(srv, "POST", "/reload", {"path": str(bundle_copy)}, headers=good)
    assert status == 422 and "previous model keeps serving" in payload["error"]
    assert call(srv, "GET", "/health")[1]["manifest_sha256"] == before
    status, payload = call(srv, "POST", "/reload", {"path": str(other_bundle_dir)}, headers=good)
    assert status == 200 and payload["status"] == "reloaded"
    after = call(srv, "GET", "/health")[1]["manifest_sha256"]
    assert after != before and after == payload["info"]["manifest_sha256"]
