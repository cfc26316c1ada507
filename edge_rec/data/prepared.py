"""A log ready to train on: loaded (or generated), filtered, turned into sequences and split
leave-last-out, with every size the config leaves unset derived from it. TensorFlow-free, so
``edge-rec config show --data LOG`` and the data commands can use it."""

from __future__ import annotations

import dataclasses
import functools
from dataclasses import dataclass
from typing import Any

import numpy as np

from device_runtime.bundle_schema import FIRST_ITEM_INDEX, real_item_count
from edge_rec.beyond_accuracy import item_sketches, popularity_ranks
from edge_rec.config import ConfigError, DataConfig, EdgeRecConfig, FeaturesConfig
from edge_rec.data import (
    EvalSet,
    InteractionLog,
    LeaveLastOutSplit,
    SequenceDataset,
    generate_synthetic,
    load_interactions,
    prepare_dataset,
)
from edge_rec.data.item_features import (
    FeatureSpec,
    ItemFeatures,
    ItemTokens,
    catalog_tokens,
    load_item_features,
)
from edge_rec.data.synthetic import PRESETS
from edge_rec.data.vocabulary import Vocabulary
from edge_rec.sizing import LogShape, SizingChoice, size_for_log


@dataclass(frozen=True)
class PreparedData:
    """The interaction log turned into sequences and a leave-last-out split; with item features,
    the file read (``item_features``), its fitted spec and every catalog index's tokens."""

    source: str
    dataset: SequenceDataset
    split: LeaveLastOutSplit
    history_length: int
    interactions: int
    skipped_lines: int
    log: InteractionLog | None = None
    feature_spec: FeatureSpec | None = None
    item_tokens: ItemTokens | None = None
    item_features: ItemFeatures | None = None

    @property
    def catalog_size(self) -> int:
        """Number of logits a model produces: real items + PAD + OOV."""
        return self.dataset.vocab.size

    @functools.cached_property
    def test_set(self) -> EvalSet:
        """The test split at this history length, built once (every evaluation of a build reads it)."""
        return self.split.eval_set("test", self.history_length)

    @functools.cached_property
    def popularity_ranks(self) -> np.ndarray:
        """Each index's training-popularity rank (1 = most popular)."""
        return popularity_ranks(self.split.popularity())

    @functools.cached_property
    def item_sketches(self) -> np.ndarray:
        """Items described by their training users (for intra-list diversity)."""
        return item_sketches(self.split.train_sequences, self.catalog_size)

    def summary(self) -> dict[str, Any]:
        """The ``dataset`` section of the report."""
        return {
            "source": self.source,
            "users": len(self.dataset.user_ids),
            "items": real_item_count(self.dataset.vocab.size),
            "interactions": self.interactions,
            "test_users": len(self.test_set),
            "validation_users": len(self.split.validation_users),
            "scored_validation_users": len(self.split.scored_validation_users),
            "history_length": self.history_length,
            "skipped_lines": self.skipped_lines,
            **self.before_filtering(),
        }

    def before_filtering(self) -> dict[str, int]:
        """Users, items and interactions of the log before the minimum-count filters
        (``raw_*``; empty when the raw log is not kept), so the report can say what they dropped."""
        if self.log is None:
            return {}
        return {
            "raw_users": int(np.unique(self.log.users).size),
            "raw_items": int(np.unique(self.log.items).size),
            "raw_interactions": len(self.log),
        }


