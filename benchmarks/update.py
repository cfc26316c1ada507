"""Signed updates on the device: what the update extra adds to the install, how long an update
check takes on loopback (nothing new, and a new bundle), and the attack suite's counts.

Writes ``benchmarks/results/update.{json,md}``. Each timing runs in a child process of the
interpreter it names: the Python 3.9 device venv (``.venv-device``: python-tuf 5, Ed25519 checked
in pure Python), and this venv's Python with python-tuf 7, with and without ``cryptography``.

    python benchmarks/update.py [--bundle runs/demo/bundle] [--runs 50]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import textwrap
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "tests"))
sys.path.insert(0, str(REPO))

from benchmarks.stamp import RESULTS, stamp_result  # noqa: E402

DEVICE_VENV_PYTHON = REPO / ".venv-device" / "bin" / "python"

CHILD = textwrap.dedent("""
    import json, sys, time
    if sys.argv[5] == "no-cryptography":
        sys.modules["cryptography"] = None  # securesystemslib falls back to pure-Python Ed25519
    from device_runtime.updates import UpdateClient
    url, root, dest, runs = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
    UpdateClient(url, root, dest).update()  # the first install; then checks with nothing new
    times = []
    for _ in range(runs):
        started = time.perf_counter()
        result = UpdateClient(url, root, dest).update()
        times.append(time.perf_counter() - started)
        assert result.status == "current", result
    import tuf
    try:
        import cryptography
        crypto = cryptography.__version__
    except ImportError:
        crypto = None
    print(json.dumps({"python": sys.version.split()[0], "tuf": tuf.__version__,
                      "cryptography": crypto, "times_s": times}))
""")


def _percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def nothing_new(url: str, trust_root: Path, work: Path, python: Path, crypto: str, runs: int) -> dict:
    """p50/p99 of an update check that finds nothing new, in a child of ``python``."""
    dest = work / f"device-{python.parent.parent.name}-{crypto}"
    env = dict(os.environ, PYTHONPATH=str(REPO))
    done = subprocess.run([str(python), "-c", CHILD, url, str(trust_root), str(dest), str(runs), crypto],
                          capture_output=True, text=True, env=env, timeout=600)
    if done.returncode != 0:
        raise RuntimeError(f"{python}: the update child failed:\n{done.stderr[-3000:]}")
    data = json.loads(done.stdout.strip().splitlines()[-1])
    times = data.pop("times_s")
    return {**data, "runs": runs, "p50_ms": round(1000 * _percentile(times, 0.5), 2),
            "p99_ms": round(1000 * _percentile(times, 0.99), 2)}


def new_bundle(repo, url: str, bundle: Path, work: Path, runs: int) -> dict:
    """Seconds of an update that downloads, verifies, installs and self-checks a new release
    (this process: python-tuf 7 with cryptography)."""
    import time

    from device_runtime.updates import UpdateClient

    dest = work / "device-new"
    UpdateClient(url, repo.trust_root, dest).update()
    times = []
    for _ in range(runs):
        repo.publish(bundle)
        started = time.perf_counter()
        result = UpdateClient(url, repo.trust_root, dest).update()
        times.append(time.perf_counter() - started)
        assert result.status == "updated"
    return {"runs": runs, "bundle_bytes": sum(p.stat().st_size for p in bundle.iterdir()),
            "p50_ms": round(1000 * _percentile(times, 0.5), 1),
            "max_ms": round(1000 * max(times), 1)}


def site_packages_mb(python: str, extras: str, work: Path, extra_packages: tuple[str, ...] = ()) -> dict:
    """Size of a fresh venv's site-packages after ``pip install .[extras]`` (+ packages)."""
    venv = work / f"venv-{Path(python).name}-{extras.replace(',', '-')}-{len(extra_packages)}"
    subprocess.run([python, "-m", "venv", str(venv)], check=True)
    pip = [str(venv / "bin" / "python"), "-m", "pip", "install", "--quiet", "--disable-pip-version-check"]
    subprocess.run([*pip, f"{REPO}[{extras}]", *extra_packages], check=True, capture_output=True)
    site = next((venv / "lib").glob("python3.*/site-packages"))
    total = sum(f.stat().st_size for f in site.rglob("*") if f.is_file() and not f.is_symlink())
    listed = subprocess.run([str(venv / "bin" / "python"), "-m", "pip", "list", "--format", "json"],
                            capture_output=True, text=True, check=True).stdout
    packages = {row["name"].lower(): row["version"] for row in json.loads(listed)}
    shutil.rmtree(venv)
    return {"mb": round(total / 1e6, 1), "packages": packages}


def install_growth(work: Path) -> list[dict]:
    """MB that the update extra adds to each device install (pip + setuptools counted in both)."""
    rows = []
    candidates = [*sorted(Path.home().glob(".pyenv/versions/3.9*/bin/python3.9")), shutil.which("python3.9")]
    py39 = next((str(c) for c in candidates if c and subprocess.run(
        [str(c), "-c", "import sys; assert sys.version_info[:2] == (3, 9)"], capture_output=True).returncode == 0), None)
    setups = [(sys.executable, "device", ()), (sys.executable, "device", ("cryptography",))]
    if py39:
        setups.insert(0, (str(py39), "device-lean", ()))
    for python, base, extra in setups:
        before = site_packages_mb(python, base, work)
        after = site_packages_mb(python, f"{base},update", work, extra)
        added = {name: version for name, version in after["packages"].items()
                 if before["packages"].get(name) != version}
        rows.append({"python": subprocess.run([python, "-V"], capture_output=True, text=True).stdout.split()[1],
                     "install": f"edge-rec[{base}]" + (" + " + " ".join(extra) if extra else ""),
                     "base_mb": before["mb"], "with_update_mb": after["mb"],
                     "added_mb": round(after["mb"] - before["mb"], 1), "added_packages": added})
    return rows


