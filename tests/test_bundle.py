"""The bundle format: writing, verification, tampering, archives, atomic replacement."""

from __future__ import annotations

import hashlib
import io
import json
import tarfile
from pathlib import Path

import numpy as np
import pytest
from tiny_bundle import (
    TINY_CATALOG,
    TINY_HISTORY_LENGTH,
    TINY_ITEM_IDS,
    TINY_POPULARITY,
    TINY_TITLES,
    TINY_TOP_K,
    rewrite_manifest,
)

from converters.bundle_writer import archive_bundle, write_bundle
from device_runtime.bundle import (
    ITEMS_FILE,
    MANIFEST_FILE,
    MODEL_FILE,
    SCHEMA_VERSION,
    BundleError,
    Manifest,
    bytes_digest,
    manifest_digest,
    verify_bundle,
)

pytest_plugins = ["conftest_bundle"]  # the tiny bundle fixtures


def _write(out_dir, tflite_bytes, **changes):
    args = dict(tflite_bytes=tflite_bytes, vocabulary_ids=TINY_ITEM_IDS, titles=TINY_TITLES,
                history_length=TINY_HISTORY_LENGTH, top_k=TINY_TOP_K,
                quantization={"variant": "float32"}, popularity_order=TINY_POPULARITY,
                metrics={"ndcg@10": np.float32(0.25)}, build_info={"seed": 0})
    args.update(changes)
    return write_bundle(out_dir, **args)


def test_written_bundle_verifies_with_the_expected_manifest(tiny_bundle_dir):
    bundle = verify_bundle(tiny_bundle_dir)
    manifest = bundle.manifest
    assert manifest.schema_version == SCHEMA_VERSION
    assert (manifest.catalog_size, manifest.history_length, manifest.top_k) == (
        TINY_CATALOG, TINY_HISTORY_LENGTH, TINY_TOP_K)
    assert list(manifest.popularity) == TINY_POPULARITY
    assert [s.name for s in manifest.model.inputs] == ["history"]
    assert {(s.name, s.shape, s.dtype) for s in manifest.model.outputs} == {
        ("top_ids", (1, TINY_TOP_K), "int32"), ("top_scores", (1, TINY_TOP_K), "float32")}
    assert list(bundle.item_ids) == TINY_ITEM_IDS
    assert bundle.titles[5] == TINY_TITLES[5]
    for name in (MODEL_FILE, ITEMS_FILE):
        assert manifest.files[name] == bytes_digest((tiny_bundle_dir / name).read_bytes())
    assert bundle.model_bytes == (tiny_bundle_dir / MODEL_FILE).read_bytes()


def test_manifest_digest_is_sha256_of_canonical_json_without_itself(tiny_bundle_dir):
    raw = json.loads((tiny_bundle_dir / MANIFEST_FILE).read_text())
    body = {k: v for k, v in raw.items() if k != "manifest_sha256"}
    expected = hashlib.sha256(json.dumps(body, sort_keys=True, separators=(",", ":")).encode()).hexdigest()
    assert raw["manifest_sha256"] == expected == manifest_digest(raw)


