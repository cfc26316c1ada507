"""Training on a TF_CONFIG cluster: validation of TF_CONFIG, two local workers, unreachable peers,
resuming from a backup after a kill (:mod:`edge_rec.distributed`)."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
from click.testing import CliRunner

from edge_rec.cli import main
from edge_rec.distributed import TFConfigError, peer_timeout, read_cluster
from tests.tiny_config import tiny_config

REPO_ROOT = Path(__file__).resolve().parent.parent

TINY = tiny_config(
    data={"synthetic_users": 150, "synthetic_items": 80, "history_length": 8},
    teacher={"fit": {"epochs": 2}},
    student={"embedding_dim": 4, "fit": {"epochs": 2}},
)


def tf_config(addresses: list[str], index: int, job: str = "worker") -> str:
    return json.dumps({"cluster": {"worker": addresses}, "task": {"type": job, "index": index}})


def free_ports(count: int) -> list[int]:
    sockets = [socket.socket() for _ in range(count)]
    try:
        for s in sockets:
            s.bind(("127.0.0.1", 0))
        return [s.getsockname()[1] for s in sockets]
    finally:
        for s in sockets:
            s.close()


def cli_process(args: list[str], env: dict[str, str], **kwargs) -> subprocess.Popen:
    """``python -m edge_rec.cli ARGS`` in a child with this checkout first on the path."""
    full_env = dict(os.environ, PYTHONPATH=str(REPO_ROOT), **env)
    return subprocess.Popen(
        [sys.executable, "-m", "edge_rec.cli", *args],
        env=full_env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, **kwargs,
    )


def finish(process: subprocess.Popen, timeout: float) -> tuple[int, str, str]:
    try:
        out, err = process.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        process.kill()
        out, err = process.communicate()
        pytest.fail(f"worker did not finish within {timeout} s:\n{err[-3000:]}")
    return process.returncode, out, err


# ---------------------------------------------------------------- TF_CONFIG validation


def test_no_tf_config_means_no_cluster():
    assert read_cluster({}) is None
    assert read_cluster({"TF_CONFIG": "  "}) is None


def test_a_valid_tf_config_is_read_with_its_chief():
    cluster = read_cluster({"TF_CONFIG": tf_config(["h0:1000", "h1:1000", "h2:1000"], 2)})
    assert cluster.num_workers == 3 and cluster.address == "h2:1000" and not cluster.is_chief
    assert [address for _, _, address in cluster.peers()] == ["h0:1000", "h1:1000"]
    assert read_cluster({"TF_CONFIG": tf_config(["h0:1000", "h1:1000"], 0)}).is_chief
    with_chief = json.dumps({"cluster": {"chief": ["c:1"], "worker": ["w:2"]}, "task": {"type": "worker", "index": 0}})
    cluster = read_cluster({"TF_CONFIG": with_chief})
    assert cluster.num_workers == 2 and not cluster.is_chief and cluster.tasks[0] == ("chief", 0, "c:1")


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ('{"cluster": ', "TF_CONFIG is not valid JSON"),
        ("[1, 2]", "TF_CONFIG: expected a JSON object"),
        ('{"task": {"type": "worker", "index": 0}}', 'TF_CONFIG: missing "cluster"'),
        ('{"cluster": {"worker": ["a:1"]}}', 'TF_CONFIG: missing "task"'),
        (tf_config(["a:1", "b:2"], 2), "TF_CONFIG: task.index 2 is out of range; cluster.worker has 2"),
        (tf_config(["a:1", "b:2"], -1), "TF_CONFIG: task.index -1 is out of range"),
        (tf_config(["a:1"], 0, job="ps"), "TF_CONFIG: task.type is 'ps'"),
        (json.dumps({"cluster": {"worker": ["a:1"]}, "task": {"type": "worker", "index": "0"}}),
         "TF_CONFIG: task.index is '0'; expected an integer"),
        (tf_config(["a:1", "localhost"], 0), "TF_CONFIG: cluster.worker[1] is 'localhost'; expected \"host:port\""),
        (tf_config(["a:1", "b:99999"], 0), "TF_CONFIG: cluster.worker[1] is 'b:99999'"),
        (tf_config(["a:1", ":80"], 0), "TF_CONFIG: cluster.worker[1] is ':80'"),
        (tf_config(["a:1", "a:1"], 0), "TF_CONFIG: address a:1 is listed twice"),
        (tf_config([], 0), "TF_CONFIG: cluster.worker is []"),
        (json.dumps({"cluster": {"worker": ["a:1"], "ps": ["p:2"]}, "task": {"type": "worker", "index": 0}}),
         "TF_CONFIG: cluster.ps is not supported"),
    ],
)
def test_a_bad_tf_config_names_the_field(value, expected):
    with pytest.raises(TFConfigError) as caught:
        read_cluster({"TF_CONFIG": value})
    assert expected in str(caught.value)


def test_peer_timeout_is_a_positive_number_of_seconds():
    assert peer_timeout({}) == 300.0
    assert peer_timeout({"EDGE_REC_PEER_TIMEOUT": "12.5"}) == 12.5
    for bad in ("0", "-3", "soon"):
        with pytest.raises(TFConfigError, match="EDGE_REC_PEER_TIMEOUT is"):
            peer_timeout({"EDGE_REC_PEER_TIMEOUT": bad})


@pytest.mark.parametrize("command", ["train-teacher", "build"])
def test_commands_refuse_a_bad_tf_config_before_training(tmp_path, command):
    runner = CliRunner()
    result = runner.invoke(
        main, [command, "--data", "synthetic-tv", "--out", str(tmp_path / "out")],
        env={"TF_CONFIG": tf_config(["127.0.0.1:1", "127.0.0.1:2"], 5)},
    )
    assert result.exit_code == 1
    assert "TF_CONFIG: task.index 5 is out of range" in result.output
    assert "Traceback" not in result.output
    assert not (tmp_path / "out").exists()


# ---------------------------------------------------------------- clusters of local processes


@pytest.mark.slow
def test_two_local_workers_train_one_teacher(tmp_path):
    config = tmp_path / "tiny.toml"
    config.write_text(TINY)
    addresses = [f"127.0.0.1:{port}" for port in free_ports(2)]
    out = tmp_path / "teacher"
    args = ["train-teacher", "--config", str(config), "--data", "synthetic-tv", "--out", str(out), "--quiet", "--json"]
    workers = [
        cli_process(args, {"TF_CONFIG": tf_config(addresses, index), "EDGE_REC_PEER_TIMEOUT": "120"})
        for index in range(2)
    ]
    results = [finish(worker, timeout=400) for worker in workers]
    for code, _, err in results:
        assert code == 0, err[-3000:]
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["strategy"] == "MultiWorkerMirroredStrategy" and metrics["num_workers"] == 2
    assert metrics["epochs_run"] == 2
    # the chief alone wrote the output directory; the backups are gone after a clean finish
    assert {p.name for p in out.iterdir()} == {"model.keras", "sequence_model.keras", "config.json", "metrics.json"}
    # both workers trained the same synchronized model: identical loss and validation curves
    printed = [json.loads(out_text.strip().splitlines()[-1]) for _, out_text, _ in results]
    assert printed[0]["history"] == printed[1]["history"] == metrics["history"]
    # and the per-replica loss scaling keeps the logged loss a mean (near log(catalog) at first)
    assert metrics["history"]["loss"][0] < 1.5 * __import__("math").log(metrics["catalog_size"])


@pytest.mark.slow
def test_a_worker_without_its_peers_fails_naming_the_address(tmp_path):
    config = tmp_path / "tiny.toml"
    config.write_text(TINY)
    own, missing = (f"127.0.0.1:{port}" for port in free_ports(2))
    worker = cli_process(
        ["train-teacher", "--config", str(config), "--data", "synthetic-tv", "--out", str(tmp_path / "out"), "--quiet"],
        {"TF_CONFIG": tf_config([own, missing], 0), "EDGE_REC_PEER_TIMEOUT": "5"},
    )
    code, _, err = finish(worker, timeout=180)
    assert code == 1
    assert f"worker 1 at {missing}: not reachable" in err
    assert "EDGE_REC_PEER_TIMEOUT" in err
    assert not (tmp_path / "out" / "metrics.json").exists()


@pytest.mark.slow
def test_a_killed_worker_stops_the_cluster_and_a_restart_resumes_from_the_backup(tmp_path):
    epochs = 8  # enough to be interrupted after the first backup; the restart trains the rest
    config = tmp_path / "tiny.toml"
    config.write_text(TINY.replace("fit = { epochs = 2, batch_size = 32 }",
                                   f"fit = {{ epochs = {epochs}, batch_size = 32, patience = {epochs} }}", 1))
    out = tmp_path / "teacher"
    args = ["train-teacher", "--config", str(config), "--data", "synthetic-tv", "--out", str(out), "--quiet", "--json"]
    addresses = [f"127.0.0.1:{port}" for port in free_ports(2)]
    envs = [{"TF_CONFIG": tf_config(addresses, index), "EDGE_REC_PEER_TIMEOUT": "60"} for index in range(2)]
    chief, other = (cli_process(args, env) for env in envs)
    backup = out / "backup" / "teacher"
    deadline = time.monotonic() + 300
    while not any("checkpoint" in p.name for p in backup.rglob("*")) and chief.poll() is None:
        assert time.monotonic() < deadline, "no backup was written within 300 s"
        time.sleep(0.2)
    assert chief.poll() is None, "training finished before it could be interrupted"
    other.send_signal(signal.SIGKILL)
    other.communicate(timeout=60)
    # the chief notices the lost peer (bounded by the peer timeout) and names it, without a traceback
    code, _, err = finish(chief, timeout=240)
    assert code == 1
    assert f"lost worker 1 at {addresses[1]} during training" in err and "Traceback" not in err
    assert not (out / "metrics.json").exists()

    # the whole cluster restarted with the same commands resumes after the backed-up epochs
    results = [finish(process, timeout=600) for process in [cli_process(args, env) for env in envs]]
    for code, _, err in results:
        assert code == 0, err[-3000:]
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["num_workers"] == 2
    assert 1 <= metrics["epochs_run"] < epochs
    assert len(metrics["history"]["loss"]) == metrics["epochs_run"]
    assert not (out / "backup").exists()
