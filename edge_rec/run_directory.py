"""A build's run directory: what every stage produced, plus the config, versions, seed and timings.

Layout::

    RUN_DIR/config.json            the resolved configuration
    RUN_DIR/item_features.json     with item features: how they become tokens (FeatureSpec)
    RUN_DIR/run.json               versions, seed, command, per-stage seconds, status
    RUN_DIR/models/<stage>/        saved Keras models (teacher, student_baseline, student, ...);
                                   a student trained with item features adds item_encoder.npz
    RUN_DIR/tflite/<name>.tflite   every TFLite conversion (int8.tflite, float32.tflite,
                                   teacher_float32.tflite, ...)
    RUN_DIR/bundle/                the verified device bundle
    RUN_DIR/report.json, report.md, chart.png
"""

from __future__ import annotations

import json
import platform
import signal
import sys
import threading
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from importlib import metadata
from pathlib import Path
from typing import Any

from device_runtime.atomic_file import write_bytes_atomic, write_text_atomic

STATUS_INTERRUPTED = "interrupted"


class BuildInterrupted(KeyboardInterrupt):
    """The build process received SIGTERM (see :func:`terminate_as_interrupt`)."""


@contextmanager
def terminate_as_interrupt() -> Iterator[None]:
    """Within the block, SIGTERM raises :class:`BuildInterrupted` (a ``KeyboardInterrupt``) in
    the main thread, so that ``finally``/``except`` blocks run and the run directory records the
    build as interrupted instead of the process vanishing. The previous handler is restored on
    exit; outside the main thread this does nothing."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def interrupt(signum: int, _frame: Any) -> None:
        raise BuildInterrupted(f"received {signal.Signals(signum).name}")

    previous = signal.signal(signal.SIGTERM, interrupt)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


_PACKAGES = ("edge-rec", "numpy", "tensorflow", "tf-keras", "tensorflow-model-optimization", "ai-edge-litert")


def package_versions() -> dict[str, str | None]:
    """Installed versions of the packages a build depends on (None when absent)."""
    versions: dict[str, str | None] = {"python": platform.python_version()}
    for name in _PACKAGES:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = None
    return versions


class RunDirectory:
    """Records a pipeline run on disk; every file is written atomically."""

    def __init__(self, path: str | Path, *, seed: int, config: Mapping[str, Any]) -> None:
        self.path = Path(path)
        self.path.mkdir(parents=True, exist_ok=True)
        self.timings: dict[str, float] = {}
        self._run: dict[str, Any] = {
            "command": sys.argv,
            "seed": seed,
            "versions": package_versions(),
            "started_at": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
            "status": "running",
            "timings_s": self.timings,
        }
        self.record_config(config)
        self._flush()

    def record_config(self, config: Mapping[str, Any]) -> None:
        """Replace ``config.json`` with the configuration the build really used (after sizing)."""
        write_text_atomic(self.path / "config.json", json.dumps(config, indent=2) + "\n")

    def model_dir(self, stage: str) -> Path:
        """Directory where the Keras model of ``stage`` is saved."""
        path = self.path / "models" / stage
        path.mkdir(parents=True, exist_ok=True)
        return path

    def write_tflite(self, name: str, data: bytes) -> Path:
        """Store a TFLite flatbuffer as ``tflite/<name>.tflite``."""
        return write_bytes_atomic(self.path / "tflite" / f"{name}.tflite", data)

    @contextmanager
    def stage(self, name: str) -> Iterator[None]:
        """Time a stage and record its wall-clock seconds in run.json."""
        start = time.perf_counter()
        try:
            yield
        finally:
            self.timings[name] = round(time.perf_counter() - start, 2)
            self._flush()

    def finish(self, status: str, **fields: Any) -> None:
        """Mark the run finished (``ok``, ``gate-failed``, ``failed`` or ``interrupted``) with
        extra fields.

        ``failed`` is recorded as ``interrupted`` when called while a ``KeyboardInterrupt`` is
        being handled (Ctrl-C, or SIGTERM inside :func:`terminate_as_interrupt`): a killed build
        is not a broken one.
        """
        if status == "failed" and isinstance(sys.exc_info()[1], KeyboardInterrupt):
            status = STATUS_INTERRUPTED
        self._run.update(fields)
        self._run["status"] = status
        self._run["finished_at"] = time.strftime("%Y-%m-%dT%H:%M:%S%z")
        self._flush()

    def _flush(self) -> None:
        write_text_atomic(self.path / "run.json", json.dumps(self._run, indent=2, default=str) + "\n")


def run_dir_stages(run_dir: Path) -> tuple[str, ...]:
    """The saved models of a build's run directory that ``convert`` and ``catalog patch`` try, in
    order: the model the bundle's int8 file came from first (QAT, or the pruned student when the
    bundle pass fell back to quantizing it after training: ``report.json``'s ``int8_fallback``),
    then pruned, then the student the build shipped (``shipped_student``: the distilled student or
    the one trained alone), then the other student."""
    from edge_rec.config import ConfigError
    from edge_rec.passes import PRUNED, QAT, STUDENT, STUDENT_BASELINE

    report_file = run_dir / "report.json"
    report: dict = {}
    if report_file.is_file():
        try:
            report = json.loads(report_file.read_text(encoding="utf-8"))
            shipped = report.get("shipped_student", {}).get("stage", STUDENT)
        except (json.JSONDecodeError, AttributeError):
            raise ConfigError(f"{report_file}: not a build report (expected JSON with a shipped_student section)"
                              ) from None
    else:
        shipped = STUDENT
    other = STUDENT_BASELINE if shipped == STUDENT else STUDENT
    first = (report.get("int8_fallback") or {}).get("from", QAT)
    return tuple(dict.fromkeys((first, QAT, PRUNED, shipped, other)))
