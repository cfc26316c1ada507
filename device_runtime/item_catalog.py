"""The served catalog in a few flat arrays: external id <-> item index, titles read on demand.

A 100,000-item catalog held as Python objects (a tuple of id strings, one of titles, an
id -> index dict) costs about 12 MB of a device's memory. :class:`ItemCatalog` keeps instead the
verified ``items.tsv`` bytes, the byte offsets of every id and title in them, and the sorted
``hash()`` of every id with the index it belongs to (2.4 MB beside the 1.8 MB file for 100,000
items). An id is looked up by a binary search on its hash and confirmed by comparing the text, so
a hash collision never maps an id to another item; strings are built only for the items a call
returns. A catalog of at most :data:`DICT_INDEX_MAX_ITEMS` items keeps a plain id -> index dict
instead: well under a megabyte there, and a dict lookup is what keeps ``recommend()``'s Python
overhead low on small devices' catalogs. Validation of ``items.tsv`` is
:func:`device_runtime.bundle.parse_items_tsv`'s job.
"""

from __future__ import annotations

from array import array
from collections.abc import Iterable, Iterator, Sequence
from typing import Any, overload

import numpy as np

#: Catalogs up to this many items look ids up in a dict (about 100 bytes an item); larger ones
#: in sorted hash arrays (16 bytes an item).
DICT_INDEX_MAX_ITEMS = 20_000


