"""Benchmark one target in a fresh process: both sides of the parent/child protocol.

Parent: :func:`run_in_fresh_process` writes a JSON spec file ``{"target", "settings",
"eval_file", "progress"}`` and runs ``python -m device_runtime.benchmarking.child SPEC``. Child:
:func:`main` records the wall-clock time it was entered, times the import of the runtime and the
interpreter backend, runs :func:`device_runtime.benchmarking.engine.measure_target` and prints exactly one
JSON object on stdout — the measurement, or ``{"error": message}`` with exit status 1. Native
code writing to stdout during the measurement is redirected to stderr so it cannot corrupt it.
The evaluation file (``EvalExamples`` as JSON) is read only after serving memory was recorded.
Progress goes to stderr.

The parent adds ``startup_ms`` (spawn to child entry: the Python interpreter starting) and
``cold_start_ms`` (spawn to the first inference's answer: interpreter + imports + load + first
inference), both from wall clocks on the same machine.
"""

from __future__ import annotations

import time

_ENTERED_WALL = time.time()  # before any other import: the child's entry point for cold start

import json  # noqa: E402
import os  # noqa: E402
import subprocess  # noqa: E402
import sys  # noqa: E402
import tempfile  # noqa: E402
from pathlib import Path  # noqa: E402
from typing import Any  # noqa: E402

CHILD_MODULE = "device_runtime.benchmarking.child"


class ChildProcessError(RuntimeError):
    """The benchmark child failed or printed no result; the message names the target and why."""


def run_in_fresh_process(target: str | Path, settings: dict[str, Any], *,
                         eval_file: str | Path | None = None, progress: bool = True,
                         timeout: float | None = None) -> dict[str, Any]:
    """Measure ``target`` in a new Python process and return its measurement dict.

    ``settings`` is :meth:`BenchmarkSettings.to_dict`; ``eval_file`` a JSON file of
    :class:`EvalExamples`. With ``progress`` the child's stderr (progress bar, backend messages)
    is shown live; otherwise it is captured and only quoted in errors. Raises
    :class:`ChildProcessError` naming the target when the child fails.
    """
    package_root = str(Path(__file__).resolve().parent.parent)
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (env.get("PYTHONPATH", ""), package_root) if p)
    env.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    spec = {"target": str(target), "settings": settings,
            "eval_file": str(eval_file) if eval_file else None, "progress": progress}
    with tempfile.TemporaryDirectory(prefix="edge-rec-bench-") as tmp:
        spec_path = Path(tmp) / "spec.json"
        spec_path.write_text(json.dumps(spec), encoding="utf-8")
        spawn_wall = time.time()
        try:
            proc = subprocess.run(
                [sys.executable, "-m", CHILD_MODULE, str(spec_path)],
                stdout=subprocess.PIPE, stderr=None if progress else subprocess.PIPE,
                text=True, env=env, timeout=timeout, check=False,
            )
        except subprocess.TimeoutExpired as exc:
            raise ChildProcessError(f"{target}: the benchmark did not finish within {timeout} s") from exc
    lines = [line for line in proc.stdout.splitlines() if line.strip()]
    try:
        result = json.loads(lines[-1]) if lines else None
    except ValueError:
        result = None
    if not isinstance(result, dict):
        detail = (proc.stderr or "").strip()[-2000:] if not progress else "see the messages above"
        raise ChildProcessError(f"{target}: the benchmark process exited with status "
                                f"{proc.returncode} without a result ({detail})")
    if "error" in result or proc.returncode != 0:
        raise ChildProcessError(f"{target}: {result.get('error', f'exit status {proc.returncode}')}")
    result["startup_ms"] = (result.pop("entered_wall") - spawn_wall) * 1e3
    result["cold_start_ms"] = (result.pop("first_inference_wall") - spawn_wall) * 1e3
    return result


def _measure(spec: dict[str, Any]) -> dict[str, Any]:
    target = Path(spec["target"])
    start = time.perf_counter()
    # What a device app imports before it can serve: the runtime and the interpreter backend.
    from device_runtime.interpreter import resolve_backend

    if not target.suffix == ".tflite":
        import device_runtime.recommender  # noqa: F401
    resolve_backend(spec["settings"].get("backend", "auto"))
    import_ms = (time.perf_counter() - start) * 1e3

    from device_runtime.benchmarking.engine import BenchmarkSettings, EvalExamples, measure_target
    from device_runtime.benchmarking.progress_line import ProgressLine

    settings = BenchmarkSettings.from_dict(spec["settings"])
    eval_file = spec.get("eval_file")

    def load_eval() -> EvalExamples | None:
        if not eval_file:
            return None
        return EvalExamples.from_dict(json.loads(Path(eval_file).read_text(encoding="utf-8")))

    progress = ProgressLine(target.name, enabled=bool(spec.get("progress")))
    try:
        result = measure_target(target, settings, progress=progress, load_eval=load_eval)
    finally:
        progress.close()
    result.update({"target": str(target), "import_ms": import_ms, "entered_wall": _ENTERED_WALL,
                   "settings": settings.to_dict()})
    return result


def main(argv: list[str] | None = None) -> int:
    """Child entry point: ``python -m device_runtime.benchmarking.child SPEC.json``; prints one JSON
    object on stdout and returns 0, or prints ``{"error": ...}`` and returns 1."""
    args = sys.argv[1:] if argv is None else argv
    stdout_fd = os.dup(1)
    os.dup2(2, 1)  # anything native code prints goes to stderr while we measure
    try:
        if len(args) != 1:
            raise ValueError("usage: python -m device_runtime.benchmarking.child SPEC.json")
        spec = json.loads(Path(args[0]).read_text(encoding="utf-8"))
        text, status = json.dumps(_measure(spec), allow_nan=False), 0
    except Exception as exc:  # noqa: BLE001 - every failure becomes a JSON error for the parent
        text, status = json.dumps({"error": f"{type(exc).__name__}: {exc}"}), 1
    sys.stdout.flush()
    os.dup2(stdout_fd, 1)
    os.close(stdout_fd)
    sys.stdout.write(text + "\n")
    sys.stdout.flush()
    return status


if __name__ == "__main__":
    sys.exit(main())