def attack_counts(work: Path) -> dict:
    """The attack suite of tests/update_attacks.py on two tiny real bundles, under load."""
    from tiny_bundle import TINY_ITEM_IDS, build_tiny_bundle
    from update_attacks import run_attack_suite

    first = build_tiny_bundle(work / "a" / "bundle", seed=0)
    other = build_tiny_bundle(work / "b" / "bundle", seed=1)
    result = run_attack_suite(work / "suite", first, other, history=TINY_ITEM_IDS[2:6])
    result["outcomes"] = [{"attack": o.name, "refused_with": o.error, "refused": o.refused,
                           "state_kept": o.state_kept} for o in result["outcomes"]]
    return result


def markdown(results: dict) -> str:
    lines = ["# Signed updates (python-tuf) on the device", "",
             f"Machine: {results['machine']}. Loopback HTTP (a static file server in-process).", "",
             "## Update check, nothing new (goal: <= 50 ms)", "",
             "| python | python-tuf | cryptography | runs | p50 | p99 |", "|---|---|---|---:|---:|---:|"]
    for row in results["nothing_new"]:
        lines.append(f"| {row['python']} | {row['tuf']} | {row['cryptography'] or 'none (pure-Python Ed25519)'} "
                     f"| {row['runs']} | {row['p50_ms']} ms | {row['p99_ms']} ms |")
    new = results["new_bundle"]
    lines += ["", "## Update with a new bundle", "",
              f"Download, verify (TUF hashes + bundle digests), install beside the current one, "
              f"self-check, switch `current`: {new['runs']} releases of a {new['bundle_bytes']:,}-byte "
              f"bundle, p50 {new['p50_ms']} ms, max {new['max_ms']} ms (Python "
              f"{platform.python_version()}, python-tuf 7, cryptography).", "",
              "## What the update extra adds to a device install (goal: <= 15 MB)", "",
              "| python | install | before | with `[update]` | added | packages added |",
              "|---|---|---:|---:|---:|---|"]
    for row in results["install_growth"]:
        added = ", ".join(f"{k} {v}" for k, v in sorted(row["added_packages"].items()))
        lines.append(f"| {row['python']} | {row['install']} | {row['base_mb']} MB | {row['with_update_mb']} MB "
                     f"| {row['added_mb']} MB | {added} |")
    attacks = results["attacks"]
    lines += ["", "## Attacks (tests/update_attacks.py, the suite `make test` asserts)", "",
              f"Tried {attacks['attacks_tried']}, refused {attacks['attacks_refused']} (typed error, "
              f"bundle and files unchanged); {attacks['requests_served']:,} recommend calls served "
              f"during them, {attacks['request_failures']} failed.", "",
              "| attack | refused with | device state kept |", "|---|---|---|"]
    for row in attacks["outcomes"]:
        lines.append(f"| {row['attack']} | {row['refused_with']} | {'yes' if row['state_kept'] else 'NO'} |")
    lines += ["", "## Platforms", "", results["platforms"], ""]
    return "\n".join(lines)


PLATFORMS = (
    "python-tuf, securesystemslib, urllib3 (tuf 6+) or requests (tuf 5) are pure Python: they install "
    "on any CPU. `cryptography` has wheels for x86-64 and aarch64 (manylinux 2014 and 2.28, checked "
    "with `pip download --platform`), none on PyPI for armv7 (`linux_armv7l`, `manylinux2014_armv7l`, "
    "`musllinux_1_2_armv7l`: no matching distribution). An armv7 device therefore installs the "
    "update extra without it: securesystemslib then checks Ed25519 signatures with its vendored "
    "pure-Python implementation (the 'none' rows above), or builds `cryptography` from source "
    "(Rust and OpenSSL headers), or takes piwheels' build on Raspberry Pi OS.")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--bundle", type=Path, default=REPO / "runs" / "demo" / "bundle")
    parser.add_argument("--runs", type=int, default=50)
    parser.add_argument("--skip-install", action="store_true", help="skip the install-size venvs")
    args = parser.parse_args()
    from update_attacks import RepoServer, SignedRepo

    if not args.bundle.is_dir():
        parser.error(f"{args.bundle}: no bundle there; run `make demo` first or pass --bundle")
    work = Path(tempfile.mkdtemp(prefix="edge-rec-update-bench-"))
    try:
        repo = SignedRepo(work / "publisher")
        repo.publish(args.bundle)
        results: dict = {"benchmark": "update", "machine": f"{platform.machine()}, {os.cpu_count()} cores"}
        with RepoServer(repo.served) as server:
            interpreters = [(DEVICE_VENV_PYTHON, "cryptography-if-installed")] if DEVICE_VENV_PYTHON.exists() else []
            interpreters += [(Path(sys.executable), "cryptography-if-installed"), (Path(sys.executable), "no-cryptography")]
            results["nothing_new"] = [nothing_new(server.url, repo.trust_root, work, python, crypto, args.runs)
                                      for python, crypto in interpreters]
            results["new_bundle"] = new_bundle(repo, server.url, args.bundle, work, max(5, args.runs // 5))
        results["install_growth"] = [] if args.skip_install else install_growth(work)
        results["attacks"] = attack_counts(work)
        results["platforms"] = PLATFORMS
        RESULTS.mkdir(parents=True, exist_ok=True)
        (RESULTS / "update.json").write_text(json.dumps(results, indent=2) + "\n")
        (RESULTS / "update.md").write_text(markdown(results))
        stamp_result("update")
        print(RESULTS / "update.md")
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
