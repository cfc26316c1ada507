"""Signed updates end to end: publish, update, hot reload, rollback, key rotation, sideloads,
the CLI, and the Python 3.9 device (python-tuf 5) without TensorFlow."""

from __future__ import annotations

import json
import os
import shutil
import textwrap
import urllib.error
import urllib.request

import pytest
from click.testing import CliRunner
from conftest import DEVICE_PYTHON, run_without_tensorflow
from tiny_bundle import TINY_ITEM_IDS
from update_attacks import RepoServer, SignedRepo

from device_runtime.bundle import verify_bundle
from device_runtime.recommender import Recommender
from device_runtime.server import RecommendationServer
from device_runtime.updates import (
    DeviceTrust,
    InstallError,
    UnsignedBundleError,
    UpdateClient,
    UpdateSetupError,
)
from device_runtime.updates.release import Release, ReleaseFieldError
from device_runtime.version import parse_version, runtime_can_serve
from edge_rec.cli import main
from edge_rec.signing import SigningError, publish_bundle, replace_keys
from edge_rec.signing.keystore import PASSPHRASE_ENV

pytest_plugins = ["conftest_bundle"]
HISTORY = TINY_ITEM_IDS[2:6]


def _digest(path) -> str:
    return verify_bundle(path).manifest_sha256


def test_publish_update_and_hot_reload_keep_the_previous_bundle(tmp_path, tiny_bundle_dir, other_bundle_dir):
    repo = SignedRepo(tmp_path)
    first = repo.publish(tiny_bundle_dir)
    dest = tmp_path / "device"
    with RepoServer(repo.served) as server:
        installed = UpdateClient(server.url, repo.trust_root, dest).update()
        assert installed.status == "updated" and installed.release == first
        rec = Recommender.load(dest / "current", trust=DeviceTrust(dest, repo.trust_root))
        assert rec.bundle.manifest_sha256 == _digest(tiny_bundle_dir)

        second = repo.publish(other_bundle_dir)
        assert second.model_version == first.model_version + 1
        result = rec.update_from(server.url, trust_root=repo.trust_root, dest=dest)
        assert result.status == "updated" and result.replaced == first
        assert rec.bundle.manifest_sha256 == _digest(other_bundle_dir)  # hot-reloaded
        assert _digest(dest / "previous") == _digest(tiny_bundle_dir)  # kept for rollback
        assert len(rec.recommend(HISTORY, k=5)) == 5

        again = UpdateClient(server.url, repo.trust_root, dest).update()
        assert again.status == "current" and again.release == second


def test_a_device_follows_a_root_rotation_chain(tmp_path, tiny_bundle_dir):
    repo = SignedRepo(tmp_path)
    replace_keys(repo.repo, repo.keys, repo.config, "root")
    change = replace_keys(repo.repo, repo.keys, repo.config, "root")
    assert change.root_version == 3
    repo.publish(tiny_bundle_dir)
    dest = tmp_path / "device"
    with RepoServer(repo.served) as server:
        result = UpdateClient(server.url, repo.trust_root, dest).update()  # trusts root v1 only
    assert result.status == "updated"
    trusted = json.loads((dest / "metadata" / "root.json").read_text())
    assert trusted["signed"]["version"] == 3
    assert not list((repo.keys / "root").glob("*.pem")) == []  # the v3 root key is still there
    assert len(list((repo.keys / "revoked").glob("*.pem"))) == 2  # the v1 and v2 root keys


def test_profiles_pick_their_own_release(tmp_path, tiny_bundle_dir, other_bundle_dir):
    repo = SignedRepo(tmp_path)
    repo.publish(tiny_bundle_dir, profile="smart-speaker")
    tv = repo.publish(other_bundle_dir, profile="smart-tv")
    with RepoServer(repo.served) as server:
        speaker = UpdateClient(server.url, repo.trust_root, tmp_path / "speaker", profile="smart-speaker").update()
        anyone = UpdateClient(server.url, repo.trust_root, tmp_path / "any").update()
    assert speaker.release.device_profile == "smart-speaker"
    assert _digest(tmp_path / "speaker" / "current") == _digest(tiny_bundle_dir)
    assert anyone.release == tv  # without a profile: the newest release


