"""Training on several machines: ``TF_CONFIG`` -> a ``tf.distribute`` strategy (one concept).

Every process of a cluster runs the same ``edge-rec train-teacher`` / ``distill`` / ``build``
command with its own ``TF_CONFIG`` (the standard TensorFlow way)::

    {"cluster": {"worker": ["host0:12345", "host1:12345"]}, "task": {"type": "worker", "index": 0}}

- :func:`read_cluster` parses and validates ``TF_CONFIG`` before TensorFlow starts anything; a bad
  value raises :class:`TFConfigError` naming ``TF_CONFIG`` and the field.
- :func:`strategy` is ``tf.distribute.MultiWorkerMirroredStrategy`` when ``TF_CONFIG`` names more
  than one worker, else the default strategy. A worker whose peers do not all join within
  ``EDGE_REC_PEER_TIMEOUT`` seconds (default 300) exits with status 1 and a message naming the
  address it waited for. A peer lost during training is found by the strategy's health check
  (collectives get no timeout: see :func:`strategy`).
- :func:`training_scope` is where models and optimizers are created and fitted.
- :func:`peer_failures` turns a peer lost during training into :class:`PeerLostError` naming it.
- :func:`output_dir` is the chief's real output directory, a temporary one on other workers.
- :func:`backups_in` / :func:`backup_callbacks`: with ``TF_CONFIG`` set, each training stage
  backs up every epoch (``tf.keras.callbacks.BackupAndRestore``) under ``OUT/backup/<stage>``,
  so a cluster restarted after a worker was killed resumes from the last finished epoch.
"""

from __future__ import annotations

import contextlib
import faulthandler
import json
import os
import re
import select
import shutil
import socket
import subprocess
import sys
import tempfile
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

#: The environment variable TensorFlow reads the cluster from.
ENV = "TF_CONFIG"
#: Seconds a worker waits for its peers (cluster start-up and each collective) before failing.
PEER_TIMEOUT_ENV = "EDGE_REC_PEER_TIMEOUT"
DEFAULT_PEER_TIMEOUT = 300.0
#: Jobs a MultiWorkerMirroredStrategy cluster may hold (no parameter servers, no evaluator).
JOBS = ("chief", "worker")
#: Sub-directory of an output directory that holds the per-stage training backups.
BACKUP_DIR = "backup"


class TFConfigError(ValueError):
    """``TF_CONFIG`` (or ``EDGE_REC_PEER_TIMEOUT``) is malformed; the message names the field."""


@dataclass(frozen=True)
class Cluster:
    """This process's place in the cluster ``TF_CONFIG`` describes.

    ``tasks`` lists every training task in TensorFlow's order (the chief first when there is a
    ``chief`` job, then the workers) as ``(job, index, "host:port")``.
    """

    tasks: tuple[tuple[str, int, str], ...]
    task_type: str
    task_index: int

    @property
    def num_workers(self) -> int:
        """Training processes in the cluster (chief included)."""
        return len(self.tasks)

    @property
    def is_chief(self) -> bool:
        """The chief writes the model and metrics: ``chief:0``, else ``worker:0``."""
        first_job, first_index, _ = self.tasks[0]
        return (self.task_type, self.task_index) == (first_job, first_index)

    @property
    def address(self) -> str:
        """This task's ``host:port``."""
        return next(a for job, i, a in self.tasks if (job, i) == (self.task_type, self.task_index))

    def peers(self) -> list[tuple[str, int, str]]:
        """Every other task as ``(job, index, address)``."""
        return [t for t in self.tasks if (t[0], t[1]) != (self.task_type, self.task_index)]


def _check_address(value: Any, field: str) -> str:
    expected = 'expected "host:port" with a port in 1..65535'
    if not isinstance(value, str) or ":" not in value:
        raise TFConfigError(f"{ENV}: {field} is {value!r}; {expected}")
    host, _, port = value.rpartition(":")
    host = host.strip("[]")
    if not host or not port.isdigit() or not 1 <= int(port) <= 65535:
        raise TFConfigError(f"{ENV}: {field} is {value!r}; {expected}")
    return value