def prepare_data(cfg: DataConfig, *, seed: int, path: str | None = None, data_format: str | None = None,
                 features: FeaturesConfig | None = None) -> PreparedData:
    """Load (or generate) the log, build vocabulary and sequences, split leave-last-out.

    ``path`` (a file or a synthetic preset name) overrides ``cfg.source``. With
    ``cfg.item_features``, the features file is read and checked first (before the log), its
    spec fitted with ``features`` and every catalog item's tokens looked up (items of the log
    without features have none).
    """
    features = features or FeaturesConfig()
    item_features = load_item_features(cfg.item_features) if cfg.item_features else None
    source = path or cfg.source
    if source in PRESETS:
        log_ = generate_synthetic(
            source, seed=seed, users=cfg.synthetic_users, items=cfg.synthetic_items
        )
    else:
        log_ = load_interactions(source, format=data_format or cfg.format, on_bad_line=cfg.on_bad_line)
    dataset = prepare_dataset(
        log_,
        min_user_interactions=cfg.min_user_interactions,
        min_item_interactions=cfg.min_item_interactions,
    )
    interactions = int(sum(len(s) for s in dataset.sequences))
    spec = tokens = None
    if item_features is not None:
        spec = FeatureSpec.fit(item_features, buckets=features.buckets, max_tokens=features.max_tokens,
                               numeric_bins=features.numeric_bins)
        first_rare = None
        if features.keep_rare_items:
            dataset, first_rare = _with_rare_items(dataset, log_, item_features)
        tokens = catalog_tokens(spec, item_features, dataset.vocab.ids, id_dropout=features.id_dropout,
                                features_only_start=first_rare,
                                new_item_bias_quantile=features.new_item_bias_quantile)
    return PreparedData(
        source=str(source),
        dataset=dataset,
        split=dataset.split(cfg.validation_share),
        history_length=cfg.history_length,
        interactions=interactions,
        skipped_lines=log_.skipped_lines,
        log=log_,
        feature_spec=spec,
        item_tokens=tokens,
        item_features=item_features,
    )


def _with_rare_items(dataset: SequenceDataset, log: InteractionLog, features: ItemFeatures
                     ) -> tuple[SequenceDataset, int | None]:
    """``dataset`` whose vocabulary also holds, after its own items, every item of ``log`` with
    features that the minimum-count filters dropped (sorted by id), and the first such index
    (None when there is none). Sequences are unchanged: their indices stay valid."""
    vocab = dataset.vocab
    known = set(vocab.ids)
    rare = sorted(({str(i) for i in np.unique(log.items)} - known) & set(features.values))
    if not rare:
        return dataset, None
    titles = dict(zip(vocab.ids, vocab.titles))  # noqa: B905 (Python 3.9: the device side reads logs)
    for item in rare:
        titles[item] = (log.titles or {}).get(item, "")
    extended = Vocabulary([*vocab.ids[FIRST_ITEM_INDEX:], *rare], titles)
    return SequenceDataset(extended, dataset.user_ids, dataset.sequences), vocab.size


def prepare_sized_data(
    cfg: EdgeRecConfig, *, path: str | None = None, data_format: str | None = None
) -> tuple[EdgeRecConfig, PreparedData, tuple[SizingChoice, ...]]:
    """:func:`prepare_data`, then every size ``cfg`` leaves unset derived from the log
    (:func:`~edge_rec.sizing.size_for_log`): the sized config, the data split and cut at the
    sized validation share and history length, and the choices made (for the report)."""
    data = prepare_data(cfg.data, seed=cfg.seed, path=path, data_format=data_format, features=cfg.features)
    unsized_share = cfg.data.validation_share
    cfg, choices = size_for_log(cfg, LogShape.of(data.dataset, item_features=data.item_tokens is not None))
    if data.item_tokens is not None:
        check_item_features_config(cfg)
    split = data.split if cfg.data.validation_share == unsized_share else data.dataset.split(cfg.data.validation_share)
    return cfg, dataclasses.replace(data, split=split, history_length=cfg.data.history_length), choices


def check_item_features_config(cfg: EdgeRecConfig) -> None:
    """Raise :class:`~edge_rec.config.ConfigError` (before any training) when a build with item
    features has models that cannot use them: both output layers must be tied to the item
    representation, so that a new item can be scored from its features."""
    problems = []
    if not cfg.student.tie_output:
        problems.append(f"student.tie_output = true with student.hidden = [{cfg.student.embedding_dim}] "
                        f"(got tie_output = false, hidden = {list(cfg.student.hidden)})")
    if cfg.teacher.kind != "sasrec" or not cfg.teacher.tie_output:
        problems.append(f"teacher.kind = 'sasrec' with teacher.tie_output = true (got {cfg.teacher.kind!r}, "
                        f"tie_output = {str(cfg.teacher.tie_output).lower()})")
    if problems:
        raise ConfigError(f"data.item_features ({cfg.data.item_features}): items with features are scored "
                          "through a tied output layer; expected " + " and ".join(problems) +
                          " (leave student.hidden unset and the sizing rule ties it)")
