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
    (b"\xff\xfe", 400, "byte-order mark"),
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


# ---- HTTP/1.1 behaviour and hostile requests -------------------------------------------------

def raw_exchange(srv, data: bytes, *, timeout=10) -> bytes:
    """Send raw bytes, return everything the server answers until it closes the connection."""
    import socket

    with socket.create_connection(srv.server_address[:2], timeout=timeout) as sock:
        sock.sendall(data)
        chunks = []
        while chunk := sock.recv(65536):
            chunks.append(chunk)
    return b"".join(chunks)


def parse_raw(answer: bytes) -> tuple[int, dict, dict]:
    head, _, body = answer.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    headers = {k.lower(): v.strip() for k, v in (line.split(":", 1) for line in lines[1:])}
    assert int(headers["content-length"]) == len(body)
    return int(lines[0].split()[1]), headers, json.loads(body)


def test_keep_alive_serves_many_requests_on_one_connection(server):
    srv = server()
    conn = http.client.HTTPConnection(*srv.server_address[:2], timeout=10)
    sockets = set()
    for i in range(20):
        body = json.dumps({"history": [str(1000 + i % 30)], "k": 3}).encode()
        conn.request("POST", "/recommend", body=body, headers={"Content-Type": "application/json"})
        response = conn.getresponse()
        payload = json.loads(response.read())
        assert response.status == 200 and len(payload["items"]) == 3
        assert response.version == 11 and not response.will_close
        assert response.getheader("Content-Length") is not None
        sockets.add(id(conn.sock))
    conn.request("GET", "/nowhere")
    response = conn.getresponse()
    assert response.status == 404 and json.loads(response.read())["status"] == 404
    conn.request("GET", "/health")
    assert conn.getresponse().status == 200
    assert len(sockets) == 1  # never reconnected
    conn.close()


