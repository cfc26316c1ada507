"""Release check: the bundle's top-10 on aarch64 (qemu user-mode) equals the top-10 on this x86-64,
before and after the same personalization feedback.

    make arm64-check BUNDLE=PATH        # default BUNDLE: runs/demo/bundle
    .venv/bin/python benchmarks/arm64_check.py --bundle PATH [--cpu cortex-a53] [--out FILE]

Builds, once, under ``benchmarks/work/arm64/``:

- an aarch64 sysroot with CPython 3.11 from Debian's arm64 packages (``apt-get download`` +
  ``dpkg -x``; needs ``dpkg --add-architecture arm64 && apt-get update``, run for you as root);
- the aarch64 wheels of the same ai-edge-litert and numpy versions as this interpreter's, from
  pip (``pip install --target --platform manylinux_2_X_aarch64 --only-binary=:all:``; pip matches
  the glibc tag exactly, so every tag from 2_17 to 2_36 is offered);

then runs ``device_runtime`` from this checkout on both machines for 20 fixed histories (drawn from
the bundle's own items, seeded) and compares ids and scores exactly. Prints
``arm64 top-10 identical: N/N`` on stdout (logs on stderr); exits 1 on any difference, 2 when the
check cannot run.

qemu pitfalls handled (qemu 7.2, Debian 12): qemu passes the host's x86 ``/proc/cpuinfo`` through
and LiteRT's CPU detection segfaults on it, so the sysroot gets an ARM ``proc/cpuinfo`` (qemu's
``-L`` prefix serves it); ``QEMU_CPU=max`` gives wrong results there (its SME emulation), so a
named core is used (``cortex-a53``, the class of CPU in TVs and speakers) and ``max`` is refused.
Not part of ``make test``: it downloads ~30 MB and runs for a minute or two.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import subprocess
import sys
from importlib.metadata import version
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
WORK = REPO / "benchmarks" / "work" / "arm64"
DEFAULT_BUNDLE = REPO / "runs" / "demo" / "bundle"
DEFAULT_CPU = "cortex-a53"
HISTORIES = 20
TOP = 10

# CPython 3.11 and the shared libraries its stdlib and the LiteRT wheel load (Debian 12, arm64)
DEBIAN_PACKAGES = (
    "python3.11-minimal", "libpython3.11-minimal", "libpython3.11-stdlib", "libc6", "libexpat1",
    "zlib1g", "libffi8", "libssl3", "libbz2-1.0", "liblzma5", "libncursesw6", "libtinfo6",
    "libreadline8", "libsqlite3-0", "libuuid1", "libcrypt1", "libstdc++6", "libgcc-s1", "libnsl2",
    "libtirpc3", "libdb5.3", "libgssapi-krb5-2", "libkrb5-3", "libk5crypto3", "libcom-err2",
    "libkrb5support0", "libkeyutils1",
)
GLIBC_MINORS = (17, 24, 26, 27, 28, 29, 31, 32, 33, 34, 35, 36)
ARM_PYTHON = "usr/bin/python3.11"

# What /proc/cpuinfo says on a Cortex-A53 (part 0xd03); LiteRT parses it to pick kernels.
CORTEX_A53_CPUINFO = "".join(
    f"processor\t: {cpu}\nBogoMIPS\t: 38.40\n"
    "Features\t: fp asimd evtstrm aes pmull sha1 sha2 crc32 cpuid\n"
    "CPU implementer\t: 0x41\nCPU architecture: 8\nCPU variant\t: 0x0\nCPU part\t: 0xd03\n"
    "CPU revision\t: 4\n\n"
    for cpu in range(4)
)

# Runs on both machines: top-10 (ids and scores) for each history read from stdin, then the same
# after one user's fixed feedback (plays of the first history, a dislike, a skip) through a
# personal head kept in a temporary state folder.
CHILD = r"""
import json, platform, sys, tempfile
from device_runtime.recommender import Recommender
histories = json.loads(sys.stdin.read())
with tempfile.TemporaryDirectory() as state:
    rec = Recommender.load(sys.argv[1], state_dir=state)
    k = int(sys.argv[2])
    top = [[[r.item_id, r.score] for r in rec.recommend(h, k=k)] for h in histories]
    events = [(i, "play") for i in histories[0]] + [(histories[1][0], "dislike"), (histories[2][0], "skip")]
    rec.feedback_batch("arm64-check", events)
    personal = [[[r.item_id, r.score] for r in rec.recommend(h, k=k, user="arm64-check")] for h in histories]
