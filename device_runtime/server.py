"""A small JSON-over-HTTP/1.1 API around a :class:`Recommender`, for device apps in other languages.

Standard library only (``http.server.ThreadingHTTPServer``)::

    POST /recommend  {"history": ["1021", 1007], "k": 10, "exclude": [...], "exclude_seen": true}
                     -> 200 {"items": [{"item_id", "score", "rank", "source", "title"}], "source",
                             "unknown_ids", "manifest_sha256"}
    GET  /health     -> 200 {"status": "ok", "items", "history_length", "manifest_sha256", ...,
                             "counters": {"requests", "responses": {"2xx", ...}, "reloads",
                                          "reloads_refused", "busy_refusals"}}   (also HEAD)
    POST /reload     {"path": "/data/bundles/new"}   (Authorization: Bearer TOKEN)
                     -> 200 {"status": "reloaded", "info": {...}}, 422 when the bundle is refused
    POST /feedback   {"user": "alice", "item": "1021", "kind": "like"}   (kind: play, skip, like,
                     dislike or a number) -> 200 {"learned": true}; 409 without a state folder
    POST /forget     {"user": "alice"} -> 200 {"forgotten": true, "files_removed": 1}

``/recommend`` takes an optional ``"user"``: that user's head re-ranks the result (serve with
``--state-dir``). No endpoint returns what a user did: a head never leaves the device.
    OPTIONS <route>  -> 204 with ``Allow``

HTTP/1.1 with keep-alive: every response carries ``Content-Length``, and a connection stays open
until the client closes it, sends ``Connection: close``, idles for ``REQUEST_TIMEOUT_S``, or a
request could not be read completely (its unread body must not be taken for the next request).

Security choices: binds to 127.0.0.1 unless told otherwise; request bodies are limited
(``max_body_bytes``, default 64 KiB) and every field is validated; every error status, including
the ones the stdlib produces itself (garbage request line, 414, 431, 505), has a JSON body
``{"error": message, "status": code}``; client mistakes (deep nesting, NaN, bad fields) get 4xx,
never a 500. A model that produces a non-finite score is answered with 500, never serialized.
At most ``max_threads`` connections are served at once (the rest wait in a backlog of
``LISTEN_BACKLOG``, or get 503 after ``BUSY_WAIT_S``). ``/reload`` needs a token: without a
configured token it is refused with 403 (a reload can point the server at any file on the device,
so it is never open by default); with one, the request must carry ``Authorization: Bearer TOKEN``.
A refused reload (any bundle or model error) answers 422 and the previous model keeps serving.
"""

from __future__ import annotations

import hmac
import json
import logging
import math
import signal
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from device_runtime.bundle_schema import BundleError
from device_runtime.recommender import Recommender
from device_runtime.strict_json import StrictJSONError, parse_strict_json

logger = logging.getLogger(__name__)

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 8765
DEFAULT_MAX_BODY_BYTES = 64 * 1024
DEFAULT_MAX_THREADS = 32
LISTEN_BACKLOG = 128
BUSY_WAIT_S = 2.0
MAX_HISTORY_ITEMS = 10_000
MAX_ID_CHARS = 256
REQUEST_TIMEOUT_S = 10.0
LOOPBACK_HOSTS = ("127.0.0.1", "localhost", "::1")
ROUTES = {"/recommend": "POST", "/reload": "POST", "/feedback": "POST", "/forget": "POST",
          "/health": "GET, HEAD"}
# What a refused /reload can raise: every bundle/model problem is a ValueError (BundleError,
# ModelFormatError and their subclasses); OSError for unreadable paths; RuntimeError for an
# interpreter that fails while the new model is checked. The old model keeps serving.
RELOAD_REFUSALS = (ValueError, OSError, RuntimeError)


