"""A TV home screen refreshing its "Watch next" row through the edge-rec HTTP API (urllib only).

The TV's UI process talks JSON to ``edge-rec serve`` on the same device, as an app written in any
language would. By default this script starts that server itself from ``--bundle`` on a free
loopback port (and stops it afterwards); with ``--url`` it uses a server that is already running::

    python examples/tv/home_row.py --watched 1021,1007 --watched 1013 --row 8
    edge-rec serve runs/demo/bundle &  python examples/tv/home_row.py --url http://127.0.0.1:8765
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def call(url: str, path: str, body: dict | None = None, timeout: float = 5.0) -> dict:
    """GET (no body) or POST JSON to the API; returns the decoded answer or raises RuntimeError."""
    data = None if body is None else json.dumps(body).encode("utf-8")
    request = urllib.request.Request(url + path, data=data, method="GET" if body is None else "POST",
                                     headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return json.loads(response.read())
    except urllib.error.HTTPError as exc:  # 4xx/5xx carry a JSON {"error": ...}
        raise RuntimeError(f"{path}: HTTP {exc.code}: {json.loads(exc.read()).get('error')}") from exc


def refresh_row(url: str, watched: list[str], size: int, hidden: list[str]) -> list[dict]:
    """One refresh of the "Watch next" row: the shows to display, best first."""
    answer = call(url, "/recommend", {"history": watched, "k": size, "exclude": hidden})
    label = {"model": "Watch next", "popularity": "Popular on this TV",
             "model+popularity": "Watch next"}[answer["source"]]
    print(f"[{label}]  ({answer['unknown_ids']} unknown ids in the history)")
    print("  " + " | ".join(item["title"] or item["item_id"] for item in answer["items"]))
    return answer["items"]


def start_local_server(bundle: str) -> tuple[subprocess.Popen, str]:
    """``edge-rec serve BUNDLE`` on a free loopback port; waits until /health answers."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")])))
    server = subprocess.Popen([sys.executable, "-m", "edge_rec.cli", "serve", bundle, "--port", str(port)],
                              env=env, stderr=subprocess.PIPE, text=True)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if server.poll() is not None:
            raise RuntimeError(f"the server exited: {server.stderr.read().strip()}")
        try:
            call(url, "/health", timeout=1)
            return server, url
        except (OSError, RuntimeError):
            time.sleep(0.1)
    server.kill()
    raise RuntimeError("the server did not start within 30 s")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--bundle", default="runs/demo/bundle", help="bundle to serve when --url is not given")
    parser.add_argument("--url", help="use an already running `edge-rec serve` at this URL")
    parser.add_argument("--watched", action="append", default=[],
                        help="comma-separated ids watched since the last refresh (repeatable: one "
                             "refresh per option)")
    parser.add_argument("--hide", default="", help="comma-separated ids the user hid from the row")
    parser.add_argument("--row", type=int, default=10, help="row length")
    args = parser.parse_args()

    server = None
    try:
        if args.url:
            url = args.url.rstrip("/")
        else:
            server, url = start_local_server(args.bundle)
        health = call(url, "/health")
        print(f"connected to {url}: {health['items']} titles, model {health['manifest_sha256'][:12]}")
        hidden = [h for h in args.hide.split(",") if h]
        watched: list[str] = []
        refresh_row(url, watched, args.row, hidden)  # first boot: popular titles
        for batch in args.watched:
            watched += [w for w in batch.split(",") if w]
            print(f"\nwatched {batch}")
            refresh_row(url, watched, args.row, hidden)
        return 0
    except (OSError, RuntimeError) as exc:
        print(f"home row unavailable: {exc}", file=sys.stderr)
        return 1
    finally:
        if server is not None:
            server.send_signal(signal.SIGTERM)
            server.wait(timeout=15)


if __name__ == "__main__":
    sys.exit(main())
