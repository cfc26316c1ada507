"""Item vocabulary: external item id <-> dense index, with 0 = padding and 1 = out-of-vocabulary."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence

import numpy as np

from device_runtime.bundle import OOV_INDEX, PAD_INDEX  # the single authority on reserved indices

__all__ = ["OOV_INDEX", "OOV_TOKEN", "PAD_INDEX", "PAD_TOKEN", "Vocabulary"]
PAD_TOKEN = "<pad>"
OOV_TOKEN = "<oov>"


class Vocabulary:
    """A fixed mapping of item ids (strings) to indices ``2..size-1``.

    ``ids[0]`` is ``"<pad>"``, ``ids[1]`` is ``"<oov>"``; ``size`` = number of real items + 2
    is the catalog size every model scores. Unknown ids map to :data:`OOV_INDEX`. ``titles``
    is aligned with ``ids`` ("" where no title is known).
    """

    def __init__(self, item_ids: Sequence[str], titles: Mapping[str, str] | None = None) -> None:
        ids = [str(i) for i in item_ids]
        if len(set(ids)) != len(ids):
            raise ValueError("item ids of a vocabulary must be unique")
        if PAD_TOKEN in ids or OOV_TOKEN in ids:
            raise ValueError(f"{PAD_TOKEN!r} and {OOV_TOKEN!r} are reserved and cannot be item ids")
        self._ids = [PAD_TOKEN, OOV_TOKEN, *ids]
        self._index = {item: i for i, item in enumerate(self._ids) if i >= 2}
        titles = titles or {}
        self._titles = ["", ""] + [titles.get(i, "") for i in ids]

    @property
    def size(self) -> int:
        """Catalog size C: real items + 2 (padding and OOV)."""
        return len(self._ids)

    @property
    def ids(self) -> list[str]:
        """Item id of every index (a copy); ``ids[0]`` and ``ids[1]`` are the reserved tokens."""
        return list(self._ids)

    @property
    def titles(self) -> list[str]:
        """Title of every index (a copy), "" where unknown."""
        return list(self._titles)

    def index(self, item_id: str) -> int:
        """Index of ``item_id``; :data:`OOV_INDEX` if it is not in the vocabulary."""
        return self._index.get(str(item_id), OOV_INDEX)

    def indices(self, item_ids: Iterable[str]) -> np.ndarray:
        """Indices of many ids as ``int32`` (unknown ids -> :data:`OOV_INDEX`)."""
        get = self._index.get
        return np.array([get(str(i), OOV_INDEX) for i in item_ids], dtype=np.int32)

    def item_id(self, index: int) -> str:
        """External id at ``index``; raises ``IndexError`` outside ``[0, size)``."""
        index = int(index)
        if not 0 <= index < len(self._ids):
            raise IndexError(f"item index {index} outside the vocabulary [0, {len(self._ids)})")
        return self._ids[index]

    def __len__(self) -> int:
        """Same as :attr:`size`."""
        return len(self._ids)

    def __repr__(self) -> str:
        return f"Vocabulary(size={self.size})"