def read_cluster(environ: Mapping[str, str] | None = None) -> Cluster | None:
    """The cluster of ``environ["TF_CONFIG"]`` (default: ``os.environ``), or None when it is unset
    or empty. Raises :class:`TFConfigError` naming ``TF_CONFIG`` and the field when the value is
    not a JSON object, has no ``cluster`` or ``task``, names a job other than chief/worker, has a
    malformed address, or a task type/index that is not in the cluster."""
    raw = (os.environ if environ is None else environ).get(ENV, "")
    if not raw.strip():
        return None
    try:
        config = json.loads(raw)
    except json.JSONDecodeError as exc:
        raise TFConfigError(f"{ENV} is not valid JSON ({exc.msg} at character {exc.pos})") from None
    if not isinstance(config, dict):
        raise TFConfigError(f"{ENV}: expected a JSON object with \"cluster\" and \"task\", got {type(config).__name__}")
    cluster, task = config.get("cluster"), config.get("task")
    if not isinstance(cluster, dict) or not cluster:
        raise TFConfigError(f'{ENV}: missing "cluster"; expected {{"worker": ["host:port", ...]}}')
    if not isinstance(task, dict):
        raise TFConfigError(f'{ENV}: missing "task"; expected {{"type": "worker", "index": N}}')
    unknown = sorted(set(cluster) - set(JOBS))
    if unknown:
        raise TFConfigError(
            f"{ENV}: cluster.{unknown[0]} is not supported; MultiWorkerMirroredStrategy uses the jobs "
            f"{' and '.join(JOBS)} only"
        )
    if "worker" not in cluster and "chief" not in cluster:
        raise TFConfigError(f'{ENV}: cluster has no "worker" list')
    tasks: list[tuple[str, int, str]] = []
    for job in JOBS:
        if job not in cluster:
            continue
        addresses = cluster[job]
        if not isinstance(addresses, list) or not addresses:
            raise TFConfigError(f'{ENV}: cluster.{job} is {addresses!r}; expected a non-empty list of "host:port"')
        if job == "chief" and len(addresses) != 1:
            raise TFConfigError(f"{ENV}: cluster.chief lists {len(addresses)} addresses; expected exactly 1")
        tasks += [(job, i, _check_address(a, f"cluster.{job}[{i}]")) for i, a in enumerate(addresses)]
    seen = [a for _, _, a in tasks]
    duplicate = next((a for a in seen if seen.count(a) > 1), None)
    if duplicate:
        raise TFConfigError(f"{ENV}: address {duplicate} is listed twice in cluster")
    task_type, index = task.get("type"), task.get("index")
    if task_type not in cluster:
        raise TFConfigError(f"{ENV}: task.type is {task_type!r}; expected one of {', '.join(sorted(cluster))}")
    if isinstance(index, bool) or not isinstance(index, int):
        raise TFConfigError(f"{ENV}: task.index is {index!r}; expected an integer")
    count = len(cluster[task_type])
    if not 0 <= index < count:
        raise TFConfigError(
            f"{ENV}: task.index {index} is out of range; cluster.{task_type} has {count} "
            f"address{'es' if count != 1 else ''} (index 0..{count - 1})"
        )
    return Cluster(tasks=tuple(tasks), task_type=task_type, task_index=index)


def peer_timeout(environ: Mapping[str, str] | None = None) -> float:
    """Seconds to wait for peers: ``EDGE_REC_PEER_TIMEOUT`` (a number > 0), else 300."""
    raw = (os.environ if environ is None else environ).get(PEER_TIMEOUT_ENV, "").strip()
    if not raw:
        return DEFAULT_PEER_TIMEOUT
    try:
        value = float(raw)
    except ValueError:
        value = -1.0
    if not value > 0:
        raise TFConfigError(f"{PEER_TIMEOUT_ENV} is {raw!r}; expected a number of seconds > 0")
    return value


def check_environment() -> Cluster | None:
    """Validate ``TF_CONFIG`` and ``EDGE_REC_PEER_TIMEOUT`` (commands call this first, before
    TensorFlow is imported); the cluster, or None without ``TF_CONFIG``."""
    cluster = read_cluster()
    if cluster is not None:
        peer_timeout()
    return cluster


def _reachable(address: str, timeout: float = 1.0) -> str | None:
    """None when ``address`` accepts a TCP connection, else the reason it did not."""
    host, _, port = address.rpartition(":")
    try:
        with socket.create_connection((host.strip("[]"), int(port)), timeout=timeout):
            return None
    except OSError as exc:
        return exc.strerror or type(exc).__name__


