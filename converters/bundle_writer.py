"""Write a verified edge-rec bundle from TFLite bytes, a vocabulary and build facts.

Works from bytes only and does not import TensorFlow: the serving signature is read through
:mod:`device_runtime.interpreter`, the format comes from :mod:`device_runtime.bundle`.
"""

from __future__ import annotations

import glob
import logging
import math
import os
import shutil
import stat
import tempfile
import time
import uuid
from collections.abc import Mapping, Sequence
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from device_runtime.atomic_file import write_bytes_atomic
from device_runtime.bundle import (
    ITEMS_FILE,
    MANIFEST_FILE,
    MODEL_FILE,
    SIGNATURE_KEY,
    BundleError,
    Manifest,
    ModelSection,
    TensorSpec,
    archive_members,
    build_archive,
    bytes_digest,
    format_items_tsv,
    serving_signature,
    verify_bundle,
)
from device_runtime.interpreter import describe_model

logger = logging.getLogger(__name__)
# Temporary folders older than this were not created by this process (see remove_stale_staging).
_WRITER_LOADED_AT = time.time()


def _json_ready(value: Any, where: str) -> Any:
    """numpy scalars/arrays -> Python; non-finite floats and other types are refused."""
    if isinstance(value, Mapping):
        return {str(k): _json_ready(v, f"{where}.{k}") for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_json_ready(v, f"{where}[{i}]") for i, v in enumerate(value)]
    if hasattr(value, "tolist") and not isinstance(value, str | bytes):
        return _json_ready(value.tolist(), where)
    if isinstance(value, float) and not math.isfinite(value):
        raise BundleError(f"{where} is {value}; bundle metadata must be finite numbers")
    if value is None or isinstance(value, str | bool | int | float):
        return value
    raise BundleError(f"{where} is a {type(value).__name__}; bundle metadata must be JSON "
                      "(dict, list, str, number, bool, null)")


def _signature_specs(tflite_bytes: bytes, history_length: int, top_k: int
                     ) -> tuple[tuple[TensorSpec, ...], tuple[TensorSpec, ...]]:
    description = describe_model(tflite_bytes, source="tflite_bytes")
    signature = description.signatures.get(SIGNATURE_KEY)
    if signature is None:
        raise BundleError(f"tflite_bytes: the model has no {SIGNATURE_KEY!r} signature (has "
                          f"{sorted(description.signatures)}); convert with converters.tflite")
    inputs = tuple(TensorSpec(n, s, d) for n, (s, d, _) in signature.inputs.items())
    outputs = tuple(TensorSpec(n, s, d) for n, (s, d, _) in signature.outputs.items())
    expected_in, expected_out = serving_signature(history_length, top_k)
    if inputs != expected_in or set(outputs) != set(expected_out):
        raise BundleError(
            f"tflite_bytes: signature {SIGNATURE_KEY!r} has inputs {[s.to_dict() for s in inputs]} "
            f"and outputs {[s.to_dict() for s in outputs]}; expected history int32[1,{history_length}] "
            f"-> top_ids int32[1,{top_k}], top_scores float32[1,{top_k}] (history_length and top_k "
            "must match the model)")
    return expected_in, expected_out


def write_bundle(out_dir: str | Path, *, tflite_bytes: bytes, vocabulary_ids: Sequence[str],
                 titles: Sequence[str] | None, history_length: int, top_k: int,
                 quantization: Mapping[str, Any], popularity_order: Sequence[int],
                 metrics: Mapping[str, Any], build_info: Mapping[str, Any]) -> Path:
    """Write a complete, verified bundle to ``out_dir`` and return its path.

    ``vocabulary_ids`` is ``Vocabulary.ids`` (index 0 ``<pad>``, 1 ``<oov>``); ``titles`` has one
    entry per id (or is None). ``popularity_order`` lists item indices (2..C-1), most popular
    first. The model's ``serving_default`` signature must be ``history`` int32[1, history_length]
    -> ``top_ids`` int32[1, top_k], ``top_scores`` float32[1, top_k].

    Atomic: files go to a temporary sibling directory that is verified with
    :func:`device_runtime.bundle.verify_bundle` and then renamed to ``out_dir``; an existing bundle
    there is replaced only after the new one is complete. Temporary folders that killed builds
    left next to ``out_dir`` are removed first (:func:`remove_stale_staging`). Raises
    :class:`BundleError` for bad input.
    """
    out_dir = Path(out_dir)
    ids = list(vocabulary_ids)
    if len(ids) < 3:
        raise BundleError(f"vocabulary_ids has {len(ids)} entries; expected <pad>, <oov> and at "
                          "least one item")
    item_titles = [""] * len(ids) if titles is None else [str(t or "") for t in titles]
    items_tsv = format_items_tsv(ids, item_titles).encode("utf-8")
    catalog_size = len(ids)
    popularity = [int(i) for i in popularity_order]
    inputs, outputs = _signature_specs(bytes(tflite_bytes), history_length, top_k)
    model_record = bytes_digest(bytes(tflite_bytes))
    items_record = bytes_digest(items_tsv)
    manifest = Manifest(
        model=ModelSection(file=MODEL_FILE, signature_key=SIGNATURE_KEY, inputs=inputs,
                           outputs=outputs, quantization=_json_ready(quantization, "quantization")),
        history_length=history_length,
        catalog_size=catalog_size,
        top_k=top_k,
        popularity=tuple(popularity),
        files={MODEL_FILE: model_record, ITEMS_FILE: items_record},
        created_at=datetime.now(timezone.utc).replace(microsecond=0).isoformat(),
        metrics=_json_ready(metrics, "metrics"),
        build=_json_ready(build_info, "build_info"),
    )
    # validate the manifest exactly as a reader will (field ranges, popularity, digest)
    manifest_json = manifest.to_json()
    Manifest.from_json(manifest_json, source="write_bundle manifest")

    out_dir.parent.mkdir(parents=True, exist_ok=True)
    remove_stale_staging(out_dir)
    staging = Path(tempfile.mkdtemp(prefix=f"{_staging_prefix(out_dir)}{os.getpid()}-",
                                    dir=out_dir.parent))
    try:
        write_bytes_atomic(staging / MODEL_FILE, bytes(tflite_bytes))
        write_bytes_atomic(staging / ITEMS_FILE, items_tsv)
        write_bytes_atomic(staging / MANIFEST_FILE, manifest_json.encode("utf-8"))
        verify_bundle(staging)
        os.chmod(staging, 0o755)
        _swap_into_place(staging, out_dir)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return out_dir


