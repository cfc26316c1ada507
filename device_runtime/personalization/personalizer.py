"""The glue between a recommender and its users' heads: neighbourhoods from the serving model,
learning from feedback, re-ranking, forgetting (:mod:`device_runtime.personalization.head` is the
math, :mod:`device_runtime.personalization.state_store` the files)."""

from __future__ import annotations

import threading
import weakref
from collections import OrderedDict
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import numpy as np

from device_runtime.bundle_schema import FIRST_ITEM_INDEX
from device_runtime.item_catalog import ItemCatalog
from device_runtime.personalization.head import PersonalizationConfig, UserHead, event_weight
from device_runtime.personalization.state_store import UserStateStore

#: Neighbourhoods kept per serving model (K indices + K weights each: 800 bytes at K = 100).
NEIGHBOUR_CACHE_ITEMS = 4096

#: ``run(indices, count) -> (ids, scores)``: the serving model's top ``count`` for a history.
RunModel = Callable[[list, int], tuple]


class NeighbourCache:
    """Item index -> its neighbourhood under one model: the model's top-K for the one-item
    history ``[item]`` (the item itself removed), softmax-weighted. LRU, thread-safe."""

    def __init__(self, run: RunModel, top_k: int, temperature: float,
                 capacity: int = NEIGHBOUR_CACHE_ITEMS) -> None:
        self._run = run
        self._top_k = top_k
        self._temperature = temperature
        self._capacity = capacity
        self._cache: OrderedDict[int, tuple[np.ndarray, np.ndarray]] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, item: int) -> tuple[np.ndarray, np.ndarray]:
        """(indices int32[<=K], weights float32 summing to 1) of ``item``'s neighbourhood."""
        with self._lock:
            found = self._cache.get(item)
            if found is not None:
                self._cache.move_to_end(item)
                return found
        ids, scores = self._run([item], self._top_k)
        ids_array = np.asarray(ids, np.int32)
        logits = np.asarray(scores, np.float64) / self._temperature
        keep = (ids_array != item) & (ids_array >= FIRST_ITEM_INDEX)
        ids_array, logits = ids_array[keep], logits[keep]
        weights = np.exp(logits - logits.max()) if len(logits) else logits
        weights = (weights / weights.sum()).astype(np.float32) if len(weights) else weights.astype(np.float32)
        found = (ids_array, weights)
        with self._lock:
            self._cache[item] = found
            while len(self._cache) > self._capacity:
                self._cache.popitem(last=False)
        return found


class Personalizer:
    """The users' heads of one recommender, kept in ``state_dir`` (see the package docstring)."""

    def __init__(self, state_dir: str | Path, config: PersonalizationConfig) -> None:
        self.config = config
        self.store = UserStateStore(state_dir, config)
        self._neighbours: weakref.WeakKeyDictionary[Any, NeighbourCache] = weakref.WeakKeyDictionary()
        self._lock = threading.Lock()

    def neighbours(self, serving: Any) -> NeighbourCache:
        """The neighbourhood cache of serving model ``serving`` (one per bundle)."""
        with self._lock:
            cache = self._neighbours.get(serving)
            if cache is None:
                cache = NeighbourCache(serving.run, serving.top_k, self.config.temperature)
                self._neighbours[serving] = cache
            return cache

    def head(self, user: Any, catalog: ItemCatalog) -> UserHead:
        """``user``'s current head over ``catalog``."""
        return self.store.head(user, catalog)

    def learn(self, serving: Any, user: Any, events: Iterable[tuple[int, Any]], *, save: bool = True) -> int:
        """Take ``(item index, kind)`` events of ``user`` into the head (in order), then save it
        once. Returns how many events were learned."""
        weighted = [(index, event_weight(kind)) for index, kind in events]
        if not weighted:
            return 0
        neighbours = self.neighbours(serving)
        catalog = serving.items
        with self.store.lock:
            head = self.store.head(user, catalog)
            for index, weight in weighted:
                items, weights = neighbours.get(index)
                head = head.learned(index, weight, items, weights, self.config)
            self.store.replace(user, head, catalog)
            if save:
                self.store.save(user, head, catalog)
        return len(weighted)

    def forget(self, user: Any) -> int:
        """Delete every trace of ``user`` (returns the files removed)."""
        return self.store.forget(user)
