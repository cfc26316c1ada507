"""The bundle format: writing, verification, tampering, archives, atomic replacement."""

from __future__ import annotations

import hashlib
import io
import json
import tarfile

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
    file_digest,
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
        assert manifest.files[name] == file_digest(tiny_bundle_dir / name)
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


def test_newer_schema_version_is_refused_with_a_hint(bundle_copy):
    rewrite_manifest(bundle_copy, lambda m: m.update(schema_version=SCHEMA_VERSION + 1))
    with pytest.raises(BundleError, match="schema_version 2 is not supported.*upgrade edge-rec"):
        verify_bundle(bundle_copy)


def test_items_table_must_match_catalog_size(bundle_copy):
    lines = (bundle_copy / ITEMS_FILE).read_text().splitlines()
    (bundle_copy / ITEMS_FILE).write_text("\n".join(lines[:-1]) + "\n")
    record = file_digest(bundle_copy / ITEMS_FILE)
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