print(json.dumps({"machine": platform.machine(), "backend": rec.backend, "top": top, "personal": personal}))
"""


class CheckUnavailable(RuntimeError):
    """The check cannot run here (missing tool, no network, not root); the message says why."""


def log(message: str) -> None:
    print(f"arm64-check: {message}", file=sys.stderr, flush=True)


def run(args: list[str], **kwargs) -> subprocess.CompletedProcess:
    done = subprocess.run(args, capture_output=True, text=True, **kwargs)
    if done.returncode != 0:
        raise CheckUnavailable(f"{' '.join(args[:4])} ... failed ({done.returncode}): "
                               f"{(done.stderr or done.stdout).strip()[-800:]}")
    return done


def ensure_arm64_packages_visible() -> None:
    foreign = run(["dpkg", "--print-foreign-architectures"]).stdout.split()
    if "arm64" in foreign:
        return
    if os.geteuid() != 0:
        raise CheckUnavailable("apt does not know arm64 packages; run as root: "
                               "dpkg --add-architecture arm64 && apt-get update")
    log("adding the arm64 architecture to dpkg and updating apt")
    run(["dpkg", "--add-architecture", "arm64"])
    run(["apt-get", "update", "-qq"], timeout=600)


def build_sysroot(work: Path) -> Path:
    """Debian's arm64 CPython 3.11 unpacked into ``work/sysroot`` (cached), with an ARM cpuinfo."""
    sysroot = work / "sysroot"
    stamp = sysroot / ".edge-rec-packages"
    wanted = "\n".join(DEBIAN_PACKAGES)
    if not (stamp.exists() and stamp.read_text() == wanted):
        ensure_arm64_packages_visible()
        debs = work / "debs"
        shutil.rmtree(debs, ignore_errors=True)
        shutil.rmtree(sysroot, ignore_errors=True)
        debs.mkdir(parents=True)
        log(f"downloading {len(DEBIAN_PACKAGES)} Debian arm64 packages")
        run(["apt-get", "download", "-qq", *(f"{name}:arm64" for name in DEBIAN_PACKAGES)],
            cwd=debs, timeout=900)
        for deb in sorted(debs.glob("*.deb")):
            run(["dpkg", "-x", str(deb), str(sysroot)])
        stamp.write_text(wanted)
    cpuinfo = sysroot / "proc" / "cpuinfo"
    cpuinfo.parent.mkdir(parents=True, exist_ok=True)
    cpuinfo.write_text(CORTEX_A53_CPUINFO)  # qemu 7.2 would pass the host's x86 one through
    if not (sysroot / ARM_PYTHON).exists():
        raise CheckUnavailable(f"{sysroot / ARM_PYTHON} is missing after unpacking the packages")
    return sysroot


def install_wheels(work: Path, requirements: list[str]) -> Path:
    """The aarch64 wheels of ``requirements`` in ``work/site-packages`` (cached per requirement set)."""
    site = work / "site-packages"
    stamp = site / ".edge-rec-requirements"
    wanted = "\n".join(requirements)
    if stamp.exists() and stamp.read_text() == wanted:
        return site
    shutil.rmtree(site, ignore_errors=True)
    platforms = [f"--platform=manylinux_2_{minor}_aarch64" for minor in GLIBC_MINORS]
    log(f"installing aarch64 wheels: {', '.join(requirements)}")
    run([sys.executable, "-m", "pip", "install", "--quiet", "--target", str(site), *platforms,
         "--platform=manylinux2014_aarch64", "--python-version=3.11", "--implementation=cp",
         "--abi=cp311", "--only-binary=:all:", *requirements], timeout=900)
    stamp.write_text(wanted)
    return site


def qemu_binary() -> str:
    for name in ("qemu-aarch64", "qemu-aarch64-static"):
        found = shutil.which(name)
        if found:
            return found
    raise CheckUnavailable("qemu user-mode emulation is not installed: apt-get install qemu-user")


def fixed_histories(bundle: Path, count: int = HISTORIES, seed: int = 0) -> list[list[str]]:
    """``count`` seeded histories (1..2L items) drawn from the bundle's own catalog."""
    sys.path.insert(0, str(REPO))
    from device_runtime.bundle import FIRST_ITEM_INDEX, verify_bundle

    verified = verify_bundle(bundle)
    items = list(verified.item_ids[FIRST_ITEM_INDEX:])
    length = verified.manifest.history_length
    rng = random.Random(seed)
    return [[rng.choice(items) for _ in range(rng.randint(1, 2 * length))] for _ in range(count)]