class ItemCatalog:
    """Ids and titles of catalog indices ``0..len-1`` (0 and 1 are padding and OOV, never looked up).

    Built by :func:`device_runtime.bundle.parse_items_tsv` from checked offsets; immutable. The
    first indices hold ``reserved_ids`` (``<pad>``, ``<oov>``) and empty titles; ``item_ids`` and
    ``titles`` are read-only sequence views of both columns.
    """

    __slots__ = ("_data", "_id_start", "_id_end", "_title_end", "_reserved", "_hashes", "_order",
                 "_index", "_size", "item_ids", "titles")

    def __init__(self, data: bytes, id_start: array, id_end: array, title_end: array,
                 reserved_ids: Sequence[str], hashes: array) -> None:
        """``data[id_start[i]:id_end[i]]`` is the id of index ``i`` and
        ``data[id_end[i] + 1:title_end[i]]`` its title (UTF-8), for every index ``i`` from
        ``len(reserved_ids)`` on (below it the arrays hold zeros); ``hashes[j]`` is ``hash()`` of
        the id of index ``len(reserved_ids) + j`` (as a ``str``, in this process). The arrays
        are used in place, not copied."""
        first = len(reserved_ids)
        self._data = data
        self._reserved = tuple(reserved_ids)
        self._size = len(id_start)
        self._id_start, self._id_end, self._title_end = id_start, id_end, title_end
        self._index: dict[str, int] | None = None
        if self._size - first <= DICT_INDEX_MAX_ITEMS:
            indices = range(first, self._size)
            self._index = dict(zip(self.ids_at(indices), indices))
            self._hashes = self._order = np.zeros(0, np.int64)
        else:
            sorted_by_hash = np.argsort(np.frombuffer(hashes, dtype=np.int64), kind="stable")
            self._hashes = np.frombuffer(hashes, dtype=np.int64)[sorted_by_hash]
            self._order = (sorted_by_hash + first).astype(np.int32)
        self.item_ids: Sequence[str] = _Column(self, self.ids_at)
        self.titles: Sequence[str] = _Column(self, self.titles_at)

    def __len__(self) -> int:
        return self._size

    def ids_at(self, indices: Iterable[int]) -> list[str]:
        """The external ids of catalog ``indices`` (each in ``0..len-1``), in order."""
        data, start, end, reserved = self._data, self._id_start, self._id_end, self._reserved
        first = len(reserved)
        return [data[start[i]:end[i]].decode() if i >= first else reserved[i] for i in indices]

    def titles_at(self, indices: Iterable[int]) -> list[str]:
        """The titles (``""`` when none) of catalog ``indices`` (each in ``0..len-1``), in order."""
        data, id_end, title_end = self._data, self._id_end, self._title_end
        return [data[id_end[i] + 1:title_end[i]].decode() for i in indices]

    def lookup(self, keys: Sequence[Any]) -> list[int | None]:
        """The index of each of ``keys`` (a list), ``None`` for a key that is not exactly one of the
        catalog's ids (unknown, not a ``str``, or a reserved id). Raises ``TypeError`` when a key
        is unhashable, as ``dict.get`` would."""
        if self._index is not None:
            get = self._index.get  # str keys only: any other key equals no id
            return [get(key) for key in keys]
        count = len(keys)
        if not count:
            return []
        hashes = np.fromiter(map(hash, keys), dtype=np.int64, count=count)
        sorted_hashes = self._hashes
        positions = np.searchsorted(sorted_hashes, hashes)
        np.minimum(positions, len(sorted_hashes) - 1, out=positions)
        hit = sorted_hashes[positions] == hashes
        candidates = self._order[positions].tolist()
        if hit.all():  # the usual case: confirm every id at once (ids never contain NUL)
            data, start, end = self._data, self._id_start, self._id_end
            try:
                if b"\0".join([data[start[i]:end[i]] for i in candidates]) == "\0".join(keys).encode():
                    return candidates
            except (TypeError, UnicodeEncodeError):  # a key that is not a str (or not encodable)
                pass
        found: list[int | None] = []
        for key, key_hash, is_hit, index, position in zip(
                keys, hashes.tolist(), hit.tolist(), candidates, positions.tolist()):
            if not is_hit:
                found.append(None)
            elif self.ids_at((index,))[0] == key:
                found.append(index)
            else:  # another id with the same hash (or a non-str key equal in hash): search the run
                found.append(self._scan(key, key_hash, position + 1))
        return found

    def _scan(self, key: Any, key_hash: int, position: int) -> int | None:
        """The index of ``key`` among the ids whose hash equals ``key_hash`` from ``position`` on."""
        sorted_hashes = self._hashes
        while position < len(sorted_hashes) and sorted_hashes[position] == key_hash:
            index = int(self._order[position])
            if self.ids_at([index])[0] == key:
                return index
            position += 1
        return None

    def index_of(self, key: Any, default: int | None = None) -> int | None:
        """The index of id ``key``, or ``default`` when it is not one of the catalog's ids."""
        index = self.lookup([key])[0]
        return default if index is None else index

    def first_repeated(self) -> int | None:
        """The smallest index whose id equals a smaller index's id (None when ids are distinct)."""
        if self._index is not None:
            first = len(self._reserved)
            if len(self._index) == self._size - first:
                return None
            seen: set[str] = set()
            for index, item_id in enumerate(self.ids_at(range(first, self._size)), start=first):
                if item_id in seen:
                    return index
                seen.add(item_id)
        sorted_hashes = self._hashes
        repeated: int | None = None
        # empty unless ids repeat (or, very rarely, two ids' hashes collide)
        for position in np.flatnonzero(sorted_hashes[1:] == sorted_hashes[:-1]).tolist():
            later = int(self._order[position + 1])
            if repeated is not None and later >= repeated:
                continue
            run_start = position
            while run_start > 0 and sorted_hashes[run_start - 1] == sorted_hashes[position]:
                run_start -= 1
            # the stable sort keeps a run of equal hashes in index order: compare with the earlier ones
            if self.ids_at([later])[0] in self.ids_at(self._order[run_start:position + 1].tolist()):
                repeated = later
        return repeated


class _Column(Sequence[str]):
    """A read-only sequence view of one column (ids or titles) of an :class:`ItemCatalog`;
    slices are tuples."""

    __slots__ = ("_catalog", "_read")

    def __init__(self, catalog: ItemCatalog, read: Any) -> None:
        self._catalog = catalog
        self._read = read

    def __len__(self) -> int:
        return len(self._catalog)

    @overload
    def __getitem__(self, position: int) -> str: ...

    @overload
    def __getitem__(self, position: slice) -> tuple[str, ...]: ...

    def __getitem__(self, position: int | slice) -> str | tuple[str, ...]:
        if isinstance(position, slice):
            return tuple(self._read(range(len(self))[position]))
        index = range(len(self))[position]  # IndexError and negative positions as a tuple's
        return self._read([index])[0]

    def __iter__(self) -> Iterator[str]:
        size = len(self)
        for start in range(0, size, 4096):
            yield from self._read(range(start, min(start + 4096, size)))
