"""Hostile inputs for property tests and ``make fuzz``: mutated bundles and HTTP request bodies.

One home for the mutations and for judging an outcome, shared by ``tests/test_bundle_fuzz.py``,
``tests/test_http_fuzz.py`` (a few hundred cases in the normal test run) and
``benchmarks/fuzz.py`` (the long run). A mutation is drawn with Hypothesis' ``st.data()``:

- ``model``: bytes of model.tflite flipped, overwritten with boundary integers, truncated or
  extended, then re-hashed into a re-signed manifest (so only the model's content is hostile);
- ``manifest-field``: a value anywhere in manifest.json replaced (JSON of any type, NaN,
  Infinity, huge integers, deep nesting), deleted or added, usually re-signed;
- ``manifest-bytes``: raw bytes of manifest.json flipped/inserted/truncated, a BOM, UTF-16;
- ``items``: lines of items.tsv replaced, swapped, repeated, dropped; re-hashed and re-signed;
- ``archive``: a ``.tar.gz`` of the bundle with gzip bytes damaged, or with hostile members
  (links, devices, folders, ``..``, absolute names, duplicates, oversized headers).

:func:`bundle_outcome` loads the result as the device would (``verify_bundle``, the
``Recommender``, one ``recommend``) and names the outcome: ``valid``, ``refused: ...`` for the
documented error types, and ``ESCAPED ...`` / ``INVALID ...`` for anything else.
"""

from __future__ import annotations

import io
import json
import math
import shutil
import struct
import tarfile
from pathlib import Path
from typing import Any

from hypothesis import strategies as st

from device_runtime.bundle import (
    ITEMS_FILE,
    MANIFEST_FILE,
    MODEL_FILE,
    BundleError,
    build_archive,
    bytes_digest,
    manifest_digest,
    verify_bundle,
)
from device_runtime.interpreter import ModelFormatError
from device_runtime.recommender import Recommender

MUTATION_KINDS = ("model", "manifest-field", "manifest-bytes", "items", "archive")
TYPED_BUNDLE_ERRORS = (BundleError, ModelFormatError)
# ints that break offsets, sizes and counts in a flatbuffer
BOUNDARY_INTS = (0, 1, 2, 3, 7, 8, 0x7F, 0x80, 0xFF, 0x7FFF, 0xFFFF, 0x7FFFFFFF, 0x80000000,
                 0xFFFFFFFF, 0xFFFFFFFE)

json_scalars = (st.none() | st.booleans() | st.integers(-(2**70), 2**70)
                | st.floats(allow_nan=True, allow_infinity=True) | st.text(max_size=12)
                | st.sampled_from(["<pad>", "<oov>", "model.tflite", "../x", "", "\x00", "\ufeff"]))
json_values = st.recursive(json_scalars, lambda children: st.lists(children, max_size=3)
                           | st.dictionaries(st.text(max_size=6), children, max_size=3),
                           max_leaves=8)
deep_nesting = st.integers(20, 3000).map(lambda depth: _nested(depth))


def _nested(depth: int) -> Any:
    value: Any = []
    for _ in range(depth):
        value = [value]
    return value


def _resign(files: dict[str, bytes], *names: str) -> None:
    """Put the size and SHA-256 of ``names`` into the manifest and re-sign it."""
    manifest = json.loads(files[MANIFEST_FILE])
    for name in names:
        record = bytes_digest(files[name])
        manifest["files"][name] = {"sha256": record.sha256, "size": record.size}
    manifest["manifest_sha256"] = manifest_digest(manifest)
    files[MANIFEST_FILE] = json.dumps(manifest, indent=2).encode("utf-8")


def _mutate_bytes(draw, data: bytes, steps: int) -> bytes:
    buf = bytearray(data)
    for _ in range(steps):
        op = draw(st.sampled_from(["flip", "set", "int32", "truncate", "insert", "delete"]))
        position = draw(st.integers(0, max(0, len(buf) - 1)))
        if op == "flip" and buf:
            buf[position] ^= 1 << draw(st.integers(0, 7))
        elif op == "set" and buf:
            buf[position] = draw(st.integers(0, 255))
        elif op == "int32" and len(buf) >= 4:
            aligned = min(position - position % 4, len(buf) - 4)
            buf[aligned:aligned + 4] = struct.pack("<I", draw(st.sampled_from(BOUNDARY_INTS)))
        elif op == "truncate":
            del buf[position:]
        elif op == "insert":
            buf[position:position] = draw(st.binary(min_size=1, max_size=16))
        elif op == "delete":
            del buf[position:position + draw(st.integers(1, 16))]
    return bytes(buf)