def run_child(command: list[str], env: dict[str, str], bundle: Path, histories, timeout: float) -> dict:
    done = subprocess.run([*command, "-c", CHILD, str(bundle), str(TOP)], input=json.dumps(histories),
                          capture_output=True, text=True, env=env, timeout=timeout)
    if done.returncode != 0:
        raise CheckUnavailable(f"{command[0]} exited with {done.returncode}: {done.stderr.strip()[-1500:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def compare(x86: list, arm: list, histories) -> list[dict]:
    """The histories whose top-10 differ (ids or scores, exactly)."""
    return [{"history": i, "length": len(histories[i]), "x86_64": a, "aarch64": b}
            for i, (a, b) in enumerate(zip(x86, arm, strict=True)) if a != b]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--bundle", type=Path, default=DEFAULT_BUNDLE)
    parser.add_argument("--cpu", default=DEFAULT_CPU,
                        help="qemu CPU model (a named core, e.g. cortex-a53, cortex-a55, cortex-a72)")
    parser.add_argument("--work", type=Path, default=WORK)
    parser.add_argument("--out", type=Path, help="also write the result as JSON here")
    args = parser.parse_args()
    if args.cpu == "max":
        print("arm64-check: QEMU_CPU=max gives wrong results on qemu 7.x (SME emulation); name a core "
              "such as cortex-a53", file=sys.stderr)
        return 2
    if not (args.bundle / "manifest.json").exists() and not str(args.bundle).endswith(".tar.gz"):
        print(f"arm64-check: no bundle at {args.bundle} (run `make demo` or pass BUNDLE=PATH)",
              file=sys.stderr)
        return 2
    requirements = [f"ai-edge-litert=={version('ai-edge-litert')}", f"numpy=={version('numpy')}"]
    try:
        qemu = qemu_binary()
        args.work.mkdir(parents=True, exist_ok=True)
        sysroot = build_sysroot(args.work)
        site = install_wheels(args.work, requirements)
        histories = fixed_histories(args.bundle)
        base_env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": os.environ.get("HOME", "/"),
                    "PYTHONNOUSERSITE": "1"}
        log(f"x86-64: {len(histories)} histories")
        x86 = run_child([sys.executable], dict(base_env, PYTHONPATH=str(REPO)), args.bundle, histories, 300)
        log(f"aarch64 under {Path(qemu).name} -cpu {args.cpu}: {len(histories)} histories")
        arm_env = dict(base_env, QEMU_CPU=args.cpu, PYTHONPATH=f"{site}{os.pathsep}{REPO}")
        arm = run_child([qemu, "-L", str(sysroot), str(sysroot / ARM_PYTHON)], arm_env, args.bundle,
                        histories, 1800)
    except (CheckUnavailable, subprocess.TimeoutExpired, OSError) as exc:
        print(f"arm64-check: cannot run: {exc}", file=sys.stderr)
        return 2
    if arm["machine"] != "aarch64":
        print(f"arm64-check: the emulated child reports machine {arm['machine']!r}", file=sys.stderr)
        return 2
    differences = compare(x86["top"], arm["top"], histories)
    personal_differences = compare(x86["personal"], arm["personal"], histories)
    same = len(histories) - len(differences)
    personal_same = len(histories) - len(personal_differences)
    for diff in differences:
        log(f"history {diff['history']} ({diff['length']} items) differs:\n  x86_64  {diff['x86_64']}\n"
            f"  aarch64 {diff['aarch64']}")
    if args.out:
        args.out.write_text(json.dumps({
            "bundle": str(args.bundle), "qemu_cpu": args.cpu, "requirements": requirements,
            "histories": len(histories), "identical": same, "differences": differences,
            "personalized_identical": personal_same, "personalized_differences": personal_differences,
            "backends": {"x86_64": x86["backend"], "aarch64": arm["backend"]},
        }, indent=2) + "\n")
    print(f"arm64 top-10 identical: {same}/{len(histories)}; after the same feedback, personalized "
          f"top-10 identical: {personal_same}/{len(histories)}")
    return 0 if not differences and not personal_differences else 1


if __name__ == "__main__":
    sys.exit(main())
