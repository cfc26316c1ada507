"""HTTP load on ``edge-rec serve``: keep-alive clients on loopback; writes benchmarks/results/http.json + http.md.

    .venv/bin/python benchmarks/http_load.py [--bundle DIR] [--label after] [--code-root REPO]
        [--clients 4] [--requests 20000] [--max-seconds 30]

The server runs in a child process (as on a device) from the code under ``--code-root``
(default: this checkout), so the same client measures another checkout's server, e.g. the
"before" numbers with ``--code-root /work/main --label before``. ``--clients`` threads, each with
one ``http.client.HTTPConnection`` (reused while the server keeps the connection open; an
HTTP/1.0 server closes it after every answer and the client reconnects), send
``POST /recommend`` with 5-item histories until ``--requests`` answers or ``--max-seconds``
have passed, after a warm-up. Reported: requests/s, latency p50/p90/p99/max seen by the client,
errors (any status other than 200), connections opened, and the 1-minute load average before
and after (the machine may be shared). Results are merged by label into http.json, so "before"
and "after" sit side by side. Goal: >= 3,000 req/s and p99 <= 5 ms with 4 clients on 2 cores.
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import platform
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from device_runtime.atomic_file import write_text_atomic  # noqa: E402
from device_runtime.benchmarking.latency_stats import summarize_ns  # noqa: E402

RESULTS_JSON = REPO / "benchmarks" / "results" / "http.json"
RESULTS_MD = REPO / "benchmarks" / "results" / "http.md"
GOAL_RPS = 3000.0
GOAL_P99_MS = 5.0
WARMUP_REQUESTS = 300

# The server child: the same few lines work against any checkout's RecommendationServer.
SERVER_CHILD = r"""
import sys, threading
from device_runtime.recommender import Recommender
from device_runtime.server import RecommendationServer
server = RecommendationServer(Recommender.load(sys.argv[1]), "127.0.0.1", 0)
print(server.server_address[1], flush=True)
def stop():
    sys.stdin.read()          # the parent closes our stdin to stop us
    server.shutdown()