def test_an_unsigned_sideload_is_refused_and_the_model_keeps_serving(tmp_path, tiny_bundle_dir,
                                                                       other_bundle_dir):
    repo = SignedRepo(tmp_path)
    repo.publish(tiny_bundle_dir)
    dest = tmp_path / "device"
    with RepoServer(repo.served) as server:
        UpdateClient(server.url, repo.trust_root, dest).update()
    trust = DeviceTrust(dest, repo.trust_root)
    with pytest.raises(UnsignedBundleError, match="no signed release lists this bundle"):
        Recommender.load(other_bundle_dir, trust=trust)
    rec = Recommender.load(tiny_bundle_dir, trust=trust)  # the same bundle, signed, anywhere
    with pytest.raises(UnsignedBundleError):
        rec.reload(other_bundle_dir)
    assert rec.bundle.manifest_sha256 == _digest(tiny_bundle_dir)

    server = RecommendationServer(rec, "127.0.0.1", 0, token="sideload-test-token")
    import threading

    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        request = urllib.request.Request(
            f"http://127.0.0.1:{server.server_address[1]}/reload", method="POST",
            data=json.dumps({"path": str(other_bundle_dir)}).encode(),
            headers={"Authorization": "Bearer sideload-test-token", "Content-Type": "application/json"})
        with pytest.raises(urllib.error.HTTPError) as refused:
            urllib.request.urlopen(request, timeout=10)
        assert refused.value.code == 422
        assert "UnsignedBundleError" in refused.value.read().decode()
    finally:
        server.shutdown()
        server.server_close()
    assert rec.bundle.manifest_sha256 == _digest(tiny_bundle_dir)


def test_a_failed_self_check_or_app_reload_leaves_the_current_bundle(tmp_path, tiny_bundle_dir,
                                                                      other_bundle_dir):
    repo = SignedRepo(tmp_path)
    repo.publish(tiny_bundle_dir)
    dest = tmp_path / "device"
    with RepoServer(repo.served) as server:
        UpdateClient(server.url, repo.trust_root, dest).update()
        current = (dest / "current").resolve()
        repo.publish(other_bundle_dir)

        def failing_check(path):
            raise RuntimeError("the model crashed on the device")

        with pytest.raises(InstallError, match="failed its install check"):
            UpdateClient(server.url, repo.trust_root, dest).update(self_check=failing_check)
        assert (dest / "current").resolve() == current
        assert not list((dest / "bundles").glob(".staging-*")) and not list((dest / "downloads").iterdir())

        def failing_reload(path):
            raise MemoryError("no room for a second interpreter")

        with pytest.raises(InstallError, match="rolled back"):
            UpdateClient(server.url, repo.trust_root, dest).update(reload=failing_reload)
        assert (dest / "current").resolve() == current


def test_trust_state_setup_errors_name_the_file(tmp_path, tiny_bundle_dir):
    repo = SignedRepo(tmp_path / "a")
    other = SignedRepo(tmp_path / "b")
    dest = tmp_path / "device"
    DeviceTrust(dest, repo.trust_root)
    with pytest.raises(UpdateSetupError, match="another trust root"):
        DeviceTrust(dest, other.trust_root)
    not_root = tmp_path / "targets.json"
    shutil.copy(repo.repo / "metadata" / "targets.json", not_root)
    with pytest.raises(UpdateSetupError, match=r"targets\.json: not a valid TUF root\.json"):
        DeviceTrust(tmp_path / "device2", not_root)
    with pytest.raises(UpdateSetupError, match="http"):
        UpdateClient("ftp://example.com/", repo.trust_root, tmp_path / "device3")