def _peer_failure(cluster: Cluster, waited: float) -> str:
    """The message of a worker whose peers did not all join: which addresses, and why."""
    lines = []
    for job, index, address in cluster.peers():
        reason = _reachable(address)
        state = f"not reachable ({reason})" if reason else "reachable but did not join"
        lines.append(f"{job} {index} at {address}: {state}")
    return (
        f"Error: {ENV}: {cluster.task_type} {cluster.task_index} ({cluster.address}) waited {waited:g} s "
        f"for its peers and gave up: {'; '.join(lines)}. Start every task listed in {ENV} cluster "
        f"(each with its own task.index), or raise {PEER_TIMEOUT_ENV}."
    )


def watch_peers() -> None:
    """Entry point of the watchdog child (see :func:`strategy`): wait ``EDGE_REC_PEER_TIMEOUT``
    seconds for a byte (or end of file) on stdin; if none comes, print which peers could not be
    reached. The parent exits by itself shortly after."""
    cluster = read_cluster()
    timeout = peer_timeout()
    ready, _, _ = select.select([sys.stdin], [], [], timeout)
    if not ready and cluster is not None:
        sys.stderr.write(_peer_failure(cluster, timeout) + "\n")
        sys.stderr.flush()


@contextlib.contextmanager
def _peer_deadline(cluster: Cluster, timeout: float) -> Iterator[None]:
    """Exit the process with status 1 when the block (cluster start-up) lasts longer than
    ``timeout`` seconds, after a message naming the peers it waited for.

    TensorFlow's start-up holds the GIL and ignores SIGTERM, so neither a Python thread nor a
    signal can stop it: a child process prints the message, and ``faulthandler``'s C-level
    timer ends this process with status 1 a moment later.
    """
    package_root = str(Path(__file__).resolve().parent.parent)
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([package_root, os.environ.get("PYTHONPATH", "")]))
    child = subprocess.Popen(
        [sys.executable, "-c", "from edge_rec.distributed import watch_peers; watch_peers()"],
        stdin=subprocess.PIPE, env=env,
    )
    # the child probes each peer for up to 2 s before printing; exit a little after that
    trace = open(os.devnull, "w")  # noqa: SIM115 (must outlive the block if the timer fires)
    faulthandler.dump_traceback_later(timeout + 2.0 * len(cluster.peers()) + 1.0, exit=True, file=trace)
    try:
        yield
    finally:
        faulthandler.cancel_dump_traceback_later()
        trace.close()
        with contextlib.suppress(OSError):
            child.stdin.write(b"joined")
            child.stdin.close()
        try:
            child.wait(timeout=10)
        except subprocess.TimeoutExpired:
            child.kill()


_strategy: Any = None


def strategy() -> Any:
    """The process's ``tf.distribute.Strategy``, created on the first call.

    MultiWorkerMirroredStrategy when ``TF_CONFIG`` names more than one worker, else the default
    strategy. Call it before any other TensorFlow work (collective ops are configured when the
    strategy is created). Creating a multi-worker strategy waits for every peer; after
    ``EDGE_REC_PEER_TIMEOUT`` seconds without them the process prints which addresses it could
    not reach and exits with status 1.

    Collectives get no ``timeout_seconds``: TensorFlow (2.x) starts one thread per collective op
    that waits out the timeout, so a fast training loop piles them up (measured: a 2-worker
    teacher on a tiny log reached 15,000 threads in 55 s with a 60 s timeout, then both processes
    aborted with ``std::system_error: Resource temporarily unavailable``). A peer that dies during
    training is found by the strategy's own health check, which aborts the collectives with
    ``UnavailableError`` (:func:`peer_failures` names it).
    """
    global _strategy
    if _strategy is not None:
        return _strategy
    from edge_rec.keras_shim import tf

    cluster = read_cluster()
    if cluster is None or cluster.num_workers < 2:
        _strategy = tf.distribute.get_strategy()
        return _strategy
    timeout = peer_timeout()
    with _peer_deadline(cluster, timeout):
        _strategy = tf.distribute.MultiWorkerMirroredStrategy()
    return _strategy


class PeerLostError(RuntimeError):
    """A peer of the cluster stopped answering during training; the message names it."""