def _json_paths(value: Any, prefix: tuple = ()) -> list[tuple]:
    """Every path (tuple of keys / indices) to a value inside ``value``, the root excluded."""
    paths = []
    items = value.items() if isinstance(value, dict) else enumerate(value) if isinstance(value, list) else ()
    for key, child in items:
        paths.append(prefix + (key,))
        if len(paths) < 400:
            paths.extend(_json_paths(child, prefix + (key,)))
    return paths


def _mutate_manifest_field(draw, files: dict[str, bytes]) -> str:
    manifest = json.loads(files[MANIFEST_FILE])
    path = draw(st.sampled_from(_json_paths(manifest)))
    parent = manifest
    for key in path[:-1]:
        parent = parent[key]
    key = path[-1]
    op = draw(st.sampled_from(["replace", "replace", "replace", "delete", "add", "deep"]))
    if op == "delete":
        del parent[key]
    elif op == "add" and isinstance(parent, dict):
        parent[draw(st.text(max_size=8))] = draw(json_values)
    elif op == "add":
        parent.insert(key, draw(json_values))
    elif op == "deep":
        parent[key] = draw(deep_nesting)
    else:
        parent[key] = draw(json_values)
    if draw(st.integers(0, 9)) > 0:  # usually re-signed, so the field checks are reached
        try:
            manifest["manifest_sha256"] = manifest_digest(manifest)
        except (ValueError, RecursionError):  # NaN or deep nesting: cannot be signed
            pass
    try:
        files[MANIFEST_FILE] = json.dumps(manifest, indent=2).encode("utf-8")
    except RecursionError:
        files[MANIFEST_FILE] = (b"[" * 5000) + (b"]" * 5000)
    return f"manifest-field {op} {'.'.join(map(str, path))[:60]}"


def _mutate_items(draw, files: dict[str, bytes]) -> str:
    lines = files[ITEMS_FILE].decode("utf-8").split("\n")
    op = draw(st.sampled_from(["id", "title", "swap", "repeat", "drop", "index", "bom", "crlf"]))
    row = draw(st.integers(1, max(1, len(lines) - 2)))
    parts = lines[row].split("\t")
    if op == "id" and len(parts) == 3:
        parts[1] = draw(st.text(max_size=10) | st.sampled_from(["<pad>", "<oov>", " x", "a\x00b"]))
    elif op == "title" and len(parts) == 3:
        parts[2] = draw(st.text(max_size=20))
    elif op == "index" and len(parts) == 3:
        parts[0] = draw(st.sampled_from(["0", "1", "-1", "99999", "2.0", " 2", "x"]))
    lines[row] = "\t".join(parts)
    if op == "swap":
        other = draw(st.integers(1, max(1, len(lines) - 2)))
        lines[row], lines[other] = lines[other], lines[row]
    elif op == "repeat":
        lines.insert(row, lines[row])
    elif op == "drop":
        del lines[row]
    text = "\n".join(lines)
    if op == "bom":
        text = "\ufeff" + text
    elif op == "crlf":
        text = text.replace("\n", "\r\n")
    files[ITEMS_FILE] = text.encode("utf-8", "surrogatepass")
    _resign(files, ITEMS_FILE)
    return f"items {op}"


def _hostile_member(draw, files: dict[str, bytes]) -> tuple[tarfile.TarInfo, bytes | None]:
    kind = draw(st.sampled_from(["symlink", "hardlink", "dir", "fifo", "chardev", "dotdot",
                                 "absolute", "duplicate", "foreign", "nested", "big-header"]))
    name = draw(st.sampled_from([MODEL_FILE, ITEMS_FILE, MANIFEST_FILE]))
    info = tarfile.TarInfo(f"bundle/{name}")
    data: bytes | None = None
    if kind == "symlink":
        info.type, info.linkname = tarfile.SYMTYPE, "/etc/passwd"
    elif kind == "hardlink":
        info.type, info.linkname = tarfile.LNKTYPE, f"bundle/{MODEL_FILE}"
    elif kind == "dir":
        info.type, info.name = tarfile.DIRTYPE, "bundle/sub"
    elif kind == "fifo":
        info.type = tarfile.FIFOTYPE
    elif kind == "chardev":
        info.type = tarfile.CHRTYPE
    elif kind in ("dotdot", "absolute", "foreign", "nested"):
        info.name = {"dotdot": f"../{name}", "absolute": f"/tmp/{name}", "foreign": "bundle/x.bin",
                     "nested": f"bundle/a/{name}"}[kind]
        data = b"x"
    elif kind == "duplicate":
        data = files[name]
    else:  # a header that claims a huge member; the data is short, so the stream ends early
        data = b"x" * 10
    if data is not None:
        info.size = len(data)
    if kind == "big-header":
        info.size = 3 << 30
    return info, data


