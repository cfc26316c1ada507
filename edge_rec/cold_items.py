"""Cold-item evaluation: how well a build with item features ranks items nobody had seen when it
was trained (a time-split protocol, beside leave-last-out).

The log is cut at the time before which ``1 - cold_share`` of its time span lies. Items first seen
after the cut are *cold*: unseen at training. Models are trained on the events before the cut
only; then every event after it is a test event, its history being everything the user did
before it (cut to the history length) and its target the item, ranked against the whole catalog
(the training catalog plus the cold items; the history's items excluded). Events whose target is
cold give the cold metrics, the others the warm ones. Three rankers:

- ``with_features``: the student trained with item features; cold items enter through the catalog
  patch path (:func:`edge_rec.catalog_patch.extend_catalog`), each row its features' encoding;
- ``without_features``: the same student trained without features; the only feature-free way to
  add an item is the average item row (every cold item then scores alike);
- ``content_baseline``: the most popular items, among the events of the window before the test
  event (as long as the cold period), of the target's categorical values (genres) first, then the
  rest by the same popularity. It reads the target's genres, so it is a strong, somewhat
  optimistic baseline.

NDCG@10 and HR@10 per event; paired bootstrap intervals of the ratios over test events.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from device_runtime.bundle_schema import FIRST_ITEM_INDEX, PAD_INDEX
from edge_rec.data import InteractionLog, prepare_dataset
from edge_rec.data.item_features import FeatureSpec, ItemFeatures, catalog_tokens
from edge_rec.data.prepared import PreparedData
from edge_rec.data.sequences import left_pad
from edge_rec.paired_bootstrap import paired_ratio

RANKERS = ("with_features", "without_features", "content_baseline")
TOP_K = 10
#: Test events scored at once (a chunk holds CHUNK x catalog scores per ranker).
CHUNK = 2048


@dataclass(frozen=True)
class ColdSplit:
    """The time split: the cut, the training part of the log, the cold items, and the test events
    (user, target item id, history item ids oldest first, time)."""

    cut_time: int
    window_seconds: int
    train_log: InteractionLog
    cold_items: frozenset[str]
    events: tuple[tuple[str, str, tuple[str, ...], int], ...]
    items_by_time: np.ndarray
    stamps_by_time: np.ndarray


def cold_split(log: InteractionLog, *, cold_share: float, history_length: int) -> ColdSplit:
    """Cut ``log`` at the newest ``cold_share`` of its time span (see the module docstring).

    Raises ``ValueError`` when the log spans no time or the cut leaves no event on a side."""
    order = np.argsort(log.timestamps, kind="stable")
    users, items, stamps = log.users[order], log.items[order], log.timestamps[order]
    first, last = int(stamps[0]), int(stamps[-1])
    if last <= first:
        raise ValueError(f"{log.source}: every event has the same time; the cold-item protocol needs real timestamps")
    cut = first + int(round((1.0 - cold_share) * (last - first)))
    before = stamps < cut
    if before.all() or not before.any():
        raise ValueError(f"{log.source}: the cut at the newest {cold_share:.0%} of the time leaves no events on a side")
    seen = set(items[before].tolist())
    cold = frozenset(set(items[~before].tolist()) - seen)
    histories: dict[str, list[str]] = {}
    events = []
    for user, item, stamp, is_after in zip(users, items, stamps, ~before, strict=True):
        past = histories.setdefault(user, [])
        if is_after and past:
            events.append((user, item, tuple(past[-history_length:]), int(stamp)))
        past.append(item)
    train = InteractionLog(users[before], items[before], stamps[before], f"{log.source} (before the cold cut)",
                           titles=log.titles)
    return ColdSplit(cut, last - cut, train, cold, tuple(events), items, stamps)


@dataclass(frozen=True)
class ColdCatalog:
    """The evaluation catalog: the training vocabulary's ids, then the cold items (indices from
    ``cold_start``)."""

    ids: list[str]
    cold_start: int

    def index(self) -> dict[str, int]:
        """Item id -> index."""
        return {item: i for i, item in enumerate(self.ids) if i >= FIRST_ITEM_INDEX}


def _gains(scores: np.ndarray, targets: np.ndarray, histories: np.ndarray, rng: np.random.Generator
           ) -> tuple[np.ndarray, np.ndarray]:
    """Per-event (NDCG@10, HR@10) of ``scores`` [N, C]: PAD, OOV and history items excluded, ties
    broken at random (so a ranker that scores many items alike is not credited with the best)."""
    scores = scores + rng.uniform(0.0, 1e-6, scores.shape)
    scores[:, :FIRST_ITEM_INDEX] = -np.inf
    rows = np.arange(len(scores))[:, None]
    scores[rows, histories] = np.where(histories > PAD_INDEX, -np.inf, scores[rows, histories])
    target_scores = scores[np.arange(len(scores)), targets]
    rank = (scores > target_scores[:, None]).sum(axis=1)
    hit = rank < TOP_K
    return np.where(hit, 1.0 / np.log2(rank + 2.0), 0.0), hit.astype(np.float64)


def _summary(ndcg: np.ndarray, hr: np.ndarray, users: np.ndarray) -> dict[str, Any]:
    return {"ndcg@10": float(ndcg.mean()) if len(ndcg) else 0.0, "hr@10": float(hr.mean()) if len(hr) else 0.0,
            "events": int(len(ndcg)), "users": int(len(set(users.tolist())))}


def evaluate_cold_items(
    split: ColdSplit,
    features: ItemFeatures,
    spec: FeatureSpec,
    data_cfg: Any,
    features_cfg: Any,
    train: Callable[[PreparedData, str], Any],
    *,
    seed: int,
) -> dict[str, Any]:
    """The ``cold_items`` report section: train with and without features (tokenized by the
    build's ``spec``) on ``split``'s training log (``train(data, name)`` returns a trained model with a plain serving form and,
    with features, its encoder table), then rank every test event three ways (module docstring)."""
    from edge_rec.catalog_patch import extend_catalog, item_table, new_item_rows

    dataset = prepare_dataset(split.train_log, min_user_interactions=data_cfg.min_user_interactions,
                              min_item_interactions=data_cfg.min_item_interactions)
    base = PreparedData(source=split.train_log.source, dataset=dataset,
                        split=dataset.split(data_cfg.validation_share), history_length=data_cfg.history_length,
                        interactions=dataset.num_interactions, skipped_lines=0, log=split.train_log)
    with_data = dataclasses.replace(base, feature_spec=spec, item_features=features, item_tokens=catalog_tokens(
        spec, features, dataset.vocab.ids, id_dropout=features_cfg.id_dropout,
        new_item_bias_quantile=features_cfg.new_item_bias_quantile))
    cold_ids = sorted(i for i in split.cold_items if i in features.values)
    catalog = ColdCatalog([*dataset.vocab.ids, *cold_ids], dataset.vocab.size)
    index = catalog.index()
    kept = [(u, t, h, s) for u, t, h, s in split.events if t in index]
    users = np.array([u for u, *_ in kept])
    targets = np.array([index[t] for _, t, _, _ in kept], dtype=np.int64)
    histories = left_pad([np.array([index[i] for i in h if i in index], dtype=np.int32) for _, _, h, _ in kept],
                         data_cfg.history_length)
    is_cold = targets >= catalog.cold_start
    keep_all = np.ones(dataset.vocab.size, dtype=bool)

    def model_scorer(trained: Any, rows: np.ndarray) -> Callable[[slice], np.ndarray]:
        extended = extend_catalog(trained.serving_model, keep_all, rows,
                                  bias_quantile=features_cfg.new_item_bias_quantile)

        def scores(part: slice) -> np.ndarray:
            logits = extended.predict(histories[part], batch_size=1024, verbose=0)
            return np.asarray(logits[0] if isinstance(logits, list) else logits, dtype=np.float32)

        return scores

    with_model = train(with_data, "cold_with_features")
    cold_tokens = spec.token_matrix([features.values[i] for i in cold_ids])
    rows = new_item_rows(with_model.serving_model, with_model.item_encoder, *cold_tokens)
    without_model = train(base, "cold_without_features")
    average = np.repeat(item_table(without_model.serving_model)[FIRST_ITEM_INDEX:].mean(axis=0, keepdims=True), len(cold_ids),
                        axis=0)
    scorers = {"with_features": model_scorer(with_model, rows),
               "without_features": model_scorer(without_model, average),
               "content_baseline": ContentBaseline(split, catalog, features, kept).scores}
    rng = np.random.default_rng(seed)
    parts: dict[str, list[tuple[np.ndarray, np.ndarray]]] = {name: [] for name in scorers}
    for start in range(0, len(kept), CHUNK):
        part = slice(start, start + CHUNK)
        for name, scorer in scorers.items():
            parts[name].append(_gains(scorer(part), targets[part], histories[part], rng))
    gains = {name: (np.concatenate([g[0] for g in chunks]), np.concatenate([g[1] for g in chunks]))
             for name, chunks in parts.items()}
    section: dict[str, Any] = {
        "protocol": {"cold_share": features_cfg.cold_share, "cut_time": split.cut_time,
                     "cold_items": len(split.cold_items), "cold_items_with_features": len(cold_ids),
                     "test_events": len(kept), "skipped_events": len(split.events) - len(kept),
                     "catalog": len(catalog.ids) - FIRST_ITEM_INDEX},
    }
    for name, (ndcg, hr) in gains.items():
        section[name] = {part: _summary(ndcg[mask], hr[mask], users[mask])
                         for part, mask in (("cold", is_cold), ("warm", ~is_cold))}
    ratios = []
    for a, b in (("with_features", "content_baseline"), ("with_features", "without_features")):
        for part, mask in (("cold", is_cold), ("warm", ~is_cold)):
            if mask.sum() and gains[b][0][mask].sum() > 0:
                ratio = paired_ratio(gains[a][0][mask], gains[b][0][mask], names=(a, b), seed=seed)
                ratios.append({"part": part, "a": a, "b": b, "ratio": ratio.ratio, "low": ratio.low,
                               "high": ratio.high, "verdict": ratio.verdict})
    section["ratios"] = ratios
    return section


class ContentBaseline:
    """Scores of the content baseline for the test events, in time order, chunk by chunk: recent
    popularity (the events of the window before each test event), items sharing a categorical
    value with the target first."""

    def __init__(self, split: ColdSplit, catalog: ColdCatalog, features: ItemFeatures,
                 events: list[tuple[str, str, tuple[str, ...], int]]) -> None:
        index = catalog.index()
        categorical = [c for c, kind in features.kinds.items() if kind == "categorical"]
        values: dict[str, int] = {}
        self.item_values: list[list[int]] = [[] for _ in catalog.ids]
        for item, i in index.items():
            row = features.values.get(item, {})
            found = {values.setdefault(f"{column}={value.strip().lower()}", len(values))
                     for column in categorical for value in row.get(column, "").split("|") if value.strip()}
            self.item_values[i] = sorted(found)
        self.membership = np.zeros((len(catalog.ids), max(1, len(values))), dtype=bool)
        for i, found in enumerate(self.item_values):
            self.membership[i, found] = True
        self.stamps = split.stamps_by_time
        self.codes = np.array([index.get(i, PAD_INDEX) for i in split.items_by_time.tolist()], dtype=np.int64)
        self.window = split.window_seconds
        self.events = [(index[target], stamp) for _, target, _, stamp in events]
        self.counts = np.zeros(len(catalog.ids))
        self.low = self.high = 0

    def scores(self, part: slice) -> np.ndarray:
        """Scores ``[events in part, C]``; parts must come in order (the window slides forward)."""
        chosen = self.events[part]
        out = np.zeros((len(chosen), len(self.counts)), dtype=np.float32)
        for row, (target, stamp) in enumerate(chosen):
            while self.high < len(self.stamps) and self.stamps[self.high] < stamp:
                self.counts[self.codes[self.high]] += 1
                self.high += 1
            while self.low < self.high and self.stamps[self.low] < stamp - self.window:
                self.counts[self.codes[self.low]] -= 1
                self.low += 1
            genres = self.item_values[target]
            same = self.membership[:, genres].any(axis=1) if genres else 0.0
            out[row] = self.counts + (self.counts.max() + 1.0) * same
        out[:, PAD_INDEX] = 0.0
        return out