def _staging_prefix(out_dir: Path) -> str:
    return f".{out_dir.name}.tmp-"


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except (PermissionError, OverflowError, ValueError):
        return pid > 0  # exists but belongs to someone else / not a pid at all
    return True


def remove_stale_staging(out_dir: str | Path) -> list[Path]:
    """Delete the temporary folders that interrupted :func:`write_bundle` calls left next to
    ``out_dir`` (``.NAME.tmp-PID-*``, and ``.NAME.old-*`` once ``out_dir`` exists again).

    Only folders this writer owns are touched: created before this process imported the writer
    (so never one it is writing now), and whose build process (the PID in the name) is no longer
    running. Symlinks and files are left alone. Returns the removed paths.
    """
    out_dir = Path(out_dir)
    parent = out_dir.parent
    if not parent.is_dir():
        return []
    removed: list[Path] = []
    prefix = _staging_prefix(out_dir)
    candidates = [(c, True) for c in parent.glob(f"{glob.escape(prefix)}*")]
    if out_dir.is_dir() and not out_dir.is_symlink():  # a retired bundle is only garbage then
        candidates += [(c, False) for c in parent.glob(f"{glob.escape(f'.{out_dir.name}.old-')}*")]
    for candidate, is_staging in candidates:
        try:
            info = candidate.lstat()
        except FileNotFoundError:
            continue
        if not stat.S_ISDIR(info.st_mode) or info.st_mtime >= _WRITER_LOADED_AT:
            continue
        if is_staging:
            pid_text = candidate.name[len(prefix):].split("-", 1)[0]
            if pid_text.isdigit() and int(pid_text) != os.getpid() and _pid_alive(int(pid_text)):
                continue  # another build is writing it right now
        shutil.rmtree(candidate, ignore_errors=True)
        logger.info("removed %s, left behind by an interrupted build", candidate)
        removed.append(candidate)
    return removed


def _swap_into_place(staging: Path, out_dir: Path) -> None:
    """Rename ``staging`` to ``out_dir``; an existing ``out_dir`` is moved aside first and deleted
    after, or restored if the rename fails."""
    if not out_dir.exists():
        os.replace(staging, out_dir)
        return
    if not out_dir.is_dir():
        raise BundleError(f"{out_dir} exists and is not a directory; remove it or choose another --out")
    retired = out_dir.with_name(f".{out_dir.name}.old-{uuid.uuid4().hex[:8]}")
    os.replace(out_dir, retired)
    try:
        os.replace(staging, out_dir)
    except BaseException:
        os.replace(retired, out_dir)
        raise
    shutil.rmtree(retired, ignore_errors=True)


def archive_bundle(bundle_dir: str | Path, out_path: str | Path | None = None) -> Path:
    """Pack a bundle directory into a reproducible ``.tar.gz`` (members under ``<dir name>/``).

    Defaults to ``<bundle_dir>.tar.gz`` next to the directory. The directory is verified first and
    the archive is written atomically. Returns the archive path.
    """
    bundle_dir = Path(bundle_dir)
    verify_bundle(bundle_dir)
    target = Path(out_path) if out_path is not None else bundle_dir.with_name(bundle_dir.name + ".tar.gz")
    write_bytes_atomic(target, build_archive(archive_members(bundle_dir)))
    return target