def _archive(draw, files: dict[str, bytes]) -> tuple[bytes, str]:
    order = draw(st.permutations([MANIFEST_FILE, MODEL_FILE, ITEMS_FILE]))
    members = [(f"bundle/{name}", files[name]) for name in order]
    op = draw(st.sampled_from(["gzip-bytes", "tar-bytes", "member", "member", "order"]))
    if op == "member":
        info, data = _hostile_member(draw, files)
        raw = io.BytesIO()
        with tarfile.open(fileobj=raw, mode="w", format=tarfile.GNU_FORMAT) as archive:
            position = draw(st.integers(0, len(members)))
            entries: list[tuple[tarfile.TarInfo, bytes | None]] = []
            for member_name, member_data in members:
                member = tarfile.TarInfo(member_name)
                member.size = len(member_data)
                entries.append((member, member_data))
            entries.insert(position, (info, data))
            for member, member_data in entries:
                if member.size > (len(member_data) if member_data is not None else 0):
                    archive.fileobj.write(member.tobuf(archive.format, archive.encoding, archive.errors))
                    archive.fileobj.write(member_data or b"")
                    break  # the stream is cut short: the claimed size never arrives
                archive.addfile(member, io.BytesIO(member_data) if member_data is not None else None)
        import gzip

        return gzip.compress(raw.getvalue(), mtime=0), f"archive member {info.name} type {info.type!r}"
    data = build_archive(members)
    if op == "gzip-bytes":
        return _mutate_bytes(draw, data, draw(st.integers(1, 4))), "archive gzip-bytes"
    if op == "tar-bytes":
        import gzip

        raw = gzip.decompress(data)
        return gzip.compress(_mutate_bytes(draw, raw, draw(st.integers(1, 4))), mtime=0), \
            "archive tar-bytes"
    return data, f"archive order {'/'.join(order)}"


def draw_mutation(draw, base: dict[str, bytes], kind: str | None = None
                  ) -> tuple[str, dict[str, bytes] | bytes]:
    """(description, mutated bundle): a dict of bundle files for a directory, or the bytes of a
    ``.tar.gz``. ``kind`` forces one of :data:`MUTATION_KINDS`."""
    files = dict(base)
    kind = kind or draw(st.sampled_from(MUTATION_KINDS))
    if kind == "model":
        steps = draw(st.integers(1, 6))
        files[MODEL_FILE] = _mutate_bytes(draw, files[MODEL_FILE], steps)
        _resign(files, MODEL_FILE)
        return f"model {steps} byte edits, re-hashed", files
    if kind == "manifest-field":
        return _mutate_manifest_field(draw, files), files
    if kind == "manifest-bytes":
        encoding = draw(st.sampled_from(["bytes", "bytes", "bom", "utf-16", "latin-1"]))
        if encoding == "bytes":
            files[MANIFEST_FILE] = _mutate_bytes(draw, files[MANIFEST_FILE], draw(st.integers(1, 4)))
        elif encoding == "bom":
            files[MANIFEST_FILE] = b"\xef\xbb\xbf" + files[MANIFEST_FILE]
        else:
            text = files[MANIFEST_FILE].decode("utf-8").replace("float32", "fl\u00f6at32")
            files[MANIFEST_FILE] = text.encode(encoding)
        return f"manifest-bytes {encoding}", files
    if kind == "items":
        return _mutate_items(draw, files), files
    return _archive(draw, files)[::-1]


def read_base(bundle_dir: Path) -> dict[str, bytes]:
    """The three files of a good bundle directory."""
    return {name: (bundle_dir / name).read_bytes() for name in (MODEL_FILE, ITEMS_FILE, MANIFEST_FILE)}