threading.Thread(target=stop, daemon=True).start()
server.serve_forever(poll_interval=0.2)
server.server_close()
"""


def resolve_bundle(arg: str | None) -> Path:
    """``--bundle``, else the demo bundle, else a tiny bundle built once (TensorFlow in a child)."""
    if arg:
        return Path(arg)
    demo = REPO / "runs" / "demo" / "bundle"
    if (demo / "manifest.json").exists():
        return demo
    tiny = REPO / "benchmarks" / "work" / "tiny_bundle"
    if not (tiny / "manifest.json").exists():
        print(f"building a tiny bundle in {tiny}", file=sys.stderr)
        subprocess.run([sys.executable, str(REPO / "tests" / "tiny_bundle.py"), str(tiny)],
                       check=True, cwd=REPO, stdout=subprocess.DEVNULL)
    return tiny


def start_server(bundle: Path, code_root: Path) -> tuple[subprocess.Popen, int]:
    env = dict(os.environ, PYTHONPATH=str(code_root))
    proc = subprocess.Popen([sys.executable, "-c", SERVER_CHILD, str(bundle)], cwd=code_root,
                            env=env, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    line = proc.stdout.readline()
    if not line.strip().isdigit():
        proc.kill()
        raise SystemExit(f"the server child did not start (printed {line!r})")
    return proc, int(line)


def stop_server(proc: subprocess.Popen) -> None:
    proc.stdin.close()
    try:
        proc.wait(timeout=30)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def item_ids(bundle: Path) -> list[str]:
    lines = (bundle / "items.tsv").read_text(encoding="utf-8").splitlines()[1:]
    return [line.split("\t")[1] for line in lines]


class Client(threading.Thread):
    """One keep-alive connection sending requests until told to stop; records latencies (ns)."""

    def __init__(self, port: int, bodies: list[bytes], stop: threading.Event, budget: list[int],
                 budget_lock: threading.Lock) -> None:
        super().__init__(daemon=True)
        self.port, self.bodies, self.stop, self.budget, self.budget_lock = (
            port, bodies, stop, budget, budget_lock)
        self.latencies: list[int] = []
        self.errors = 0
        self.connections = 0
        self.failure: str | None = None

    def take(self) -> bool:
        with self.budget_lock:
            if self.budget[0] <= 0:
                return False
            self.budget[0] -= 1
            return True

    def run(self) -> None:
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=10)
        headers = {"Content-Type": "application/json"}
        i = 0
        try:
            while not self.stop.is_set() and self.take():
                body = self.bodies[i % len(self.bodies)]
                i += 1
                if conn.sock is None:
                    self.connections += 1
                start = time.perf_counter_ns()
                conn.request("POST", "/recommend", body=body, headers=headers)
                response = conn.getresponse()
                response.read()
                self.latencies.append(time.perf_counter_ns() - start)
                if response.status != 200:
                    self.errors += 1
                if response.will_close:
                    conn.close()
        except (OSError, http.client.HTTPException) as exc:
            self.failure = f"{type(exc).__name__}: {exc}"
        finally:
            conn.close()


def run_load(port: int, bodies: list[bytes], clients: int, requests: int, max_seconds: float
             ) -> dict:
    stop = threading.Event()
    budget, lock = [requests], threading.Lock()
    workers = [Client(port, bodies[c::clients], stop, budget, lock) for c in range(clients)]
    start = time.perf_counter()
    for worker in workers:
        worker.start()
    deadline = start + max_seconds
    for worker in workers:
        worker.join(max(0.0, deadline - time.perf_counter()))
    stop.set()
    for worker in workers:
        worker.join(15)
    seconds = time.perf_counter() - start
    latencies = np.concatenate([np.asarray(w.latencies, dtype=np.int64) for w in workers])
    done = int(latencies.size)
    stats = summarize_ns(latencies) if done else None
    return {
        "requests": done,
        "seconds": round(seconds, 3),
        "requests_per_s": round(done / seconds, 1) if seconds else 0.0,
        "latency_ms": {q: round(getattr(stats, q) / 1e3, 3) if stats else None for q in ("p50", "p90", "p99", "max")},
        "errors": sum(w.errors for w in workers),
        "connections_opened": sum(w.connections for w in workers),
        "client_failures": [w.failure for w in workers if w.failure],
        "stopped_by": "time" if done < requests else "count",
    }


def write_markdown(results: dict) -> None:
    lines = ["# HTTP load: `edge-rec serve` on loopback", "",
             "`benchmarks/http_load.py`: keep-alive `http.client` clients in one process, the "
             "server in a child process, `POST /recommend` with 5-item histories. Goal: "
             f">= {GOAL_RPS:,.0f} req/s and p99 <= {GOAL_P99_MS} ms with 4 clients on 2 cores.", "",
             "| label | clients | requests | req/s | p50 ms | p99 ms | max ms | errors | connections "
             "| load avg before/after | nice | bundle | code |",
             "|---|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for label, r in results.items():
        lat = r["latency_ms"]
        lines.append(f"| {label} | {r['clients']} | {r['requests']} | {r['requests_per_s']:,.0f} | "
                     f"{lat['p50']} | {lat['p99']} | {lat['max']} | {r['errors']} | "
                     f"{r['connections_opened']} | {r['load_avg_1m'][0]} / {r['load_avg_1m'][1]} | "
                     f"{r.get('niceness', '')} | {r['bundle']} | {r['code_root']} |")
    lines += ["", "Load averages are the machine's 1-minute load (2 cores, shared with other "
              "jobs); numbers taken under load, or at a raised nice level (client and server both "
              "run at the niceness shown), are lower bounds. \"connections\" counts the TCP "
              "connections the clients opened: one per request means no keep-alive.", ""]
    write_text_atomic(RESULTS_MD, "\n".join(lines))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--bundle")
    parser.add_argument("--label", default="after")
    parser.add_argument("--code-root", default=str(REPO))
    parser.add_argument("--clients", type=int, default=4)
    parser.add_argument("--requests", type=int, default=20_000)
    parser.add_argument("--max-seconds", type=float, default=30.0)
    args = parser.parse_args()
    if not 1 <= args.clients <= 64 or not 1 <= args.requests <= 1_000_000 \
            or not 0 < args.max_seconds <= 600:
        parser.error("--clients 1..64, --requests 1..1000000, --max-seconds 0..600")
    bundle = resolve_bundle(args.bundle)
    ids = item_ids(bundle)
    rng = np.random.default_rng(0)
    bodies = [json.dumps({"history": [ids[j] for j in rng.integers(0, len(ids), 5)], "k": 10}).encode()
              for _ in range(256)]
    load_before = os.getloadavg()[0]
    proc, port = start_server(bundle, Path(args.code_root))
    try:
        run_load(port, bodies, args.clients, WARMUP_REQUESTS, 30)
        result = run_load(port, bodies, args.clients, args.requests, args.max_seconds)
    finally:
        stop_server(proc)
    result.update(clients=args.clients, bundle=str(bundle.relative_to(REPO) if bundle.is_relative_to(REPO)
                                                   else bundle),
                  code_root=args.code_root, load_avg_1m=[round(load_before, 2), round(os.getloadavg()[0], 2)],
                  cpus=os.cpu_count(), niceness=os.nice(0), python=platform.python_version(),
                  goal_met=bool(result["requests_per_s"] >= GOAL_RPS
                                and (result["latency_ms"]["p99"] or 1e9) <= GOAL_P99_MS),
                  measured_at=time.strftime("%Y-%m-%dT%H:%M:%S%z"))
    results = json.loads(RESULTS_JSON.read_text()) if RESULTS_JSON.exists() else {}
    results[args.label] = result
    write_text_atomic(RESULTS_JSON, json.dumps(results, indent=2) + "\n")
    write_markdown(results)
    print(json.dumps({args.label: result}, indent=2))


if __name__ == "__main__":
    main()
