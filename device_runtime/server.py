"""A small JSON-over-HTTP API around a :class:`Recommender`, for device apps in other languages.

Standard library only (``http.server.ThreadingHTTPServer``)::

    POST /recommend  {"history": ["1021", 1007], "k": 10, "exclude": [...], "exclude_seen": true}
                     -> 200 {"items": [{"item_id", "score", "rank", "source", "title"}], "source",
                             "unknown_ids", "manifest_sha256"}
    GET  /health     -> 200 {"status": "ok", "items", "history_length", "manifest_sha256", ...}
    POST /reload     {"path": "/data/bundles/new"}   (Authorization: Bearer TOKEN)
                     -> 200 {"status": "reloaded", "info": {...}}

Security choices: binds to 127.0.0.1 unless told otherwise; request bodies are limited
(``max_body_bytes``, default 64 KiB) and every field is validated; bad input always gets a 4xx JSON
``{"error": message, "status": code}``, never a 500. ``/reload`` needs a token: without a
configured token it is refused with 403 (a reload can point the server at any file on the device,
so it is never open by default); with one, the request must carry ``Authorization: Bearer TOKEN``.
"""

from __future__ import annotations

import hmac
import json
import logging
import signal
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from device_runtime.bundle import BundleError
from device_runtime.interpreter import ModelFormatError
from device_runtime.recommender import Recommender

logger = logging.getLogger(__name__)

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 8765
DEFAULT_MAX_BODY_BYTES = 64 * 1024
MAX_HISTORY_ITEMS = 10_000
MAX_ID_CHARS = 256
REQUEST_TIMEOUT_S = 10.0
LOOPBACK_HOSTS = ("127.0.0.1", "localhost", "::1")