class RequestError(Exception):
    """An error answer: HTTP status (4xx for client mistakes), a message that says what was
    expected, and extra headers."""

    def __init__(self, status: int, message: str, headers: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.headers = headers


def parse_json_body(raw: bytes) -> Any:
    """A request body as strict JSON (:func:`~device_runtime.strict_json.parse_strict_json`, the
    rule bundle manifests follow too), or :class:`RequestError` 400 naming the problem: invalid
    UTF-8 or JSON, a byte-order mark, nesting too deep, ``NaN``/``Infinity``."""
    try:
        return parse_strict_json(raw, source="the request body")
    except StrictJSONError as exc:
        raise RequestError(400, str(exc)[:300]) from None


def _id_list(value: Any, field: str) -> list[str | int]:
    if not isinstance(value, list):
        raise RequestError(400, f"field {field!r} must be a JSON array of item ids, got {type(value).__name__}")
    if len(value) > MAX_HISTORY_ITEMS:
        raise RequestError(413, f"field {field!r} has {len(value)} ids; at most {MAX_HISTORY_ITEMS}")
    for position, item in enumerate(value):
        if isinstance(item, bool) or not isinstance(item, (str, int)):
            raise RequestError(400, f"{field}[{position}] is {json.dumps(item)[:40]}; item ids must be "
                                    "strings or integers")
        if isinstance(item, str) and len(item) > MAX_ID_CHARS:
            raise RequestError(400, f"{field}[{position}] is longer than {MAX_ID_CHARS} characters")
    return value


def _user_id(body: dict[str, Any], required: bool) -> str | int | None:
    """The ``user`` field: a non-empty string or an integer (absent -> None unless required)."""
    if "user" not in body:
        if required:
            raise RequestError(400, "missing field 'user' (the user's id, a string or an integer)")
        return None
    user = body["user"]
    if isinstance(user, bool) or not isinstance(user, (str, int)) or user == "" \
            or (isinstance(user, str) and len(user) > MAX_ID_CHARS):
        raise RequestError(400, f"field 'user' must be a non-empty string (at most {MAX_ID_CHARS} "
                                "characters) or an integer")
    return user


def _known_fields(body: Any, allowed: tuple[str, ...], example: str) -> dict[str, Any]:
    if not isinstance(body, dict):
        raise RequestError(400, f"the request body must be a JSON object like {example}")
    unknown = sorted(set(body) - set(allowed))
    if unknown:
        raise RequestError(400, f"unknown field(s) {unknown}; expected {', '.join(allowed)}")
    return body


def parse_recommend_request(body: Any) -> tuple[list[str | int], int, list[str | int], bool, str | int | None]:
    """Validate a ``/recommend`` body; returns (history, k, exclude, exclude_seen, user) or raises
    :class:`RequestError` naming the field."""
    body = _known_fields(body, ("history", "k", "exclude", "exclude_seen", "user"),
                         '{"history": ["id1", "id2"], "k": 10}')
    if "history" not in body:
        raise RequestError(400, "missing field 'history' (a JSON array of item ids, oldest first; "
                                "may be empty)")
    history = _id_list(body["history"], "history")
    k = body.get("k", 10)
    if isinstance(k, bool) or not isinstance(k, int):
        raise RequestError(400, f"field 'k' must be an integer, got {json.dumps(k)[:40]}")
    exclude = _id_list(body.get("exclude", []), "exclude")
    exclude_seen = body.get("exclude_seen", True)
    if not isinstance(exclude_seen, bool):
        raise RequestError(400, "field 'exclude_seen' must be true or false")
    return history, k, exclude, exclude_seen, _user_id(body, required=False)


def parse_feedback_request(body: Any) -> tuple[str | int, str | int, str | float]:
    """Validate a ``/feedback`` body; returns (user, item, kind)."""
    body = _known_fields(body, ("user", "item", "kind"), '{"user": "alice", "item": "1021", "kind": "like"}')
    user = _user_id(body, required=True)
    if "item" not in body:
        raise RequestError(400, "missing field 'item' (the item's id)")
    _id_list([body["item"]], "item")
    kind = body.get("kind", "play")
    if isinstance(kind, bool) or not isinstance(kind, (str, int, float)):
        raise RequestError(400, "field 'kind' must be play, skip, like, dislike or a number")
    return user, body["item"], kind


class _Counters:
    """Request and reload counters for ``/health`` (thread-safe)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.requests = 0
        self.by_class = {"2xx": 0, "3xx": 0, "4xx": 0, "5xx": 0}
        self.reloads = 0
        self.reloads_refused = 0
        self.busy_refusals = 0

    def response(self, status: int) -> None:
        key = f"{status // 100}xx"
        with self._lock:
            self.requests += 1
            if key in self.by_class:
                self.by_class[key] += 1

    def reload(self, ok: bool) -> None:
        with self._lock:
            if ok:
                self.reloads += 1
            else:
                self.reloads_refused += 1

    def busy(self) -> None:
        with self._lock:
            self.busy_refusals += 1

    def snapshot(self) -> dict[str, Any]:
        with self._lock:
            return {"requests": self.requests, "responses": dict(self.by_class),
                    "reloads": self.reloads, "reloads_refused": self.reloads_refused,
                    "busy_refusals": self.busy_refusals}


def _busy_response() -> bytes:
    """The complete 503 answer for a connection that found no free thread."""
    body = json.dumps({"error": "the server is busy: every connection thread is in use; retry "
                                "shortly", "status": 503}).encode("utf-8")
    head = ("HTTP/1.1 503 Service Unavailable\r\nContent-Type: application/json\r\n"
            f"Connection: close\r\nRetry-After: 1\r\nContent-Length: {len(body)}\r\n\r\n")
    return head.encode("ascii") + body


_BUSY_RESPONSE = _busy_response()


class RecommendationServer(ThreadingHTTPServer):
    """A threading HTTP/1.1 server bound to one :class:`Recommender` (see the module docstring).

    At most ``max_threads`` connections are served at once (one thread each, kept for the life of
    a keep-alive connection); a connection that finds no free thread within
    ``busy_wait_s`` gets ``503`` and is closed, so the thread count never exceeds the bound.
    In-flight requests are allowed to finish on shutdown (``block_on_close``); every connection
    has a socket timeout so a stalled or idle client cannot hold a thread forever. Errors from
    clients that disconnect early are logged at debug level, without a traceback.
    """

    daemon_threads = False
    block_on_close = True
    allow_reuse_address = True
    request_queue_size = LISTEN_BACKLOG
    busy_wait_s = BUSY_WAIT_S

    def __init__(self, recommender: Recommender, host: str = DEFAULT_HOST, port: int = DEFAULT_PORT,
                 *, token: str | None = None, max_body_bytes: int = DEFAULT_MAX_BODY_BYTES,
                 max_threads: int = DEFAULT_MAX_THREADS) -> None:
        """Bind to ``host:port`` (port 0 picks a free port; see ``server_address``)."""
        if token is not None and len(token) < 8:
            raise ValueError("the reload token must be at least 8 characters")
        if type(max_threads) is not int or max_threads < 1:
            raise ValueError(f"max_threads must be an integer >= 1, got {max_threads!r}")
        self.recommender = recommender
        self.token = token
        self.max_body_bytes = max_body_bytes
        self.max_threads = max_threads
        self.counters = _Counters()
        self.started = time.monotonic()
        self._slots = threading.BoundedSemaphore(max_threads)
        super().__init__((host, port), _Handler)
        if host not in LOOPBACK_HOSTS:
            logger.warning("serving on %s: reachable from other machines on the network", host)

    def process_request(self, request: Any, client_address: Any) -> None:
        """Serve the connection on a new thread once one of ``max_threads`` slots is free."""
        if not self._slots.acquire(timeout=self.busy_wait_s):
            self.counters.busy()
            try:
                request.sendall(_BUSY_RESPONSE)
            except OSError:
                pass
            self.shutdown_request(request)
            return
        try:
            super().process_request(request, client_address)
        except BaseException:
            self._slots.release()
            raise

    def process_request_thread(self, request: Any, client_address: Any) -> None:
        try:
            super().process_request_thread(request, client_address)
        finally:
            self._slots.release()

    def handle_error(self, request: Any, client_address: Any) -> None:
        """A client that went away is not a server error: no traceback for it."""
        error = sys.exc_info()[1]
        if isinstance(error, (ConnectionError, TimeoutError)):
            logger.debug("%s disconnected: %s", client_address, error)
            return
        logger.exception("unexpected error while serving %s", client_address)


class _Handler(BaseHTTPRequestHandler):
    server: RecommendationServer
    timeout = REQUEST_TIMEOUT_S
    server_version = "edge-rec"
    sys_version = ""
    protocol_version = "HTTP/1.1"  # keep-alive; every response carries Content-Length
    default_request_version = "HTTP/1.0"  # garbage request lines still get a status line + JSON
    disable_nagle_algorithm = True
    wbufsize = 1 << 16  # headers and body leave in one write; flushed after every response
    _body_consumed = False

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - stdlib signature
        logger.debug("%s %s", self.address_string(), format % args)

    # ---- plumbing ---------------------------------------------------------------------------
    def parse_request(self) -> bool:
        """The stdlib's parsing, except that an explicit ``HTTP/0.x`` version (which would get a
        bare body without status line or headers) is answered with 505 and JSON."""
        if not super().parse_request():
            return False
        if self.request_version.startswith("HTTP/0."):
            self.send_error(505, "HTTP/0.x is not supported; use HTTP/1.1")
            return False
        return True

    def send_response(self, code: int, message: str | None = None) -> None:
        self.server.counters.response(code)
        super().send_response(code, message)

    def send_error(self, code: int, message: str | None = None, explain: str | None = None) -> None:
        """Every error the stdlib raises itself (bad request line, 414, 431, 505, ...) as JSON; an
        unknown method gets 405 (with ``Allow``) rather than the stdlib's 501."""
        if str(getattr(self, "request_version", "")).startswith("HTTP/0."):
            self.request_version = "HTTP/1.0"  # an HTTP/0.9 answer would have no status line
        headers = {"Connection": "close"}
        if code == 501:  # an unknown method is the client's mistake: 405 with what is allowed
            path = (getattr(self, "path", "") or "").split("?", 1)[0]
            code, message = 405, f"method {str(self.command)[:40]!r} is not supported"
            headers["Allow"] = f"{ROUTES[path]}, OPTIONS" if path in ROUTES else "GET, HEAD, POST, OPTIONS"
        short, long = self.responses.get(code, ("Error", ""))
        detail = message if message and message != short else (explain or long)
        self.close_connection = True  # the request could not be parsed: do not trust the stream
        self._send(code, {"error": f"{short}: {detail}" if detail else short, "status": code}, headers)

    def _send(self, status: int, payload: dict[str, Any] | None,
              headers: dict[str, str] | None = None) -> None:
        data = b"" if payload is None else json.dumps(payload, allow_nan=False).encode("utf-8")
        headers = dict(headers or {})
        if self._body_pending():
            # the body of this request was not read: it must not be parsed as the next request
            self.close_connection = True
            headers["Connection"] = "close"
        self.send_response(status)
        if payload is not None:
            self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        for name, value in headers.items():
            self.send_header(name, value)
        self.end_headers()
        if self.command != "HEAD" and data:
            self.wfile.write(data)
        self.wfile.flush()

    def _body_pending(self) -> bool:
        if self._body_consumed or not hasattr(self, "headers") or self.headers is None:
            return False
        if "chunked" in self.headers.get("Transfer-Encoding", "").lower():
            return True
        length = self.headers.get("Content-Length", "0").strip()
        return length not in ("", "0")

    def _error(self, status: int, message: str, headers: dict[str, str] | None = None) -> None:
        self._send(status, {"error": message, "status": status}, headers)

    def _read_json(self) -> Any:
        if "chunked" in self.headers.get("Transfer-Encoding", "").lower():
            raise RequestError(411, "chunked bodies are not supported; send Content-Length")
        length_text = self.headers.get("Content-Length")
        if length_text is None:
            raise RequestError(411, "missing Content-Length header")
        length_text = length_text.strip()
        if not (length_text.isascii() and length_text.isdigit()):  # int() would take "+5", "5_0"
            self.close_connection = True
            raise RequestError(400, f"Content-Length {length_text[:40]!r} is not a non-negative "
                                    "decimal integer")
        length = int(length_text)
        if length > self.server.max_body_bytes:
            raise RequestError(413, f"request body of {length} bytes exceeds the limit of "
                                    f"{self.server.max_body_bytes} bytes")
        raw = self.rfile.read(length)
        if len(raw) < length:
            self.close_connection = True
            raise RequestError(400, f"the body ended after {len(raw)} of {length} bytes")
        self._body_consumed = True
        return parse_json_body(raw)

    def _dispatch(self, routes: dict[str, Any]) -> None:
        self._body_consumed = False
        path = self.path.split("?", 1)[0]
        handler = routes.get(path)
        try:
            if handler is None:
                if path in ROUTES:
                    raise RequestError(405, f"{path} accepts {ROUTES[path]} only",
                                       {"Allow": ROUTES[path]})
                raise RequestError(404, f"no endpoint {path[:200]}; try POST /recommend, "
                                        "GET /health, POST /reload")
            handler()
        except RequestError as exc:
            self._error(exc.status, exc.message, exc.headers)
        except (ConnectionError, TimeoutError):
            self.close_connection = True
        except Exception:  # a bug, not bad input: log it, answer 500, keep serving
            logger.exception("internal error while serving %s %s", self.command, path[:200])
            self.close_connection = True
            self._error(500, "internal error; see the server log")

    def do_GET(self) -> None:  # noqa: N802 - stdlib naming
        self._dispatch({"/health": self._health})

    def do_HEAD(self) -> None:  # noqa: N802
        self._dispatch({"/health": self._health})  # same headers as GET, no body

    def do_POST(self) -> None:  # noqa: N802
        self._dispatch({"/recommend": self._recommend, "/reload": self._reload,
                        "/feedback": self._feedback, "/forget": self._forget})

    def do_OPTIONS(self) -> None:  # noqa: N802
        path = self.path.split("?", 1)[0]
        if path == "*" or path in ROUTES:
            self._body_consumed = False
            allow = "GET, HEAD, POST, OPTIONS" if path == "*" else f"{ROUTES[path]}, OPTIONS"
            self._send(204, None, {"Allow": allow})
        else:
            self._dispatch({})

    def _method_not_allowed(self) -> None:
        self._dispatch({})

    do_PUT = do_DELETE = do_PATCH = _method_not_allowed  # noqa: N815

    # ---- endpoints --------------------------------------------------------------------------
    def _health(self) -> None:
        server = self.server
        info = server.recommender.info()
        self._send(200, {
            "status": "ok",
            "items": info["items"],
            "history_length": info["history_length"],
            "top_k": info["top_k"],
            "manifest_sha256": info["manifest_sha256"],
            "backend": info["backend"],
            "uptime_s": round(time.monotonic() - server.started, 3),
            "max_threads": server.max_threads,
            "counters": server.counters.snapshot(),
        })

    def _recommend(self) -> None:
        history, k, exclude, exclude_seen, user = parse_recommend_request(self._read_json())
        recommender = self.server.recommender
        if user is not None and not recommender.personalized:
            raise RequestError(409, "recommend with 'user' needs personalization: start the server "
                                    "with --state-dir")
        try:
            result = recommender.recommend(history, k, exclude=exclude, exclude_seen=exclude_seen, user=user)
        except BundleError:  # the model misbehaved (a ValueError subclass): not the client's fault
            raise
        except (ValueError, TypeError) as exc:
            raise RequestError(400, str(exc)) from None
        payload = result.to_dict()
        if not all(math.isfinite(item["score"]) for item in payload["items"]):
            logger.error("the model returned a non-finite score for history %.200s", history)
            raise RequestError(500, "the model returned a non-finite score; the bundle is faulty "
                                    "(reload a good one)")
        payload["manifest_sha256"] = recommender.bundle.manifest_sha256
        self._send(200, payload)

    def _feedback(self) -> None:
        user, item, kind = parse_feedback_request(self._read_json())
        recommender = self.server.recommender
        if not recommender.personalized:
            raise RequestError(409, "feedback needs personalization: start the server with --state-dir")
        try:
            learned = recommender.feedback(user, item, kind)
        except (ValueError, TypeError) as exc:
            raise RequestError(400, str(exc)) from None
        self._send(200, {"learned": learned})

    def _forget(self) -> None:
        body = _known_fields(self._read_json(), ("user",), '{"user": "alice"}')
        user = _user_id(body, required=True)
        recommender = self.server.recommender
        if not recommender.personalized:
            raise RequestError(409, "forget needs personalization: start the server with --state-dir")
        removed = recommender.forget(user)
        self._send(200, {"forgotten": True, "files_removed": removed})

    def _reload(self) -> None:
        token = self.server.token
        if token is None:
            raise RequestError(403, "reload is disabled: start the server with --token (or "
                                    "EDGE_REC_SERVE_TOKEN) to enable POST /reload")
        supplied = self.headers.get("Authorization", "")
        expected = f"Bearer {token}"
        if not hmac.compare_digest(supplied.encode("utf-8", "surrogateescape"),
                                   expected.encode("utf-8")):
            raise RequestError(401, "missing or wrong 'Authorization: Bearer <token>' header",
                               {"WWW-Authenticate": "Bearer"})
        body = self._read_json()
        if not isinstance(body, dict) or set(body) != {"path"} or not isinstance(body["path"], str) \
                or not body["path"] or "\x00" in body["path"]:
            raise RequestError(400, 'the reload body must be {"path": "<bundle directory or .tar.gz>"}')
        try:
            info = self.server.recommender.reload(body["path"])
        except RELOAD_REFUSALS as exc:
            self.server.counters.reload(ok=False)
            logger.warning("reload of %.200s refused: %s", body["path"], exc)
            raise RequestError(422, f"reload refused, the previous model keeps serving: "
                                    f"{type(exc).__name__}: {exc}") from None
        self.server.counters.reload(ok=True)
        logger.info("reloaded bundle %s (%s)", info["bundle"], info["manifest_sha256"][:12])
        self._send(200, {"status": "reloaded", "info": info})