def test_publishing_checks_everything_before_writing(tmp_path, tiny_bundle_dir, monkeypatch):
    repo = SignedRepo(tmp_path)
    repo.publish(tiny_bundle_dir)
    before = sorted(p.relative_to(repo.repo) for p in repo.repo.rglob("*"))
    with pytest.raises(SigningError, match="release 1 is already published"):
        publish_bundle(tiny_bundle_dir, repo.repo, repo.keys, repo.config, model_version=1)
    with pytest.raises(SigningError, match="not a publishable bundle"):
        publish_bundle(tmp_path / "keys", repo.repo, repo.keys, repo.config)
    with pytest.raises(SigningError, match="profile"):
        publish_bundle(tiny_bundle_dir, repo.repo, repo.keys, repo.config, profile="../etc")
    shutil.move(repo.keys / "targets", tmp_path / "offline-targets")
    with pytest.raises(SigningError, match="targets needs 1 signature"):
        publish_bundle(tiny_bundle_dir, repo.repo, repo.keys, repo.config)
    assert sorted(p.relative_to(repo.repo) for p in repo.repo.rglob("*")) == before


def test_keys_encrypted_with_a_passphrase(tmp_path, tiny_bundle_dir, monkeypatch):
    monkeypatch.setenv(PASSPHRASE_ENV, "correct horse battery staple")
    repo = SignedRepo(tmp_path)
    pem = next((repo.keys / "targets").glob("*.pem")).read_text()
    assert "ENCRYPTED PRIVATE KEY" in pem
    repo.publish(tiny_bundle_dir)
    monkeypatch.setenv(PASSPHRASE_ENV, "wrong")
    with pytest.raises(SigningError, match=PASSPHRASE_ENV):
        repo.publish(tiny_bundle_dir)


def test_release_fields_are_checked():
    good = Release(3, 2, 2, "0.1.0", None, "a" * 64, "bundles/any/bundle-v3.tar.gz")
    assert Release.from_custom(good.to_custom(), good.target_path) == good
    for field, bad in (("model_version", 0), ("min_runtime_version", "one"), ("manifest_sha256", "x"),
                       ("device_profile", "")):
        custom = good.to_custom()
        custom["edge_rec"][field] = bad
        with pytest.raises(ReleaseFieldError, match=field):
            Release.from_custom(custom, good.target_path)
    assert good.problem_running("0.1.0", 2) is None
    assert "runtime 0.1.0 or newer" in good.problem_running("0.0.9", 2)
    assert "schema 2" in good.problem_running("0.1.0", 1)
    assert runtime_can_serve("0.1", "0.1.0") and not runtime_can_serve("1.0.1", "1.0")
    with pytest.raises(ValueError, match="not a version"):
        parse_version("1.x")


def test_the_cli_publishes_updates_and_verifies(tmp_path, tiny_bundle_dir, other_bundle_dir):
    runner = CliRunner()
    keys, repo_dir, dest = tmp_path / "keys", tmp_path / "repo", tmp_path / "device"
    made = runner.invoke(main, ["keys", "init", "--keys", str(keys), "--repo", str(repo_dir)])
    assert made.exit_code == 0, made.output
    trust_root = repo_dir / "metadata" / "1.root.json"
    assert trust_root.is_file() and "offline" in made.stderr
    archive = tmp_path / "tiny.tar.gz"
    from device_runtime.bundle import archive_members, build_archive

    archive.write_bytes(build_archive(archive_members(tiny_bundle_dir)))
    published = runner.invoke(main, ["publish", str(archive), "--keys", str(keys), "--repo", str(repo_dir),
                                     "--profile", "smart-speaker"])
    assert published.exit_code == 0, published.output
    assert json.loads(published.stdout)["model_version"] == 1
    with RepoServer(repo_dir) as server:
        updated = runner.invoke(main, ["update", "--repo-url", server.url, "--trust-root", str(trust_root),
                                       "--dest", str(dest), "--profile", "smart-speaker"])
        assert updated.exit_code == 0, updated.output
        assert json.loads(updated.stdout)["status"] == "updated"
        ok = runner.invoke(main, ["verify", str(dest / "current"), "--trust-root", str(trust_root),
                                  "--repo-url", server.url])
        assert ok.exit_code == 0, ok.output
        assert json.loads(ok.stdout)["model_version"] == 1
    unsigned = runner.invoke(main, ["verify", str(other_bundle_dir), "--trust-root", str(trust_root),
                                    "--dest", str(dest)])
    assert unsigned.exit_code == 1 and "UnsignedBundleError" in unsigned.stderr
    assert "Traceback" not in unsigned.output
    offline = runner.invoke(main, ["update", "--repo-url", "http://127.0.0.1:9/", "--trust-root",
                                   str(trust_root), "--dest", str(dest)])
    assert offline.exit_code == 1 and len(offline.stderr.strip().splitlines()) == 1
    assert "RepositoryUnavailableError" in offline.stderr
    rotated = runner.invoke(main, ["keys", "rotate", "timestamp", "--keys", str(keys), "--repo", str(repo_dir)])
    assert rotated.exit_code == 0 and json.loads(rotated.stdout)["root_version"] == 2
    bad = runner.invoke(main, ["keys", "revoke", "nope", "--keys", str(keys), "--repo", str(repo_dir)])
    assert bad.exit_code == 1 and "not a key of this repository" in bad.stderr
    half = runner.invoke(main, ["serve", str(tiny_bundle_dir), "--trust-root", str(trust_root)])
    assert half.exit_code == 2 and "--update-dir" in half.stderr
    unsigned_serve = runner.invoke(main, ["serve", str(other_bundle_dir), "--trust-root", str(trust_root),
                                          "--update-dir", str(dest), "--port", "0"])
    assert unsigned_serve.exit_code == 1 and "no signed release lists this bundle" in unsigned_serve.stderr