class RequestError(Exception):
    """A client error: HTTP status and a message that says what was expected."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


def _id_list(value: Any, field: str) -> list[str | int]:
    if not isinstance(value, list):
        raise RequestError(400, f"field {field!r} must be a JSON array of item ids, got {type(value).__name__}")
    if len(value) > MAX_HISTORY_ITEMS:
        raise RequestError(413, f"field {field!r} has {len(value)} ids; at most {MAX_HISTORY_ITEMS}")
    for position, item in enumerate(value):
        if isinstance(item, bool) or not isinstance(item, str | int):
            raise RequestError(400, f"{field}[{position}] is {json.dumps(item)[:40]}; item ids must be "
                                    "strings or integers")
        if isinstance(item, str) and len(item) > MAX_ID_CHARS:
            raise RequestError(400, f"{field}[{position}] is longer than {MAX_ID_CHARS} characters")
    return value


def parse_recommend_request(body: Any) -> tuple[list[str | int], int, list[str | int], bool]:
    """Validate a ``/recommend`` body; returns (history, k, exclude, exclude_seen) or raises
    :class:`RequestError` naming the field."""
    if not isinstance(body, dict):
        raise RequestError(400, "the request body must be a JSON object like "
                                '{"history": ["id1", "id2"], "k": 10}')
    unknown = sorted(set(body) - {"history", "k", "exclude", "exclude_seen"})
    if unknown:
        raise RequestError(400, f"unknown field(s) {unknown}; expected history, k, exclude, exclude_seen")
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
    return history, k, exclude, exclude_seen


class RecommendationServer(ThreadingHTTPServer):
    """A threading HTTP server bound to one :class:`Recommender` (see the module docstring).

    In-flight requests are allowed to finish on shutdown (``block_on_close``); every connection
    has a socket timeout so a stalled client cannot hold a thread forever.
    """

    daemon_threads = False
    block_on_close = True
    allow_reuse_address = True

    def __init__(self, recommender: Recommender, host: str = DEFAULT_HOST, port: int = DEFAULT_PORT,
                 *, token: str | None = None, max_body_bytes: int = DEFAULT_MAX_BODY_BYTES) -> None:
        """Bind to ``host:port`` (port 0 picks a free port; see ``server_address``)."""
        if token is not None and len(token) < 8:
            raise ValueError("the reload token must be at least 8 characters")
        self.recommender = recommender
        self.token = token
        self.max_body_bytes = max_body_bytes
        self.started = time.monotonic()
        super().__init__((host, port), _Handler)
        if host not in LOOPBACK_HOSTS:
            logger.warning("serving on %s: reachable from other machines on the network", host)


class _Handler(BaseHTTPRequestHandler):
    server: RecommendationServer
    timeout = REQUEST_TIMEOUT_S
    server_version = "edge-rec"
    sys_version = ""

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - stdlib signature
        logger.debug("%s %s", self.address_string(), format % args)

    # ---- plumbing ---------------------------------------------------------------------------
    def _send(self, status: int, payload: dict[str, Any], headers: dict[str, str] | None = None) -> None:
        data = json.dumps(payload, allow_nan=False).encode("utf-8")
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(data)

    def _error(self, status: int, message: str, headers: dict[str, str] | None = None) -> None:
        self._send(status, {"error": message, "status": status}, headers)

    def _read_json(self) -> Any:
        if "chunked" in self.headers.get("Transfer-Encoding", "").lower():
            self.close_connection = True
            raise RequestError(411, "chunked bodies are not supported; send Content-Length")
        length_text = self.headers.get("Content-Length")
        if length_text is None:
            raise RequestError(411, "missing Content-Length header")
        try:
            length = int(length_text)
        except ValueError:
            raise RequestError(400, f"Content-Length {length_text!r} is not an integer") from None
        if length < 0:
            raise RequestError(400, "Content-Length must be >= 0")
        if length > self.server.max_body_bytes:
            self.close_connection = True  # the unread body must not be parsed as the next request
            raise RequestError(413, f"request body of {length} bytes exceeds the limit of "
                                    f"{self.server.max_body_bytes} bytes")
        raw = self.rfile.read(length)
        try:
            return json.loads(raw)
        except (ValueError, UnicodeDecodeError) as exc:
            raise RequestError(400, f"the request body is not valid JSON: {exc}") from None

    def _dispatch(self, routes: dict[str, Any]) -> None:
        path = self.path.split("?", 1)[0]
        handler = routes.get(path)
        try:
            if handler is None:
                known = {"/recommend": "POST", "/reload": "POST", "/health": "GET"}
                if path in known:
                    raise RequestError(405, f"{path} accepts {known[path]} only")
                raise RequestError(404, f"no endpoint {path}; try POST /recommend, GET /health, "
                                        "POST /reload")
            handler()
        except RequestError as exc:
            self._error(exc.status, exc.message)
        except (ConnectionError, TimeoutError):
            self.close_connection = True
        except Exception:  # a bug, not bad input: log it, answer 500, keep serving
            logger.exception("internal error while serving %s %s", self.command, path)
            self._error(500, "internal error; see the server log")

    def do_GET(self) -> None:  # noqa: N802 - stdlib naming
        self._dispatch({"/health": self._health})

    def do_POST(self) -> None:  # noqa: N802
        self._dispatch({"/recommend": self._recommend, "/reload": self._reload})

    def _method_not_allowed(self) -> None:
        self._dispatch({})

    do_PUT = do_DELETE = do_PATCH = _method_not_allowed  # noqa: N815

    # ---- endpoints --------------------------------------------------------------------------
    def _health(self) -> None:
        info = self.server.recommender.info()
        self._send(200, {
            "status": "ok",
            "items": info["items"],
            "history_length": info["history_length"],
            "top_k": info["top_k"],
            "manifest_sha256": info["manifest_sha256"],
            "backend": info["backend"],
            "uptime_s": round(time.monotonic() - self.server.started, 3),
        })

    def _recommend(self) -> None:
        history, k, exclude, exclude_seen = parse_recommend_request(self._read_json())
        recommender = self.server.recommender
        try:
            result = recommender.recommend(history, k, exclude=exclude, exclude_seen=exclude_seen)
        except (ValueError, TypeError) as exc:
            raise RequestError(400, str(exc)) from None
        payload = result.to_dict()
        payload["manifest_sha256"] = recommender.bundle.manifest_sha256
        self._send(200, payload)

    def _reload(self) -> None:
        token = self.server.token
        if token is None:
            raise RequestError(403, "reload is disabled: start the server with --token (or "
                                    "EDGE_REC_SERVE_TOKEN) to enable POST /reload")
        supplied = self.headers.get("Authorization", "")
        expected = f"Bearer {token}"
        if not hmac.compare_digest(supplied.encode("utf-8"), expected.encode("utf-8")):
            self._error(401, "missing or wrong 'Authorization: Bearer <token>' header",
                        {"WWW-Authenticate": "Bearer"})
            return
        body = self._read_json()
        if not isinstance(body, dict) or set(body) != {"path"} or not isinstance(body["path"], str) \
                or not body["path"]:
            raise RequestError(400, 'the reload body must be {"path": "<bundle directory or .tar.gz>"}')
        try:
            info = self.server.recommender.reload(body["path"])
        except (BundleError, ModelFormatError, OSError) as exc:
            raise RequestError(422, f"reload refused, the previous model keeps serving: {exc}") from None
        logger.info("reloaded bundle %s (%s)", info["bundle"], info["manifest_sha256"][:12])
        self._send(200, {"status": "reloaded", "info": info})


def serve(recommender: Recommender, host: str = DEFAULT_HOST, port: int = DEFAULT_PORT, *,
          token: str | None = None, max_body_bytes: int = DEFAULT_MAX_BODY_BYTES,
          ready: threading.Event | None = None) -> None:
    """Serve until SIGTERM or SIGINT, then stop accepting, let in-flight requests finish, return.

    Signal handlers are installed only when called from the main thread (they are restored
    afterwards). ``ready`` is set once the socket is listening.
    """
    server = RecommendationServer(recommender, host, port, token=token, max_body_bytes=max_body_bytes)
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


__all__ = ["RecommendationServer", "RequestError", "parse_recommend_request", "serve",
           "DEFAULT_HOST", "DEFAULT_PORT", "DEFAULT_MAX_BODY_BYTES"]