def write_case(workdir: Path, bundle: dict[str, bytes] | bytes) -> Path:
    """Write a mutated bundle under ``workdir`` (replacing the previous case) and return its path."""
    shutil.rmtree(workdir, ignore_errors=True)
    workdir.mkdir(parents=True)
    if isinstance(bundle, bytes):
        path = workdir / "bundle.tar.gz"
        path.write_bytes(bundle)
        return path
    path = workdir / "bundle"
    path.mkdir()
    for name, data in bundle.items():
        (path / name).write_bytes(data)
    return path


def bundle_outcome(path: Path, history: list[str]) -> str:
    """How the device fares with the bundle at ``path``: ``valid``, ``refused: <stage> <Error>``,
    or ``ESCAPED <stage> <Error>`` / ``INVALID ...`` (bugs)."""
    try:
        bundle = verify_bundle(path)
    except BundleError:
        return "refused: verify_bundle BundleError"
    except Exception as exc:  # noqa: BLE001 - classifying every escape is the point
        return f"ESCAPED verify_bundle {type(exc).__name__}: {str(exc)[:120]}"
    try:
        recommender = Recommender(bundle)
    except TYPED_BUNDLE_ERRORS as exc:
        return f"refused: load {type(exc).__name__}"
    except Exception as exc:  # noqa: BLE001
        return f"ESCAPED load {type(exc).__name__}: {str(exc)[:120]}"
    try:
        result = recommender.recommend(history, k=5)
    except TYPED_BUNDLE_ERRORS as exc:
        return f"refused: recommend {type(exc).__name__}"
    except Exception as exc:  # noqa: BLE001
        return f"ESCAPED recommend {type(exc).__name__}: {str(exc)[:120]}"
    catalog = set(bundle.item_ids[2:])
    if not all(r.item_id in catalog and math.isfinite(r.score) for r in result):
        return "INVALID result (id outside the catalog or non-finite score)"
    return "valid"


def is_failure(outcome: str) -> bool:
    """True for outcomes that are bugs (an untyped error or an invalid answer)."""
    return outcome.startswith(("ESCAPED", "INVALID"))


# ---- HTTP bodies ------------------------------------------------------------------------------

ids = st.one_of(st.integers(-(2**70), 2**70), st.text(max_size=300), json_values,
                st.sampled_from(["1003", "1007", 1010, "<pad>", "<oov>", "", "\x00"]))
recommend_bodies = st.fixed_dictionaries(
    {}, optional={"history": st.lists(ids, max_size=12) | json_values,
                  "k": st.integers(-5, 40) | st.integers(-(2**70), 2**70) | json_values,
                  "exclude": st.lists(ids, max_size=5) | json_values,
                  "exclude_seen": st.booleans() | json_values,
                  "extra": json_values})


# mostly valid requests for the tiny test catalog (ids "1000".."1029"), so that 200s are judged too
catalog_ids = st.integers(1000, 1029) | st.integers(1000, 1029).map(str) | st.sampled_from(["zz", "", "1"])
plausible_bodies = st.fixed_dictionaries(
    {"history": st.lists(catalog_ids, max_size=12)},
    optional={"k": st.integers(-2, 40), "exclude": st.lists(catalog_ids, max_size=6),
              "exclude_seen": st.booleans()})


def _encode(value: Any) -> bytes:
    try:
        return json.dumps(value).encode("utf-8")  # NaN / Infinity written as the JS literals
    except RecursionError:
        return b"[" * 5000 + b"]" * 5000


http_bodies = st.one_of(
    plausible_bodies.map(_encode),
    recommend_bodies.map(_encode),
    json_values.map(_encode),
    deep_nesting.map(_encode),
    st.binary(max_size=200),
    st.text(max_size=200).map(lambda t: t.encode("utf-8", "surrogatepass")),
)


def http_outcome(status: int, content_type: str | None, body: bytes, *, served_ok: bool = True) -> str:
    """Judge one ``/recommend`` answer: ``200``/``4xx`` with a JSON body are fine; a 5xx, a body
    that is not JSON or a 200 whose scores are not finite numbers are bugs."""
    if content_type != "application/json":
        return f"INVALID {status} with Content-Type {content_type}"
    try:
        payload = json.loads(body, parse_constant=lambda c: (_ for _ in ()).throw(ValueError(c)))
    except ValueError:
        return f"INVALID {status} body is not strict JSON"
    if status == 200:
        scores = [item.get("score") for item in payload.get("items", [])]
        if not all(isinstance(s, int | float) and math.isfinite(s) for s in scores):
            return "INVALID 200 with non-finite scores"
        return "200"
    if 400 <= status < 500 and payload.get("status") == status and payload.get("error"):
        return f"{status}"
    return f"ESCAPED {status}: {str(payload)[:120]}"