_TASK_NAME = re.compile(r"/job:(\w+)(?:/replica:\d+)?/task:(\d+)")


@contextlib.contextmanager
def peer_failures() -> Iterator[None]:
    """Turn TensorFlow's errors about a lost peer (Unavailable, DeadlineExceeded, Aborted, raised
    by a collective when another worker died or hung) into :class:`PeerLostError` naming the
    peers' addresses and how to resume. Other errors, and any error outside a cluster, pass."""
    try:
        yield
    except Exception as exc:
        cluster = read_cluster()
        if cluster is None or cluster.num_workers < 2 or "tensorflow" not in sys.modules:
            raise
        from edge_rec.keras_shim import tf

        if not isinstance(exc, tf.errors.UnavailableError | tf.errors.DeadlineExceededError | tf.errors.AbortedError):
            raise
        named = {(job, int(index)) for job, index in _TASK_NAME.findall(str(exc))}
        lost = [f"{job} {i} at {address}" for job, i, address in cluster.peers() if (job, i) in named]
        who = ", ".join(lost) or "a peer (" + ", ".join(address for _, _, address in cluster.peers()) + ")"
        raise PeerLostError(
            f"{ENV}: lost {who} during training ({type(exc).__name__}); restart every task of the "
            f"cluster with the same command: training resumes after the last epoch backed up under "
            f"OUT/{BACKUP_DIR}"
        ) from None


def is_chief() -> bool:
    """True unless this process is a non-chief worker of a multi-worker cluster."""
    cluster = read_cluster()
    return cluster is None or cluster.num_workers < 2 or cluster.is_chief


def summary() -> dict[str, Any]:
    """``{"strategy": class name or "default", "num_workers": N}`` for metrics.json."""
    cluster = read_cluster()
    if cluster is None or cluster.num_workers < 2:
        return {"strategy": "default", "num_workers": 1}
    return {"strategy": "MultiWorkerMirroredStrategy", "num_workers": cluster.num_workers}


@contextlib.contextmanager
def training_scope() -> Iterator[Any]:
    """``strategy().scope()``: create models and optimizers, compile and fit inside it."""
    with strategy().scope() as scope:
        yield scope


@contextlib.contextmanager
def output_dir(out: str | Path) -> Iterator[Path]:
    """Where this process writes its results: ``out`` on the chief (and without a cluster), a
    temporary directory, removed afterwards, on other workers (every worker must save, since
    saving a distributed model may need all of them, but only the chief's copy is kept)."""
    if is_chief():
        yield Path(out)
        return
    cluster = read_cluster()
    temporary = Path(tempfile.mkdtemp(prefix=f"edge-rec-{cluster.task_type}{cluster.task_index}-"))
    try:
        yield temporary / Path(out).name
    finally:
        shutil.rmtree(temporary, ignore_errors=True)


_backup_root: Path | None = None


@contextlib.contextmanager
def backups_in(out: str | Path) -> Iterator[None]:
    """With ``TF_CONFIG`` set, training stages inside the block back up under ``out/backup``
    (same path on every worker: TensorFlow keeps non-chief copies apart). The directory is
    removed when the block ends normally (each stage deletes its own backup when it finishes)."""
    global _backup_root
    if read_cluster() is None:
        yield
        return
    root = Path(out) / BACKUP_DIR
    _backup_root = root
    try:
        yield
    finally:
        _backup_root = None
    with contextlib.suppress(OSError):
        for stage in sorted(root.glob("*"), reverse=True):
            stage.rmdir()
        root.rmdir()


def backup_callbacks(stage: str) -> list[Any]:
    """``[BackupAndRestore(OUT/backup/<stage>)]`` inside :func:`backups_in`, else ``[]``."""
    if _backup_root is None:
        return []
    from edge_rec.keras_shim import keras

    return [keras.callbacks.BackupAndRestore(str(_backup_root / stage), save_freq="epoch")]


__all__ = [
    "BACKUP_DIR",
    "Cluster",
    "ENV",
    "PEER_TIMEOUT_ENV",
    "PeerLostError",
    "TFConfigError",
    "backup_callbacks",
    "backups_in",
    "check_environment",
    "is_chief",
    "output_dir",
    "peer_failures",
    "peer_timeout",
    "read_cluster",
    "strategy",
    "summary",
    "training_scope",
]