def serve(recommender: Recommender, host: str = DEFAULT_HOST, port: int = DEFAULT_PORT, *,
          token: str | None = None, max_body_bytes: int = DEFAULT_MAX_BODY_BYTES,
          max_threads: int = DEFAULT_MAX_THREADS, ready: threading.Event | None = None) -> None:
    """Serve until SIGTERM or SIGINT, then stop accepting, let in-flight requests finish, return.

    Signal handlers are installed only when called from the main thread (they are restored
    afterwards). ``ready`` is set once the socket is listening.
    """
    server = RecommendationServer(recommender, host, port, token=token, max_body_bytes=max_body_bytes,
                                  max_threads=max_threads)
    bound_host, bound_port = server.server_address[:2]
    logger.info("serving %s on http://%s:%s (reload %s)", recommender.info()["bundle"], bound_host,
                bound_port, "enabled" if token else "disabled")

    def stop(signum: int, _frame: Any) -> None:
        logger.info("received %s, shutting down", signal.Signals(signum).name)
        threading.Thread(target=server.shutdown, daemon=True).start()

    previous: dict[int, Any] = {}
    if threading.current_thread() is threading.main_thread():
        for signum in (signal.SIGTERM, signal.SIGINT):
            previous[signum] = signal.signal(signum, stop)
    try:
        if ready is not None:
            ready.set()
        server.serve_forever(poll_interval=0.2)
    finally:
        server.server_close()
        for signum, handler in previous.items():
            signal.signal(signum, handler)
        logger.info("server stopped")


__all__ = ["RecommendationServer", "RequestError", "parse_feedback_request", "parse_recommend_request", "serve",
           "DEFAULT_HOST", "DEFAULT_PORT", "DEFAULT_MAX_BODY_BYTES"]
