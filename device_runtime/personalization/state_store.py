"""Per-user heads on the device's disk: one small JSON file per user in the folder the app
chooses, saved atomically, never inside a bundle.

    STATE_DIR/<sha256(user)[:40]>.json   {"format", "version", "user_sha256", "mass", "events",
                                          "ids": [item_id, ...], "values_e6": [round(value * 1e6), ...]}

- Items are stored by **external id**, so a state survives a new bundle: read against another
  catalog, ids it no longer has are dropped and the rest map to their new indices.
- A file is at most :data:`MAX_STATE_BYTES` (the head keeps fewer entries when ids are long).
- A corrupt, foreign (another user's), oversized or incompatible (another head version) file is
  renamed ``<name>.set-aside-<unix time>`` with the reason logged (:class:`StateFileError`
  inside); that user starts fresh and serving goes on.
- :meth:`UserStateStore.forget` deletes the user's file, set-aside copies and cached head.
- File names are hashes: the folder does not list who used the device.
"""

from __future__ import annotations

import hashlib
import json
import logging
import threading
import time
from collections import OrderedDict
from pathlib import Path
from typing import Any

import numpy as np

from device_runtime.atomic_file import write_bytes_atomic
from device_runtime.bundle_schema import FIRST_ITEM_INDEX
from device_runtime.item_catalog import ItemCatalog
from device_runtime.personalization.head import PersonalizationConfig, UserHead
from device_runtime.strict_json import parse_strict_json

logger = logging.getLogger(__name__)

STATE_FORMAT = "edge-rec-user-state"
#: Version of the head's math and file layout; a file of another version is reset.
STATE_VERSION = 1
#: Largest state file (and so the most one user can occupy on the disk).
MAX_STATE_BYTES = 64 * 1024
SET_ASIDE_SUFFIX = ".set-aside-"
#: Values are stored as integers in millionths.
VALUE_SCALE = 1e6
MAX_USER_ID_CHARS = 256


class StateFileError(ValueError):
    """A user's state file cannot be used: the message says which file and why."""


def _user_key(user: Any) -> str:
    if isinstance(user, bool) or not isinstance(user, (str, int)):
        raise TypeError(f"user must be a str or int id, got {type(user).__name__}")
    key = str(user)
    if not key or len(key) > MAX_USER_ID_CHARS:
        raise ValueError(f"user id must have 1..{MAX_USER_ID_CHARS} characters, got {len(key)}")
    return key


def _user_digest(user: str) -> str:
    return hashlib.sha256(user.encode("utf-8", "surrogatepass")).hexdigest()


class _Cached:
    __slots__ = ("head", "catalog")

    def __init__(self, head: UserHead, catalog: ItemCatalog) -> None:
        self.head = head
        self.catalog = catalog