@pytest.mark.parametrize("request_bytes, status", [
    (b"GARBAGE\r\n\r\n", 400),
    (b"GET / HTTP/9.9 extra\r\n\r\n", 400),
    (b"GET /health HTTP/1.1x\r\n\r\n", 400),
    (b"GET /" + b"a" * 70000 + b" HTTP/1.1\r\n\r\n", 414),
    (b"GET /health HTTP/1.1\r\nX-Big: " + b"b" * 70000 + b"\r\n\r\n", 431),
    (b"GET /health HTTP/1.1\r\n" + b"".join(b"X-%d: 1\r\n" % i for i in range(150)) + b"\r\n", 431),
    (b"BREW /health HTTP/1.1\r\n\r\n", 405),
    (b"GET /health HTTP/0.9\r\n\r\n", 505),
    (b"GET /health HTTP/2.0\r\n\r\n", 505),
    (b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03\r\n\r\n", 400),  # a TLS hello
    (b"POST /recommend HTTP/1.1\r\nContent-Length: 1_0\r\n\r\n{}", 400),
    (b"POST /recommend HTTP/1.1\r\nContent-Length: -1\r\n\r\n{}", 400),
])
def test_errors_the_stdlib_detects_are_answered_with_json(server, request_bytes, status):
    srv = server()
    got, headers, payload = parse_raw(raw_exchange(srv, request_bytes))
    assert got == status and payload["status"] == status and payload["error"]
    assert headers["content-type"] == "application/json" and headers["connection"] == "close"
    assert call(srv, "GET", "/health")[0] == 200


def test_head_and_options(server):
    srv = server()
    conn = http.client.HTTPConnection(*srv.server_address[:2], timeout=10)
    conn.request("HEAD", "/health")
    response = conn.getresponse()
    assert response.status == 200 and response.read() == b""
    assert int(response.getheader("Content-Length")) > 0
    conn.request("OPTIONS", "/recommend")
    response = conn.getresponse()
    assert response.status == 204 and response.getheader("Allow") == "POST, OPTIONS"
    assert response.read() == b""
    conn.request("HEAD", "/recommend")
    response = conn.getresponse()
    assert response.status == 405 and response.getheader("Allow") == "POST"
    response.read()
    conn.close()


@pytest.mark.parametrize("raw, fragment", [
    (b'{"history": ' + b"[" * 5000 + b"]" * 5000 + b"}", "nested too deeply"),
    (b"[" * 100000, "nested too deeply"),
    (b'{"history": [NaN]}', "NaN is not a finite number"),
    (b'{"history": ["1003"], "k": Infinity}', "Infinity is not a finite number"),
    (b'{"history": [' + b"9" * 5000 + b"]}", "not valid JSON"),
])
def test_hostile_json_bodies_get_400(server, raw, fragment):
    srv = server(max_body_bytes=200_000)
    status, payload = call(srv, "POST", "/recommend", raw=raw)
    assert status == 400 and fragment in payload["error"]


def test_unread_body_closes_the_connection_instead_of_being_parsed(server):
    srv = server()
    body = b'GET /health HTTP/1.1\r\n\r\n'  # looks like a request if it were left in the stream
    answer = raw_exchange(srv, b"POST /reload HTTP/1.1\r\nContent-Length: %d\r\n\r\n%s"
                          % (len(body), body))
    status, headers, payload = parse_raw(answer)  # exactly one response, then close
    assert status == 401 and headers["connection"] == "close"


def test_non_finite_scores_are_never_serialized(server):
    from device_runtime.recommender import Recommendation, RecommendationList

    srv = server()
    nan_list = RecommendationList((Recommendation("1003", float("nan"), 1),), "model", 0)
    srv.recommender.recommend = lambda *args, **kwargs: nan_list
    status, payload = call(srv, "POST", "/recommend", {"history": ["1003"], "k": 1})
    assert status == 500 and "non-finite score" in payload["error"]


def test_clients_that_disconnect_leave_no_traceback(server, capfd, caplog):
    import socket
    import struct

    srv = server()
    body = json.dumps({"history": ["1003"] * 100, "k": 30}).encode()
    for _ in range(20):
        sock = socket.create_connection(srv.server_address[:2], timeout=10)
        sock.sendall(b"POST /recommend HTTP/1.1\r\nContent-Length: %d\r\n\r\n%s" % (len(body), body))
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        sock.close()  # reset before the answer is read
    sock = socket.create_connection(srv.server_address[:2], timeout=10)
    sock.sendall(b"POST /recommend HTTP/1.1\r\nContent-Length: 500\r\n\r\n{\"hist")
    sock.close()  # body cut short
    assert call(srv, "GET", "/health")[0] == 200
    srv.shutdown()
    err = capfd.readouterr().err
    assert "Traceback" not in err and "Exception occurred" not in err
    assert not [r for r in caplog.records if r.levelname in ("ERROR", "CRITICAL")]


def test_thread_count_is_bounded(server):
    import socket

    srv = server()
    srv.max_threads = 1
    srv._slots = threading.BoundedSemaphore(1)
    srv.busy_wait_s = 0.2
    holder = http.client.HTTPConnection(*srv.server_address[:2], timeout=10)
    holder.request("GET", "/health")  # keep-alive: this connection keeps the only thread
    assert holder.getresponse().read()
    status, headers, payload = parse_raw(raw_exchange(srv, b"GET /health HTTP/1.1\r\n\r\n"))
    assert status == 503 and "busy" in payload["error"]
    holder.close()
    for _ in range(50):  # the slot comes back once the holder's thread has finished
        with socket.create_connection(srv.server_address[:2], timeout=10) as sock:
            sock.sendall(b"GET /health HTTP/1.1\r\nConnection: close\r\n\r\n")
            if b" 200 " in sock.recv(100):
                break
    else:
        pytest.fail("the thread slot was never released")
    counters = call(srv, "GET", "/health")[1]["counters"]
    assert counters["busy_refusals"] == 1


def test_health_counts_requests_and_reloads(server, other_bundle_dir, bundle_copy):
    srv = server()
    good = {"Authorization": f"Bearer {TOKEN}"}
    call(srv, "POST", "/recommend", {"history": ["1003"]})
    call(srv, "POST", "/recommend", {"history": "x"})
    call(srv, "POST", "/reload", {"path": str(other_bundle_dir)}, headers=good)
    (bundle_copy / MODEL_FILE).write_bytes(b"garbage")
    call(srv, "POST", "/reload", {"path": str(bundle_copy)}, headers=good)
    counters = call(srv, "GET", "/health")[1]["counters"]
    assert counters["requests"] == 4  # this /health is counted once its answer is sent
    assert counters["responses"]["2xx"] == 2 and counters["responses"]["4xx"] == 2
    assert (counters["reloads"], counters["reloads_refused"]) == (1, 1)


def _nan_manifest(bundle_dir):
    path = bundle_dir / "manifest.json"
    path.write_text(path.read_text().replace('"ndcg@10": 0.1', '"ndcg@10": NaN'))


def _nested_manifest(bundle_dir):
    path = bundle_dir / "manifest.json"
    path.write_text(path.read_text().replace('"ndcg@10": 0.1', '"ndcg@10": ' + "[" * 3000 + "]" * 3000))


@pytest.mark.parametrize("damage", [_nan_manifest, _nested_manifest, "zlib", "symlink"])
def test_reload_of_hostile_bundles_is_422_and_the_old_model_serves(server, bundle_copy, tmp_path, damage):
    from converters.bundle_writer import archive_bundle

    srv = server()
    before = call(srv, "GET", "/health")[1]["manifest_sha256"]
    target = bundle_copy
    if damage == "zlib":
        data = bytearray(archive_bundle(bundle_copy, tmp_path / "b.tar.gz").read_bytes())
        for position in range(30, len(data) - 30, 50):
            data[position] ^= 0xFF
        target = tmp_path / "b.tar.gz"
        target.write_bytes(bytes(data))
    elif damage == "symlink":
        (bundle_copy / "items.tsv").rename(tmp_path / "items.tsv")
        (bundle_copy / "items.tsv").symlink_to(tmp_path / "items.tsv")
    else:
        damage(bundle_copy)
    status, payload = call(srv, "POST", "/reload", {"path": str(target)},
                           headers={"Authorization": f"Bearer {TOKEN}"})
    assert status == 422 and "previous model keeps serving" in payload["error"]
    assert "BundleError" in payload["error"]
    assert call(srv, "GET", "/health")[1]["manifest_sha256"] == before