def test_tampered_model_is_refused(bundle_copy):
    model = bytearray((bundle_copy / MODEL_FILE).read_bytes())
    model[len(model) // 2] ^= 0xFF
    (bundle_copy / MODEL_FILE).write_bytes(bytes(model))
    with pytest.raises(BundleError, match=r"model\.tflite: SHA-256"):
        verify_bundle(bundle_copy)


def test_truncated_model_is_refused_by_size(bundle_copy):
    data = (bundle_copy / MODEL_FILE).read_bytes()
    (bundle_copy / MODEL_FILE).write_bytes(data[:-100])
    with pytest.raises(BundleError, match=r"model\.tflite: size is"):
        verify_bundle(bundle_copy)


def test_tampered_items_file_is_refused(bundle_copy):
    text = (bundle_copy / ITEMS_FILE).read_text()
    (bundle_copy / ITEMS_FILE).write_text(text.replace("\t1003\t", "\t9999\t"))
    with pytest.raises(BundleError, match=r"items\.tsv: SHA-256"):
        verify_bundle(bundle_copy)


def test_edited_manifest_is_refused_by_its_digest(bundle_copy):
    rewrite_manifest(bundle_copy, lambda m: m.update(top_k=5), resign=False)
    with pytest.raises(BundleError, match="manifest_sha256 does not match"):
        verify_bundle(bundle_copy)


def test_a_bundle_that_needs_a_newer_reader_is_refused_with_a_hint(bundle_copy):
    rewrite_manifest(bundle_copy, lambda m: m.update(schema_version=SCHEMA_VERSION + 1,
                                                     min_reader_schema=SCHEMA_VERSION + 1))
    with pytest.raises(BundleError, match=rf"needs a reader of schema_version {SCHEMA_VERSION + 1} or newer"
                                          r".*upgrade edge-rec"):
        verify_bundle(bundle_copy)


def test_a_newer_bundle_with_optional_fields_this_reader_does_not_know_is_served(bundle_copy):
    # a later writer added an optional field and kept min_reader_schema: this reader serves it,
    # keeps the field (the digest covers it) and writes it back unchanged
    rewrite_manifest(bundle_copy, lambda m: m.update(schema_version=SCHEMA_VERSION + 1,
                                                     lineage={"base": "abc", "added": 3}))
    manifest = verify_bundle(bundle_copy).manifest
    assert manifest.extra == {"lineage": {"base": "abc", "added": 3}}
    assert manifest.schema_version == SCHEMA_VERSION + 1
    again = Manifest.from_json(manifest.to_json())
    assert again.extra == manifest.extra and again.to_dict() == manifest.to_dict()


def test_a_version_1_manifest_is_migrated_and_keeps_refusing_unknown_fields(bundle_copy):
    def as_v1(m):
        m.pop("min_reader_schema")
        m["schema_version"] = 1

    rewrite_manifest(bundle_copy, as_v1)
    manifest = verify_bundle(bundle_copy).manifest
    assert (manifest.schema_version, manifest.min_reader_schema) == (SCHEMA_VERSION, 1)
    rewrite_manifest(bundle_copy, lambda m: m.update(extra=1))
    with pytest.raises(BundleError, match=r"unknown field\(s\) \['extra'\]"):
        verify_bundle(bundle_copy)


def test_items_table_must_match_catalog_size(bundle_copy):
    lines = (bundle_copy / ITEMS_FILE).read_text().splitlines()
    (bundle_copy / ITEMS_FILE).write_text("\n".join(lines[:-1]) + "\n")
    record = bytes_digest((bundle_copy / ITEMS_FILE).read_bytes())
    rewrite_manifest(bundle_copy, lambda m: m["files"].update(
        {ITEMS_FILE: {"sha256": record.sha256, "size": record.size}}))
    with pytest.raises(BundleError, match=f"29 items listed.*catalog_size {TINY_CATALOG}"):
        verify_bundle(bundle_copy)


def test_manifest_field_errors_name_the_field(bundle_copy):
    rewrite_manifest(bundle_copy, lambda m: m.update(history_length="5"))
    with pytest.raises(BundleError, match="field 'history_length' must be int, got str"):
        verify_bundle(bundle_copy)
    rewrite_manifest(bundle_copy, lambda m: m.update(history_length=5, popularity=[2, 2]))
    with pytest.raises(BundleError, match=r"popularity\[1\] is 2"):
        verify_bundle(bundle_copy)
    with pytest.raises(BundleError, match="not valid JSON"):
        Manifest.from_json("{")


def test_missing_file_is_named(bundle_copy):
    (bundle_copy / ITEMS_FILE).unlink()
    with pytest.raises(BundleError, match=r"missing items\.tsv"):
        verify_bundle(bundle_copy)


def test_archive_round_trip_is_reproducible(tiny_bundle_dir, tmp_path):
    first = archive_bundle(tiny_bundle_dir, tmp_path / "a.tar.gz")
    second = archive_bundle(tiny_bundle_dir, tmp_path / "b.tar.gz")
    assert first.read_bytes() == second.read_bytes()
    from_archive = verify_bundle(first)
    from_dir = verify_bundle(tiny_bundle_dir)
    assert from_archive.model_bytes == from_dir.model_bytes
    assert from_archive.manifest == from_dir.manifest


def _tar_gz(path, members):
    with tarfile.open(path, "w:gz") as archive:
        for info, data in members:
            archive.addfile(info, io.BytesIO(data) if data is not None else None)
    return path


@pytest.mark.parametrize("kind", ["traversal", "absolute", "symlink"])
def test_malicious_archive_is_refused_without_writing(tiny_bundle_dir, tmp_path, kind):
    members = []
    for name in (MODEL_FILE, ITEMS_FILE, MANIFEST_FILE):
        data = (tiny_bundle_dir / name).read_bytes()
        info = tarfile.TarInfo(f"bundle/{name}")
        info.size = len(data)
        members.append((info, data))
    if kind == "symlink":
        evil = tarfile.TarInfo("bundle/link")
        evil.type = tarfile.SYMTYPE
        evil.linkname = "/etc/passwd"
        members.append((evil, None))
    else:
        evil = tarfile.TarInfo("../escaped.txt" if kind == "traversal" else "/tmp/escaped.txt")
        evil.size = 3
        members.append((evil, b"bad"))
    archive = _tar_gz(tmp_path / "evil.tar.gz", members)
    with pytest.raises(BundleError, match="not a plain file"):
        verify_bundle(archive)
    assert not (tmp_path.parent / "escaped.txt").exists()


def test_write_bundle_replaces_an_existing_bundle_only_when_complete(tiny_bundle_dir, tmp_path):
    tflite = (tiny_bundle_dir / MODEL_FILE).read_bytes()
    out = tmp_path / "bundle"
    _write(out, tflite)
    before = (out / MANIFEST_FILE).read_bytes()
    with pytest.raises(BundleError, match=r"popularity\[0\] is 99"):
        _write(out, tflite, popularity_order=[99])
    assert (out / MANIFEST_FILE).read_bytes() == before
    with pytest.raises(BundleError, match="expected history int32"):
        _write(out, tflite, history_length=TINY_HISTORY_LENGTH + 1)
    _write(out, tflite, metrics={"ndcg@10": 0.5})
    assert verify_bundle(out).manifest.metrics == {"ndcg@10": 0.5}
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bundle"]  # no temp or retired dirs


def test_write_bundle_rejects_bad_vocabulary(tiny_bundle_dir, tmp_path):
    tflite = (tiny_bundle_dir / MODEL_FILE).read_bytes()
    ids = list(TINY_ITEM_IDS)
    ids[5] = ids[4]
    with pytest.raises(BundleError, match="index 5"):
        _write(tmp_path / "b", tflite, vocabulary_ids=ids)
    ids[5] = "has\ttab"
    with pytest.raises(BundleError, match="index 5"):
        _write(tmp_path / "b", tflite, vocabulary_ids=ids)
    assert not (tmp_path / "b").exists()


# ---- hostile bundles: every one ends in BundleError naming the file and the problem ----------

def _replace_file(bundle_dir, name, data):
    """Write ``data`` as bundle file ``name`` and re-sign the manifest so that hashes match."""
    (bundle_dir / name).write_bytes(data)
    record = bytes_digest((bundle_dir / name).read_bytes())
    rewrite_manifest(bundle_dir, lambda m: m["files"].update(
        {name: {"sha256": record.sha256, "size": record.size}}))


def _raw_manifest(bundle_dir):
    return json.loads((bundle_dir / MANIFEST_FILE).read_text())


@pytest.mark.parametrize("literal", ["NaN", "Infinity", "-Infinity", "1e400"])
def test_non_finite_numbers_in_the_manifest_are_refused(bundle_copy, literal):
    text = (bundle_copy / MANIFEST_FILE).read_text()
    (bundle_copy / MANIFEST_FILE).write_text(text.replace('"ndcg@10": 0.1', f'"ndcg@10": {literal}'))
    with pytest.raises(BundleError, match=rf"manifest\.json: {literal} is not a finite number"):
        verify_bundle(bundle_copy)


@pytest.mark.parametrize("depth", [40, 5000])
def test_deeply_nested_manifest_is_refused(bundle_copy, depth):
    text = (bundle_copy / MANIFEST_FILE).read_text()
    nested = "[" * depth + "]" * depth
    (bundle_copy / MANIFEST_FILE).write_text(text.replace('"ndcg@10": 0.1', f'"ndcg@10": {nested}'))
    with pytest.raises(BundleError, match=r"manifest\.json: JSON nested too deeply"):
        verify_bundle(bundle_copy)


@pytest.mark.parametrize("encode, fragment", [
    (lambda t: b"\xef\xbb\xbf" + t.encode(), "byte-order mark"),
    (lambda t: t.encode("utf-16"), "byte-order mark"),
    (lambda t: t.encode("utf-16-le"), "not valid JSON"),
    (lambda t: t.replace("float32", "fl\u00e9at32").encode("latin-1"), "not UTF-8"),
])
def test_manifest_must_be_utf8_without_bom(bundle_copy, encode, fragment):
    text = (bundle_copy / MANIFEST_FILE).read_text()
    (bundle_copy / MANIFEST_FILE).write_bytes(encode(text))
    with pytest.raises(BundleError, match=rf"manifest\.json: .*{fragment}"):
        verify_bundle(bundle_copy)


@pytest.mark.parametrize("change, fragment", [
    (lambda m: m["model"].update(extra=1), r"unknown field\(s\) \['model.extra'\]"),
    (lambda m: m.update(min_reader_schema="2"), "min_reader_schema' must be int"),
    (lambda m: m.update(metrics=[1]), "'metrics' must be dict"),
    (lambda m: m["model"].update(signature_key="other"), "model.signature_key is 'other'"),
    (lambda m: m["model"].update(file="other.tflite"), "model.file is 'other.tflite'"),
    (lambda m: m["model"]["inputs"].append(m["model"]["inputs"][0]), "serving contract"),
    (lambda m: m["model"]["outputs"].__setitem__(1, m["model"]["outputs"][0]), "serving contract"),
    (lambda m: m["model"]["inputs"][0].update(dtype="int64"), "serving contract"),
    (lambda m: m.update(top_k=TINY_CATALOG), "larger than the catalog"),
    (lambda m: m["files"].update({"extra.bin": m["files"][ITEMS_FILE]}), "expected exactly"),
    (lambda m: m.update(catalog_size=10 ** 400), "catalog_size"),
])
def test_manifest_the_writer_would_not_write_is_refused(bundle_copy, change, fragment):
    rewrite_manifest(bundle_copy, change)
    with pytest.raises(BundleError, match=fragment):
        verify_bundle(bundle_copy)


@pytest.mark.parametrize("edit, fragment", [
    (lambda lines: lines.__setitem__(1, "2\t<pad>\tTrack 0"), "reserved"),
    (lambda lines: lines.__setitem__(1, "2\t<oov>\tTrack 0"), "reserved"),
    (lambda lines: lines.__setitem__(1, "2\t 1000\tTrack 0"), "whitespace at its ends"),
    (lambda lines: lines.__setitem__(1, "2\t10\x0000\tTrack 0"), "NUL"),
    (lambda lines: lines.__setitem__(2, "3\t1000\tTrack 1"), "repeated"),
    (lambda lines: lines.__setitem__(1, "2\t1000\tTrack  0"), "title"),
    (lambda lines: lines.__setitem__(1, "2\t1000\tTrack 0\r"), "title"),
    (lambda lines: lines.__setitem__(0, "\ufeff" + lines[0]), "byte-order mark"),
])
def test_items_table_the_writer_would_not_write_is_refused(bundle_copy, edit, fragment):
    lines = (bundle_copy / ITEMS_FILE).read_text().split("\n")
    edit(lines)
    _replace_file(bundle_copy, ITEMS_FILE, "\n".join(lines).encode("utf-8"))
    with pytest.raises(BundleError, match=rf"items\.tsv: .*{fragment}"):
        verify_bundle(bundle_copy)


def test_writer_refuses_nul_and_reserved_ids(tiny_bundle_dir, tmp_path):
    tflite = (tiny_bundle_dir / MODEL_FILE).read_bytes()
    for bad in ("a\x00b", "<pad>", " x"):
        ids = list(TINY_ITEM_IDS)
        ids[3] = bad
        with pytest.raises(BundleError, match="at index 3"):
            _write(tmp_path / "b", tflite, vocabulary_ids=ids)


def test_directory_file_larger_than_its_manifest_entry_stops_reading(bundle_copy):
    with open(bundle_copy / MODEL_FILE, "ab") as handle:
        handle.write(b"\0" * (3 << 20))
    with pytest.raises(BundleError, match=r"model\.tflite: larger than expected \(the manifest says"):
        verify_bundle(bundle_copy)


def test_files_over_the_hard_cap_are_not_read(bundle_copy):
    size = (bundle_copy / MODEL_FILE).stat().st_size
    cap = (bundle_copy / MANIFEST_FILE).stat().st_size
    assert size > cap > (bundle_copy / ITEMS_FILE).stat().st_size
    with pytest.raises(BundleError, match=r"model\.tflite: the manifest says \d+ bytes, more than "
                                          rf"the reader's limit of {cap}"):
        verify_bundle(bundle_copy, max_file_bytes=cap)
    with pytest.raises(BundleError, match=r"manifest\.json: larger than the reader's limit of 100 "):
        verify_bundle(bundle_copy, max_file_bytes=100)
    assert verify_bundle(bundle_copy, max_file_bytes=size).manifest.files[MODEL_FILE].size == size
    with pytest.raises(ValueError, match="max_file_bytes"):
        verify_bundle(bundle_copy, max_file_bytes=0)


def test_directory_bundles_refuse_symlinks_and_special_files(bundle_copy, tmp_path):
    import os

    outside = tmp_path / "outside.tflite"
    outside.write_bytes((bundle_copy / MODEL_FILE).read_bytes())
    (bundle_copy / MODEL_FILE).unlink()
    (bundle_copy / MODEL_FILE).symlink_to(outside)
    with pytest.raises(BundleError, match=r"model\.tflite: is a symbolic link"):
        verify_bundle(bundle_copy)
    (bundle_copy / MODEL_FILE).unlink()
    os.mkfifo(bundle_copy / MODEL_FILE)  # would block a naive reader forever
    with pytest.raises(BundleError, match=r"model\.tflite: is a special file"):
        verify_bundle(bundle_copy)
    (bundle_copy / MODEL_FILE).unlink()
    (bundle_copy / MODEL_FILE).mkdir()
    with pytest.raises(BundleError, match=r"model\.tflite: is a directory"):
        verify_bundle(bundle_copy)


def _archive_with(tmp_path, tiny_bundle_dir, *, model=None, order=(MANIFEST_FILE, MODEL_FILE, ITEMS_FILE)):
    members = []
    for name in order:
        data = model if name == MODEL_FILE and model is not None else (tiny_bundle_dir / name).read_bytes()
        info = tarfile.TarInfo(f"bundle/{name}")
        info.size = len(data)
        members.append((info, data))
    return _tar_gz(tmp_path / "b.tar.gz", members)


def test_archive_member_larger_than_the_manifest_is_refused_from_its_header(tiny_bundle_dir, tmp_path):
    model = (tiny_bundle_dir / MODEL_FILE).read_bytes() + b"\0" * (1 << 20)
    archive = _archive_with(tmp_path, tiny_bundle_dir, model=model)
    with pytest.raises(BundleError, match=r"model\.tflite' is \d+ bytes, the manifest says \d+; "
                                          "refusing to read it"):
        verify_bundle(archive)
    archive = _archive_with(tmp_path, tiny_bundle_dir, model=model,
                            order=(MODEL_FILE, ITEMS_FILE, MANIFEST_FILE))
    cap = (tiny_bundle_dir / MANIFEST_FILE).stat().st_size
    with pytest.raises(BundleError, match=rf"model\.tflite' is \d+ bytes, the reader's limit is {cap}"):
        verify_bundle(archive, max_file_bytes=cap)
    with pytest.raises(BundleError, match=r"model\.tflite: size is"):
        verify_bundle(archive)  # manifest last: checked after reading, still within the cap


def test_written_archives_put_the_manifest_first(tiny_bundle_dir, tmp_path):
    archive = archive_bundle(tiny_bundle_dir, tmp_path / "a.tar.gz")
    with tarfile.open(archive) as handle:
        assert handle.getnames()[0].endswith(MANIFEST_FILE)


@pytest.mark.parametrize("damage", ["flip", "truncate", "not-gzip", "empty"])
def test_corrupted_archives_are_bundle_errors(tiny_bundle_dir, tmp_path, damage):
    data = bytearray(archive_bundle(tiny_bundle_dir, tmp_path / "a.tar.gz").read_bytes())
    if damage == "flip":
        for position in range(20, len(data) - 20, 97):
            data[position] ^= 0x5A
    elif damage == "truncate":
        data = data[: len(data) // 2]
    elif damage == "not-gzip":
        data = bytearray(b"plain text, not an archive" * 10)
    else:
        data = bytearray()
    (tmp_path / "a.tar.gz").write_bytes(bytes(data))
    with pytest.raises(BundleError, match=r"a\.tar\.gz"):
        verify_bundle(tmp_path / "a.tar.gz")


def test_archive_with_foreign_members_is_refused(tiny_bundle_dir, tmp_path):
    members = []
    for name in (MANIFEST_FILE, MODEL_FILE, ITEMS_FILE, "notes.txt"):
        data = b"x" if name == "notes.txt" else (tiny_bundle_dir / name).read_bytes()
        info = tarfile.TarInfo(f"bundle/{name}")
        info.size = len(data)
        members.append((info, data))
    with pytest.raises(BundleError, match="'bundle/notes.txt' is not a bundle file"):
        verify_bundle(_tar_gz(tmp_path / "x.tar.gz", members))


def test_write_bundle_removes_stale_temporary_folders_it_owns(tiny_bundle_dir, tmp_path):
    import os
    import subprocess
    import sys

    from converters.bundle_writer import remove_stale_staging

    tflite = (tiny_bundle_dir / MODEL_FILE).read_bytes()
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                          capture_output=True, text=True, check=True).stdout.strip()
    old = 1_000_000_000  # 2001: before this process started
    stale = [tmp_path / f".bundle.tmp-{dead}-abc", tmp_path / ".bundle.tmp-legacy1"]
    kept = [tmp_path / f".bundle.tmp-{os.getppid()}-xyz",  # its build process is still running
            tmp_path / ".other.tmp-123-abc",  # another bundle's
            tmp_path / ".bundle.old-1234abcd"]  # the bundle does not exist yet: may hold the old one
    for folder in stale + kept:
        folder.mkdir()
        (folder / MODEL_FILE).write_bytes(b"partial")
        os.utime(folder, (old, old))
    fresh = tmp_path / f".bundle.tmp-{dead}-new"  # newer than this process: not touched
    fresh.mkdir()
    _write(tmp_path / "bundle", tflite)
    names = sorted(p.name for p in tmp_path.iterdir())
    assert names == sorted(["bundle", fresh.name] + [k.name for k in kept])
    os.utime(kept[2], (old, old))
    assert remove_stale_staging(tmp_path / "bundle") == [kept[2]]  # bundle exists now


def _verify_in_child(path) -> tuple[str, float]:
    """(error message, peak RSS in MiB) of ``verify_bundle(path)`` in a fresh process, so that the
    peak reflects this bundle only (about 35 MiB is the interpreter and numpy)."""
    import subprocess
    import sys

    from conftest import REPO_ROOT

    if not Path("/proc/self/status").exists():
        pytest.skip("needs /proc/self/status (VmHWM) to measure this process's own peak")
    # VmHWM, not ru_maxrss: ru_maxrss carries the forking parent's peak (pytest with TensorFlow)
    code = ("import json, sys\n"
            "from device_runtime.bundle import BundleError, verify_bundle\n"
            "try:\n    verify_bundle(sys.argv[1]); message = ''\n"
            "except BundleError as exc:\n    message = str(exc)\n"
            "hwm = [l for l in open('/proc/self/status') if l.startswith('VmHWM:')][0]\n"
            "print(json.dumps([message, int(hwm.split()[1]) / 1024]))")
    proc = subprocess.run([sys.executable, "-c", code, str(path)], capture_output=True, text=True,
                          timeout=120, env={"PYTHONPATH": str(REPO_ROOT), "PATH": "/usr/bin:/bin"})
    assert proc.returncode == 0, proc.stderr
    message, peak = json.loads(proc.stdout)
    return message, peak


def test_huge_directory_file_is_refused_after_reading_only_its_manifest_size(bundle_copy):
    size = (bundle_copy / MODEL_FILE).stat().st_size
    with open(bundle_copy / MODEL_FILE, "r+b") as handle:
        handle.truncate(3 << 30)  # a sparse 3 GiB file: cheap on disk, fatal if read whole
    message, peak_mib = _verify_in_child(bundle_copy)
    assert f"larger than expected (the manifest says {size} bytes" in message
    assert peak_mib < 128  # a full read would need 3 GiB


@pytest.mark.parametrize("kind", [tarfile.GNUTYPE_LONGNAME, tarfile.XHDTYPE])
def test_oversized_tar_metadata_is_refused_before_it_is_read(tmp_path, kind):
    import gzip

    size = 100 << 20  # a 100 MiB long name / PAX record: tarfile would read it whole
    header = tarfile.TarInfo("././@LongLink")
    header.type, header.size = kind, size
    path = tmp_path / "evil.tar.gz"
    with gzip.open(path, "wb", compresslevel=1) as out:
        out.write(header.tobuf(tarfile.GNU_FORMAT))
        chunk = b"a" * (1 << 20)
        for _ in range(size // len(chunk)):
            out.write(chunk)
    message, peak_mib = _verify_in_child(path)
    assert "evil.tar.gz: a tar metadata record" in message and "of 104857600 bytes" in message
    assert peak_mib < 128  # reading the record would need 100 MiB more