# ---- raw requests: request line, headers and body as bytes -------------------------------------

_methods = st.sampled_from(["GET", "POST", "HEAD", "OPTIONS", "PUT", "DELETE", "PATCH", "BREW",
                            "get", "", "P\x00ST", "GET GET"])
_paths = st.sampled_from(["/recommend", "/health", "/reload", "/", "*", "/health?x=1", "//recommend",
                          "/%00", "/recommend/../health", "http://x/health", "/\u00e9"]) \
    | st.text(max_size=30).map(lambda t: "/" + t)
_versions = st.sampled_from(["HTTP/1.1", "HTTP/1.0", "HTTP/0.9", "HTTP/2.0", "HTTP/1.1x", "", "http/1.1",
                             "HTTP/1.01", "HTTP/9999999999999999999.1"])
_header_values = st.sampled_from(["0", "5", "-1", "abc", "99999999999999999999", " 3", "", "chunked",
                                  "100-continue", "close", "keep-alive", "Bearer x"]) | st.text(max_size=20)
_header_names = st.sampled_from(["Content-Length", "Transfer-Encoding", "Expect", "Connection",
                                 "Authorization", "Content-Type", "Host", "X-Junk", "Content-Length "])
raw_requests = st.builds(
    lambda method, path, version, headers, body, sep: (
        f"{method} {path} {version}".strip().encode("utf-8", "surrogatepass") + sep
        + b"".join(f"{k}: {v}".encode("utf-8", "surrogatepass") + sep for k, v in headers)
        + sep + body),
    _methods, _paths, _versions, st.lists(st.tuples(_header_names, _header_values), max_size=5),
    http_bodies, st.sampled_from([b"\r\n", b"\r\n", b"\n"]))


def raw_outcome(answer: bytes, *, head: bool = False) -> str:
    """Judge everything a server sent back for one raw request (read until it closed): every
    response needs a status line and Content-Length, every error a JSON body, no 5xx. ``head``:
    the first request was a HEAD (its answer has a Content-Length but no body)."""
    if not answer:
        return "no response"
    statuses: list[int] = []
    while answer:
        block, sep, rest = answer.partition(b"\r\n\r\n")
        if not sep:
            return f"INVALID truncated response head {block[:80]!r}"
        lines = block.decode("latin-1").split("\r\n")
        parts = lines[0].split(" ", 2)
        if len(parts) < 2 or not parts[0].startswith("HTTP/1.") or not parts[1].isdigit():
            return f"INVALID status line {lines[0][:80]!r}"
        status = int(parts[1])
        headers = {}
        for line in lines[1:]:
            name, _, value = line.partition(":")
            headers[name.strip().lower()] = value.strip()
        if 100 <= status < 200:
            statuses.append(status)
            answer = rest
            continue
        if "content-length" not in headers or not headers["content-length"].isdigit():
            return f"INVALID {status} without Content-Length"
        # the answer to a HEAD has no body, unless the request was too broken to be seen as one
        bodiless = head and not [s for s in statuses if s >= 200] \
            and (not rest or rest.startswith(b"HTTP/1."))
        length = 0 if bodiless else int(headers["content-length"])
        body, answer = rest[:length], rest[length:]
        if bodiless:
            if status >= 400 and headers.get("content-type") != "application/json":
                return f"INVALID {status} with Content-Type {headers.get('content-type')}"
        elif status >= 400:
            # 505 (HTTP version not supported) is the protocol's own answer to HTTP/0.x or 2.x
            judged = http_outcome(400 if status == 505 else status, headers.get("content-type"),
                                  body.replace(b'"status": 505', b'"status": 400'))
            if is_failure(judged):
                return judged
        statuses.append(status)
    return "/".join(map(str, statuses))


def raw_exchange(address: tuple[str, int], request: bytes, timeout: float = 10.0) -> bytes:
    """Send ``request`` on a new connection, close our sending side, return all the answer."""
    import socket

    with socket.create_connection(address, timeout=timeout) as sock:
        try:
            sock.sendall(request)
            sock.shutdown(socket.SHUT_WR)
        except OSError:  # the server may answer and close before reading everything
            pass
        chunks = []
        try:
            while chunk := sock.recv(65536):
                chunks.append(chunk)
        except ConnectionResetError:
            pass
    return b"".join(chunks)