def test_the_python39_device_updates_without_tensorflow(tmp_path, tiny_bundle_dir):
    """`edge-rec update` in the device interpreter (Python 3.9 and python-tuf 5 under `make
    test`) with TensorFlow blocked, then the installed bundle serves."""
    repo = SignedRepo(tmp_path)
    repo.publish(tiny_bundle_dir)
    dest = tmp_path / "device"
    script = textwrap.dedent(f"""
        import json, sys
        from edge_rec.cli import main
        sys.argv = ["edge-rec", "update", "--repo-url", sys.argv[1], "--trust-root",
                    {str(repo.trust_root)!r}, "--dest", {str(dest)!r}]
        try:
            main()
        except SystemExit as exit:
            assert exit.code in (0, None), exit.code
        import tuf
        from device_runtime.recommender import Recommender
        rec = Recommender.load({str(dest / "current")!r})
        print(json.dumps({{"tuf": tuf.__version__, "python": sys.version_info[:2],
                          "n": len(rec.recommend({HISTORY!r}, k=3)),
                          "tf": [m for m in sys.modules if m.split(".")[0] == "tensorflow"]}}))
    """)
    with RepoServer(repo.served) as server:
        result = run_without_tensorflow(python=DEVICE_PYTHON, args=["-c", script, server.url])
    assert result.returncode == 0, result.stderr
    lines = result.stdout.strip().splitlines()
    assert json.loads(lines[0])["status"] == "updated"
    report = json.loads(lines[-1])
    assert report["n"] == 3 and report["tf"] == []
    if os.environ.get("EDGE_REC_DEVICE_PYTHON_VERSION") == "3.9":
        assert report["python"] == [3, 9] and report["tuf"].startswith("5.")


def test_leftovers_of_a_killed_update_are_removed_and_updates_run_one_at_a_time(tmp_path, tiny_bundle_dir):
    import threading

    repo = SignedRepo(tmp_path)
    repo.publish(tiny_bundle_dir)
    dest = tmp_path / "device"
    (dest / "bundles" / ".staging-killed").mkdir(parents=True)
    (dest / "downloads" / ".download-killed").mkdir(parents=True)
    results = []
    with RepoServer(repo.served) as server:
        threads = [threading.Thread(target=lambda: results.append(
            UpdateClient(server.url, repo.trust_root, dest).update().status)) for _ in range(2)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=120)
    assert sorted(results) == ["current", "updated"]  # the second waited, then found it installed
    assert not (dest / "bundles" / ".staging-killed").exists()
    assert not (dest / "downloads" / ".download-killed").exists()
