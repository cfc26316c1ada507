"""``make fuzz``: the long run of the property tests; writes benchmarks/results/fuzz.json + fuzz.md.

    .venv/bin/python benchmarks/fuzz.py [--bundles 10000] [--http 10000] [--bundle DIR]

Counts default to ``EDGE_REC_FUZZ_BUNDLES`` / ``EDGE_REC_FUZZ_HTTP`` (10,000 each). Bundles are
split evenly over the mutation kinds of ``tests/fuzz_cases.py`` (re-hashed model bytes, manifest
fields, manifest bytes, items.tsv, archives) and each is loaded as the device would
(``verify_bundle``, ``Recommender``, one ``recommend``); HTTP bodies go to ``POST /recommend`` of
an in-process server over one keep-alive connection, and ``--raw`` (``EDGE_REC_FUZZ_RAW``, 2,000)
raw requests with hostile request lines and headers each on a new connection. Every outcome is counted; outcomes starting
with ESCAPED (an untyped exception or a 5xx) or INVALID (non-finite scores, ids outside the
catalog, a body that is not JSON) are bugs, listed with the mutation that produced them. Cases are
random (a new seed each run, printed); the run is bounded by the counts and ``--max-minutes``.
The exit status is 1 when any bug was found.
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import platform
import random
import sys
import threading
import time
from collections import Counter
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tests"))
sys.path.insert(0, str(REPO))

from fuzz_cases import (  # noqa: E402
    MUTATION_KINDS,
    bundle_outcome,
    draw_mutation,
    http_bodies,
    http_outcome,
    is_failure,
    raw_exchange,
    raw_outcome,
    raw_requests,
    read_base,
    write_case,
)
from http_load import resolve_bundle  # noqa: E402
from hypothesis import HealthCheck, Phase, given, seed, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

from device_runtime.atomic_file import write_text_atomic  # noqa: E402
from device_runtime.recommender import Recommender  # noqa: E402
from device_runtime.server import RecommendationServer  # noqa: E402

RESULTS_JSON = REPO / "benchmarks" / "results" / "fuzz.json"
RESULTS_MD = REPO / "benchmarks" / "results" / "fuzz.md"
WORK = REPO / "benchmarks" / "work" / "fuzz"
HISTORY = ["1003", "1007", "1010"]
EXAMPLES_PER_BUG = 3


class _OutOfTime(Exception):
    """Raised inside a case once the time budget is spent: ends the Hypothesis run early."""


def _settings(cases: int):
    return settings(max_examples=cases, deadline=None, database=None, phases=[Phase.generate],
                    suppress_health_check=list(HealthCheck))


def _summary_key(outcome: str) -> str:
    """Outcome without the free-text message, so that counts group."""
    return outcome.split(":", 1)[0] if is_failure(outcome) else outcome


def fuzz_bundles(base: dict[str, bytes], total: int, deadline: float, run_seed: int
                 ) -> tuple[dict[str, Counter], dict[str, list[str]]]:
    counts: dict[str, Counter] = {}
    bugs: dict[str, list[str]] = {}
    per_kind = max(1, total // len(MUTATION_KINDS))

    def make_case(kind: str, counter: Counter):
        @seed(run_seed)
        @_settings(per_kind)
        @given(st.data())
        def case(data):
            if time.monotonic() > deadline:
                raise _OutOfTime
            description, bundle = draw_mutation(data.draw, base, kind)
            outcome = bundle_outcome(write_case(WORK / "case", bundle), HISTORY)
            counter[_summary_key(outcome)] += 1
            if is_failure(outcome):
                examples = bugs.setdefault(f"{kind}: {_summary_key(outcome)}", [])
                if len(examples) < EXAMPLES_PER_BUG:
                    examples.append(f"{description} -> {outcome}")

        return case

    for kind in MUTATION_KINDS:
        counter = counts.setdefault(kind, Counter())
        try:
            make_case(kind, counter)()
        except _OutOfTime:
            print(f"time budget spent during {kind}", file=sys.stderr)
        print(f"bundles {kind}: {sum(counter.values())} cases {dict(counter)}", file=sys.stderr)
    return counts, bugs


def fuzz_http(server: RecommendationServer, total: int, deadline: float, run_seed: int
              ) -> tuple[Counter, dict[str, list[str]]]:
    counter: Counter = Counter()
    bugs: dict[str, list[str]] = {}
    conn = http.client.HTTPConnection(*server.server_address[:2], timeout=10)

    @seed(run_seed)
    @_settings(total)
    @given(http_bodies)
    def case(body):
        if time.monotonic() > deadline:
            raise _OutOfTime
        conn.request("POST", "/recommend", body=body, headers={"Content-Type": "application/json"})
        response = conn.getresponse()
        outcome = http_outcome(response.status, response.getheader("Content-Type"), response.read())
        if response.will_close:
            conn.close()
        counter[_summary_key(outcome)] += 1
        if is_failure(outcome):
            examples = bugs.setdefault(_summary_key(outcome), [])
            if len(examples) < EXAMPLES_PER_BUG:
                examples.append(f"{body[:120]!r} -> {outcome}")

    try:
        case()
    except _OutOfTime:
        print("time budget spent during http", file=sys.stderr)
    finally:
        conn.close()
    print(f"http: {sum(counter.values())} bodies {dict(counter)}", file=sys.stderr)
    return counter, bugs


def fuzz_raw(server: RecommendationServer, total: int, deadline: float, run_seed: int
             ) -> tuple[Counter, dict[str, list[str]]]:
    counter: Counter = Counter()
    bugs: dict[str, list[str]] = {}

    @seed(run_seed)
    @_settings(total)
    @given(raw_requests)
    def case(request):
        if time.monotonic() > deadline:
            raise _OutOfTime
        answer = raw_exchange(server.server_address[:2], request)
        outcome = raw_outcome(answer, head=request.startswith(b"HEAD "))
        counter[_summary_key(outcome)] += 1
        if is_failure(outcome):
            examples = bugs.setdefault(f"raw: {_summary_key(outcome)}", [])
            if len(examples) < EXAMPLES_PER_BUG:
                examples.append(f"{request[:120]!r} -> {outcome}")

    try:
        case()
    except _OutOfTime:
        print("time budget spent during raw requests", file=sys.stderr)
    print(f"raw: {sum(counter.values())} requests {dict(counter)}", file=sys.stderr)
    return counter, bugs


def write_markdown(result: dict) -> None:
    lines = ["# Fuzz: hostile bundles and HTTP bodies", "",
             f"`make fuzz` (`benchmarks/fuzz.py`), seed {result['seed']}, {result['measured_at']}, "
             f"{result['seconds']:.0f} s. Bugs are outcomes starting with ESCAPED (an untyped "
             "exception or a 5xx) or INVALID (non-finite scores, ids outside the catalog, a body "
             "that is not JSON); `refused: ...` is the documented typed error.", "",
             f"## Bundles: {result['bundles']['cases']} cases, {result['bundles']['bugs']} bugs", "",
             "| mutation | outcome | count |", "|---|---|---|"]
    for kind, counter in result["bundles"]["by_kind"].items():
        for outcome, count in sorted(counter.items(), key=lambda kv: -kv[1]):
            lines.append(f"| {kind} | {outcome} | {count} |")
    lines += ["", f"## HTTP bodies: {result['http']['cases']} cases, {result['http']['bugs']} bugs", "",
              "| outcome (status) | count |", "|---|---|"]
    for outcome, count in sorted(result["http"]["outcomes"].items(), key=lambda kv: -kv[1]):
        lines.append(f"| {outcome} | {count} |")
    lines += ["", f"## Raw requests (request line, headers, body): {result['raw']['cases']} cases, "
              f"{result['raw']['bugs']} bugs", "",
              "| statuses answered, in order | count |", "|---|---|"]
    for outcome, count in sorted(result["raw"]["outcomes"].items(), key=lambda kv: -kv[1]):
        lines.append(f"| {outcome} | {count} |")
    examples = {**result["bundles"]["bug_examples"], **result["http"]["bug_examples"],
                **result["raw"]["bug_examples"]}
    if examples:
        lines += ["", "## Bug examples", ""]
        for key, items in examples.items():
            lines.append(f"- **{key}**")
            lines += [f"  - `{item[:300]}`" for item in items]
    lines.append("")
    write_text_atomic(RESULTS_MD, "\n".join(lines))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--bundles", type=int, default=int(os.environ.get("EDGE_REC_FUZZ_BUNDLES", "10000")))
    parser.add_argument("--http", type=int, default=int(os.environ.get("EDGE_REC_FUZZ_HTTP", "10000")))
    parser.add_argument("--raw", type=int, default=int(os.environ.get("EDGE_REC_FUZZ_RAW", "2000")),
                        help="raw requests (request line, headers, body) on new connections")
    parser.add_argument("--bundle", help="a good bundle directory to mutate (default: the tiny one)")
    parser.add_argument("--max-minutes", type=float, default=60.0)
    parser.add_argument("--seed", type=int, default=None)
    args = parser.parse_args()
    if not all(0 <= n <= 1_000_000 for n in (args.bundles, args.http, args.raw)):
        parser.error("--bundles, --http and --raw must be in 0..1000000")
    run_seed = args.seed if args.seed is not None else random.SystemRandom().randrange(2**32)
    print(f"fuzz seed {run_seed}", file=sys.stderr)
    bundle = resolve_bundle(args.bundle)
    start = time.monotonic()
    deadline = start + args.max_minutes * 60
    by_kind, bundle_bugs = fuzz_bundles(read_base(bundle), args.bundles, deadline, run_seed)
    server = RecommendationServer(Recommender.load(bundle), "127.0.0.1", 0, max_body_bytes=1 << 20)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05})
    thread.start()
    try:
        http_counts, http_bugs = fuzz_http(server, args.http, deadline, run_seed)
        raw_counts, raw_bugs = fuzz_raw(server, args.raw, deadline, run_seed)
    finally:
        server.shutdown()
        server.server_close()
        thread.join()
    bundle_cases = sum(sum(c.values()) for c in by_kind.values())
    result = {
        "seed": run_seed,
        "measured_at": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "seconds": round(time.monotonic() - start, 1),
        "python": platform.python_version(),
        "bundle": str(bundle),
        "bundles": {"requested": args.bundles, "cases": bundle_cases,
                    "bugs": sum(n for c in by_kind.values() for o, n in c.items() if is_failure(o)),
                    "by_kind": {kind: dict(c) for kind, c in by_kind.items()},
                    "bug_examples": bundle_bugs},
        "http": {"requested": args.http, "cases": sum(http_counts.values()),
                 "bugs": sum(n for o, n in http_counts.items() if is_failure(o)),
                 "outcomes": dict(http_counts), "bug_examples": http_bugs},
        "raw": {"requested": args.raw, "cases": sum(raw_counts.values()),
                "bugs": sum(n for o, n in raw_counts.items() if is_failure(o)),
                "outcomes": dict(raw_counts), "bug_examples": raw_bugs},
    }
    write_text_atomic(RESULTS_JSON, json.dumps(result, indent=2) + "\n")
    write_markdown(result)
    print(json.dumps({k: result[k] for k in ("seed", "seconds")} | {
        "bundle_cases": bundle_cases, "bundle_bugs": result["bundles"]["bugs"],
        "http_cases": result["http"]["cases"], "http_bugs": result["http"]["bugs"],
        "raw_cases": result["raw"]["cases"], "raw_bugs": result["raw"]["bugs"]}))
    return 1 if any(result[part]["bugs"] for part in ("bundles", "http", "raw")) else 0


if __name__ == "__main__":
    sys.exit(main())