class UserStateStore:
    """The heads of the users of one device, on disk in ``folder`` and cached in memory (the most
    recently used ``max_cached_users``). Thread-safe."""

    def __init__(self, folder: str | Path, config: PersonalizationConfig, *,
                 max_cached_users: int = 1024) -> None:
        self.folder = Path(folder)
        self.folder.mkdir(parents=True, exist_ok=True)
        self.config = config
        self.max_cached_users = max_cached_users
        self._cache: OrderedDict[str, _Cached] = OrderedDict()
        self.lock = threading.RLock()
        self.set_aside = 0

    def path_for(self, user: Any) -> Path:
        """The state file of ``user``."""
        return self.folder / f"{_user_digest(_user_key(user))[:40]}.json"

    # ---- reading ----------------------------------------------------------------------------
    def head(self, user: Any, catalog: ItemCatalog) -> UserHead:
        """``user``'s head indexed for ``catalog`` (fresh when the user has none)."""
        key = _user_key(user)
        with self.lock:
            cached = self._cache.get(key)
            if cached is not None:
                self._cache.move_to_end(key)
                if cached.catalog is not catalog:
                    cached.head = _remapped(cached.head, cached.catalog, catalog, self.config)
                    cached.catalog = catalog
                return cached.head
            head = self._read(key, catalog)
            self._cache[key] = _Cached(head, catalog)
            while len(self._cache) > self.max_cached_users:
                self._cache.popitem(last=False)
            return head

    def _read(self, key: str, catalog: ItemCatalog) -> UserHead:
        path = self.path_for(key)
        try:
            return self._parse(path, key, catalog)
        except FileNotFoundError:
            return UserHead()
        except StateFileError as exc:
            aside = path.with_name(f"{path.name}{SET_ASIDE_SUFFIX}{int(time.time())}")
            try:
                path.replace(aside)
            except OSError:
                pass
            self.set_aside += 1
            logger.warning("personal state set aside, the user starts fresh: %s", exc)
            return UserHead()

    def _parse(self, path: Path, key: str, catalog: ItemCatalog) -> UserHead:
        with path.open("rb") as handle:
            data = handle.read(MAX_STATE_BYTES + 1)
        if len(data) > MAX_STATE_BYTES:
            raise StateFileError(f"{path}: larger than {MAX_STATE_BYTES} bytes")
        body = parse_strict_json(data, source=str(path), error=StateFileError)
        if not isinstance(body, dict) or body.get("format") != STATE_FORMAT:
            raise StateFileError(f"{path}: not an edge-rec user state (format {str(body)[:40]!r})")
        if body.get("version") != STATE_VERSION:
            raise StateFileError(f"{path}: state version {body.get('version')!r} is not this "
                                 f"runtime's {STATE_VERSION} (an incompatible head); reset")
        if body.get("user_sha256") != _user_digest(key):
            raise StateFileError(f"{path}: the file belongs to another user")
        mass, events, ids, values = (body.get(key) for key in ("mass", "events", "ids", "values_e6"))
        if not isinstance(mass, (int, float)) or isinstance(mass, bool) or not 0 <= mass < 1e9 \
                or type(events) is not int or events < 0 or not isinstance(ids, list) \
                or not isinstance(values, list) or len(ids) != len(values):
            raise StateFileError(f"{path}: mass, events, ids or values_e6 are missing or out of range")
        if not all(isinstance(item, str) for item in ids) or not all(
                type(value) is int and abs(value) < 1e15 for value in values):
            raise StateFileError(f"{path}: ids must be strings and values_e6 integers")
        return _head_for(ids, [value / VALUE_SCALE for value in values], float(mass), events, catalog,
                         self.config)

    # ---- writing ----------------------------------------------------------------------------
    def save(self, user: Any, head: UserHead, catalog: ItemCatalog) -> Path:
        """Write ``user``'s head atomically (entries kept by ``|value|`` to fit the size cap)."""
        key = _user_key(user)
        order = np.argsort(-np.abs(head.values), kind="stable")
        body = {"format": STATE_FORMAT, "version": STATE_VERSION, "user_sha256": _user_digest(key),
                "mass": round(head.mass, 6), "events": head.events,
                "ids": catalog.ids_at(head.items[order].tolist()) if len(order) else [],
                # integers: json writes them ~5x faster than floats (this runs on every event)
                "values_e6": np.rint(head.values[order].astype(np.float64) * VALUE_SCALE).astype(np.int64).tolist()}
        data = json.dumps(body, separators=(",", ":")).encode("utf-8")
        while len(data) > MAX_STATE_BYTES and body["ids"]:  # long ids: keep the strongest entries
            keep = len(body["ids"]) * 3 // 4
            body["ids"], body["values_e6"] = body["ids"][:keep], body["values_e6"][:keep]
            data = json.dumps(body, separators=(",", ":")).encode("utf-8")
        with self.lock:
            return write_bytes_atomic(self.path_for(key), data)

    def forget(self, user: Any) -> int:
        """Delete every trace of ``user``: the cached head, the state file and set-aside copies.
        Returns how many files were removed."""
        key = _user_key(user)
        with self.lock:
            self._cache.pop(key, None)
            path = self.path_for(key)
            removed = 0
            for candidate in [path, *self.folder.glob(f"{path.name}{SET_ASIDE_SUFFIX}*")]:
                try:
                    candidate.unlink()
                    removed += 1
                except FileNotFoundError:
                    pass
            return removed

    def replace(self, user: Any, head: UserHead, catalog: ItemCatalog) -> None:
        """Make ``head`` (indexed for ``catalog``) ``user``'s cached head."""
        key = _user_key(user)
        with self.lock:
            self._cache[key] = _Cached(head, catalog)
            self._cache.move_to_end(key)

    def cached_users(self) -> int:
        """How many heads are in memory."""
        return len(self._cache)


def _head_for(ids: list[str], values: list[float], mass: float, events: int, catalog: ItemCatalog,
              config: PersonalizationConfig) -> UserHead:
    """A head over ``catalog`` from stored (id, value) pairs: ids it lacks are dropped."""
    indices = catalog.lookup(ids) if ids else []
    kept = [(index, value) for index, value in zip(indices, values)
            if index is not None and index >= FIRST_ITEM_INDEX]
    kept = kept[:config.max_entries]
    if not kept:
        return UserHead(mass=mass if mass > 0 else 0.0, events=events)
    kept.sort()
    items = np.array([index for index, _ in kept], np.int32)
    vals = np.array([value for _, value in kept], np.float32)
    items, first = np.unique(items, return_index=True)
    return UserHead(items, vals[first], mass, events)


def _remapped(head: UserHead, old: ItemCatalog, new: ItemCatalog, config: PersonalizationConfig) -> UserHead:
    """``head`` moved from catalog ``old`` to ``new`` by item id (dropped ids dropped)."""
    return _head_for(old.ids_at(head.items.tolist()), head.values.tolist(), head.mass, head.events,
                     new, config)
