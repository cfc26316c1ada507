"""The per-user head: what a user's own feedback adds to the shipped model's ranking.

Design (``docs/personalization.md`` says why this one): the shipped int8 model stays as it is and
is also the item representation. For an event on item ``j`` the model is run on the one-item
history ``[j]``; its top-K (the items the model puts after ``j``), softmax-weighted, is ``j``'s
neighbourhood ``a_j``. A user's head is a bounded sparse vector over the catalog,

    mass <- decay * mass + |w|
    P    <- decay * P + s(w) * a_j + min(w, 0) * self_weight * mass / strength * e_j

with ``w`` the event's weight (play 1, like 2, skip -0.5, dislike -2, or a number) and
``s(w) = w`` for a positive weight, ``negative_spread * w`` for a negative one. At recommend time
the graph's top-K scores are scaled to their span (best 1, K-th 0) and each candidate ``c`` gets
``clip(strength * P[c] / mass, -max_demotion, max_promotion)`` added (with ``extra_candidates``,
liked items the graph did not return join at 0 plus their term). So:

- an empty head changes nothing: a user without feedback gets exactly the shipped ranking;
- the personal term of an item is capped (``max_promotion``, ``max_demotion``, in spans of the
  model's top-K scores) however many events arrive: a burst cannot wreck the ranking;
- a negative event demotes the item itself by ``|w| * self_weight`` spans at once (a skip by 1, a
  dislike by 4: out of the list), fading as later events come, and its neighbourhood at
  ``negative_spread`` of its weight;
- the head holds at most ``max_entries`` items (the largest ``|P|`` are kept) and decays, so old
  taste fades.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, fields

import numpy as np

#: Named feedback kinds and their weights (a number may be passed instead of a name).
KIND_WEIGHTS: Mapping[str, float] = {"play": 1.0, "skip": -0.5, "like": 2.0, "dislike": -2.0}
#: Largest absolute weight of one event.
MAX_EVENT_WEIGHT = 10.0


def event_weight(kind: str | float | int) -> float:
    """The weight of a feedback ``kind`` (a name of :data:`KIND_WEIGHTS` or a finite number in
    [-MAX_EVENT_WEIGHT, MAX_EVENT_WEIGHT]); ``ValueError``/``TypeError`` saying what is expected."""
    if isinstance(kind, str):
        if kind not in KIND_WEIGHTS:
            raise ValueError(f"feedback kind {kind[:40]!r} is unknown; expected one of "
                             f"{', '.join(KIND_WEIGHTS)} or a number")
        return KIND_WEIGHTS[kind]
    if isinstance(kind, bool) or not isinstance(kind, (int, float, np.integer, np.floating)):
        raise TypeError(f"feedback kind must be a name or a number, got {type(kind).__name__}")
    weight = float(kind)
    if not math.isfinite(weight) or abs(weight) > MAX_EVENT_WEIGHT:
        raise ValueError(f"feedback weight {weight} is out of range; expected a finite number in "
                         f"[-{MAX_EVENT_WEIGHT}, {MAX_EVENT_WEIGHT}]")
    return weight


@dataclass(frozen=True)
class PersonalizationConfig:
    """How the head learns and how much it may change a ranking (see the module docstring).

    - ``strength``: how far the head's normalized affinity moves a (span-scaled) model score;
    - ``max_promotion`` / ``max_demotion``: caps of that move, in spans of the graph's top-K scores;
    - ``decay``: factor applied to the head before each event (older taste fades);
    - ``self_weight``: how many spans a negative event demotes the item itself, per unit of weight;
    - ``negative_spread``: the share of a negative event's weight its neighbourhood gets (a
      disliked film's neighbours are often still the user's kind of film);
    - ``max_entries``: items one head keeps (4 bytes index + 4 bytes value each in memory);
    - ``temperature``: softmax temperature over a neighbourhood's model scores;
    - ``extra_candidates``: liked items outside the graph's top-K that may join the ranking.
    """

    strength: float = 10.0
    max_promotion: float = 1.5
    max_demotion: float = 6.0
    decay: float = 0.97
    self_weight: float = 2.0
    negative_spread: float = 0.25
    max_entries: int = 512
    temperature: float = 1.0
    extra_candidates: int = 0

    def __post_init__(self) -> None:
        ranges = {"strength": (0.0, 100.0), "max_promotion": (0.0, 10.0), "max_demotion": (0.0, 100.0),
                  "decay": (0.5, 1.0), "self_weight": (0.0, 100.0), "negative_spread": (0.0, 1.0), "max_entries": (16, 4096),
                  "temperature": (0.01, 100.0), "extra_candidates": (0, 1000)}
        for item in fields(self):
            value = getattr(self, item.name)
            low, high = ranges[item.name]
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not low <= value <= high:
                raise ValueError(f"PersonalizationConfig.{item.name} is {value!r}; expected a number "
                                 f"in [{low}, {high}]")


class UserHead:
    """One user's learned state: item indices (int32, sorted), values (float32) and the decayed
    event mass. Immutable in use: :meth:`learned` returns a new head, so a reader holding one
    never sees half an update."""

    __slots__ = ("items", "values", "mass", "events", "_derived")

    def __init__(self, items: np.ndarray | None = None, values: np.ndarray | None = None,
                 mass: float = 0.0, events: int = 0) -> None:
        self.items = np.zeros(0, np.int32) if items is None else np.asarray(items, np.int32)
        self.values = np.zeros(0, np.float32) if values is None else np.asarray(values, np.float32)
        self.mass = float(mass)
        self.events = int(events)
        self._derived: tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray] | None = None

    @property
    def empty(self) -> bool:
        """True while the head has learned nothing (its user gets the shipped ranking)."""
        return self.mass <= 0.0 or not len(self.items)

    def nbytes(self) -> int:
        """Bytes the head's arrays hold in memory."""
        return int(self.items.nbytes + self.values.nbytes)

    def learned(self, item: int, weight: float, neighbour_items: np.ndarray, neighbour_weights: np.ndarray,
                config: PersonalizationConfig) -> UserHead:
        """The head after one event (``weight`` on catalog index ``item``, whose neighbourhood
        is ``neighbour_items`` with ``neighbour_weights``)."""
        mass = config.decay * self.mass + abs(weight)
        adds_items = [neighbour_items.astype(np.int32, copy=False)]
        spread = weight if weight >= 0 else weight * config.negative_spread
        adds_values = [(spread * neighbour_weights).astype(np.float32, copy=False)]
        if weight < 0:  # the item itself: its term (strength * value / mass) is weight * self_weight now
            adds_items.append(np.array([item], np.int32))
            adds_values.append(np.array([weight * config.self_weight * mass / config.strength], np.float32))
        items = np.concatenate([self.items, *adds_items])
        values = np.concatenate([self.values * np.float32(config.decay), *adds_values])
        unique, inverse = np.unique(items, return_inverse=True)
        summed = np.bincount(inverse, weights=values).astype(np.float32)
        keep = np.nonzero(summed)[0]
        if len(keep) > config.max_entries:
            keep = keep[np.argsort(-np.abs(summed[keep]), kind="stable")[:config.max_entries]]
            keep.sort()
        return UserHead(unique[keep].astype(np.int32), summed[keep], mass, self.events + 1)

    def _terms(self, config: PersonalizationConfig) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """(items, their capped personal terms, positions of the liked items in ``items`` best
        first, their terms), computed once per head (heads are immutable)."""
        if self._derived is None:
            personal = np.clip(config.strength * self.values / np.float32(self.mass),
                               -config.max_demotion, config.max_promotion).astype(np.float32)
            liked = np.nonzero(personal > 0)[0]
            liked = liked[np.argsort(-personal[liked], kind="stable")[:config.extra_candidates]]
            self._derived = (self.items, personal, liked, personal[liked])
        return self._derived

    def adjust(self, ids: np.ndarray, scores: np.ndarray, config: PersonalizationConfig
               ) -> tuple[list[int], list[float]]:
        """The graph's candidates (``ids`` int32 with ``scores`` float32, best first) re-ranked
        by this head: each score scaled to the span of the graph's top-K (best 1.0, K-th 0.0),
        plus the capped personal term; liked items outside the candidates join at 0.0 plus their
        term. Returns (ids, scores) best first, as lists."""
        if self.empty or not len(ids):
            return ids.tolist(), scores.tolist()
        items, personal, liked, liked_terms = self._terms(config)
        last = float(scores[-1])
        span = (float(scores[0]) - last) or 1.0
        final = scores - np.float32(last)
        final /= np.float32(span)
        where = items.searchsorted(ids)
        np.minimum(where, len(items) - 1, out=where)
        hit = items[where] == ids
        at = where[hit]
        final[hit] += personal[at]
        if len(liked):
            candidate = np.zeros(len(items), bool)
            candidate[at] = True
            outside = ~candidate[liked]
            ids = np.concatenate([ids, items[liked[outside]]])
            final = np.concatenate([final, liked_terms[outside]])
        order = np.argsort(-final, kind="stable")
        return ids[order].tolist(), final[order].tolist()
