"""Typed, frozen configuration for every pipeline stage, loaded from TOML.

A config file has one table per section (``[data]``, ``[teacher]``, ``[student]``, ``[distill]``,
``[prune]``, ``[qat]``, ``[lowrank]``, ``[convert]``, ``[gate]``, and the section of any pass
registered in :mod:`edge_rec.passes`) plus a top-level ``seed``. Every key is optional; unknown
keys and wrong types are errors that name the file and the field.

Each key declares its constraint beside it (:func:`param`: a check and what is expected, with the
reason); keys that constrain each other are checked by the section's ``related_checks``. One
walker (:func:`validate_section`) applies both, once, when a config is loaded or overridden.
``[preset.quick]`` style overrides (config presets) are applied with :func:`apply_overrides`.
"""

from __future__ import annotations

import dataclasses
import sys
import types
import typing
from collections.abc import Callable, Mapping
from dataclasses import MISSING, dataclass, field, fields, is_dataclass
from pathlib import Path
from typing import Any

from converters.variants import VARIANTS
from device_runtime.bundle_schema import real_item_count
from device_runtime.toml_reader import TOMLDecodeError, loads_toml


class ConfigError(ValueError):
    """A configuration file or override is invalid; the message names the file and field."""


def param(default: Any = MISSING, *, default_factory: Any = MISSING, check: Callable[[Any], bool] | None = None,
          expected: str = "") -> Any:
    """A config key with its constraint beside it: ``check(value)`` must hold, and ``expected``
    says what is expected (and why, when it is not obvious) in the error that names the key."""
    metadata = {"check": check, "expected": expected} if check is not None else {}
    if default_factory is not MISSING:
        return field(default_factory=default_factory, metadata=metadata)
    return field(default=default, metadata=metadata)


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def at_least(low: float) -> Callable[[Any], bool]:
    """A check: a number >= ``low``."""
    return lambda value: value >= low


def in_range(low: float, high: float, *, closed_low: bool = True, closed_high: bool = True) -> Callable[[Any], bool]:
    """A check: a number between ``low`` and ``high`` (ends included as told)."""
    return lambda value: (low <= value if closed_low else low < value) and (value <= high if closed_high else value < high)


def one_of(*choices: Any) -> Callable[[Any], bool]:
    """A check: one of ``choices``."""
    return lambda value: value in choices


def optional(check: Callable[[Any], bool]) -> Callable[[Any], bool]:
    """A check: None, or a value ``check`` accepts."""
    return lambda value: value is None or check(value)


POSITIVE_INT = {"check": at_least(1), "expected": "an integer >= 1"}
FRACTION = {"check": in_range(0.0, 1.0), "expected": "a number in [0, 1]"}
DROPOUT = {"check": in_range(0.0, 1.0, closed_high=False), "expected": "a number in [0, 1)"}


@dataclass(frozen=True)
class FitConfig:
    """How one Keras model is fitted: epochs, batch size, learning rate, early-stopping patience.

    ``schedule`` is ``constant`` or ``cosine`` (linear warm-up over ``warmup_epochs``, then a
    cosine decay over the remaining epochs); ``weight_decay`` > 0 uses AdamW (decoupled decay).
    ``length_buckets`` batches rows of similar length together (fewer padded slots computed, but
    short histories then weigh more in the loss: off by default, see
    :mod:`edge_rec.distill.training_input`).
    """

    epochs: int = param(10, **POSITIVE_INT)
    batch_size: int = param(64, **POSITIVE_INT)
    learning_rate: float = param(1e-3, check=at_least(1e-12), expected="a positive number")
    patience: int = param(3, **POSITIVE_INT)
    schedule: str = param("constant", check=one_of("constant", "cosine"), expected="'constant' or 'cosine'")
    warmup_epochs: float = param(0.0, check=at_least(0.0), expected="a number >= 0")
    weight_decay: float = param(0.0, check=at_least(0.0), expected="a number >= 0")
    length_buckets: bool = False

    def related_checks(self) -> list[tuple[bool, str, str]]:
        """Keys constrained by each other: ``(holds, key, expected)``."""
        return [(self.warmup_epochs <= self.epochs, "warmup_epochs", "a number in [0, epochs]")]


@dataclass(frozen=True)
class DataConfig:
    """Where the interaction log comes from and how it becomes sequences.

    ``source`` is a synthetic preset name (``synthetic-tv``, ``synthetic-speaker``, ``synthetic-bulk``) or a path.

    ``validation_share`` (in (0, 1]): the share of users whose second-to-last item is held out
    for validation (early stopping and every choice made on validation), at least
    :data:`~edge_rec.data.split.MIN_VALIDATION_USERS` users; every other user trains on that
    item (:class:`~edge_rec.data.split.LeaveLastOutSplit`). 1 is the classic leave-last-out split.
    Every user's last item stays the test target either way.

    ``item_features`` (a path; empty = none) is a CSV of item features
    (:mod:`edge_rec.data.item_features`): models then represent each item by its id and its
    features, and a catalog patch can add items from their features alone.
    """

    source: str = "synthetic-tv"
    format: str = "auto"
    on_bad_line: str = param("error", check=one_of("error", "skip"), expected="'error' or 'skip'")
    synthetic_users: int | None = param(None, check=optional(at_least(10)), expected="an integer >= 10")
    synthetic_items: int | None = param(None, check=optional(at_least(10)), expected="an integer >= 10")
    min_user_interactions: int = param(5, check=at_least(3), expected=(
        "an integer >= 3 (a training, a validation and a test item per user)"))
    min_item_interactions: int = param(5, **POSITIVE_INT)
    history_length: int = param(50, check=at_least(2), expected="an integer >= 2")
    validation_share: float = param(1.0, check=in_range(0.0, 1.0, closed_low=False), expected="a number in (0, 1]")
    item_features: str = ""


@dataclass(frozen=True)
class TeacherConfig:
    """The large sequential teacher: ``kind`` is ``sasrec`` (causal self-attention) or ``gru``.

    ``tie_output`` (on by default; the GRU teacher ignores it and keeps its ``Dense``) scores the
    last hidden state against the item embedding table (SASRec's shared prediction layer) instead
    of a separate output ``Dense``.

    ``members`` (>= 1): how many teachers of this kind are trained, each from its own seed, and
    averaged into one (:mod:`edge_rec.models.averaged_teacher`); 1 is a single teacher.
    """

    kind: str = param("sasrec", check=one_of("sasrec", "gru"), expected="'sasrec' or 'gru'")
    members: int = param(1, **POSITIVE_INT)
    hidden: int = param(128, **POSITIVE_INT)
    blocks: int = param(2, **POSITIVE_INT)
    heads: int = param(2, **POSITIVE_INT)
    dropout: float = param(0.2, **DROPOUT)
    tie_output: bool = True
    fit: FitConfig = field(
        default_factory=lambda: FitConfig(epochs=8, batch_size=64, learning_rate=3e-3, patience=2)
    )

    def related_checks(self) -> list[tuple[bool, str, str]]:
        """Keys constrained by each other: ``(holds, key, expected)``."""
        return [(self.kind != "sasrec" or self.hidden % self.heads == 0, "hidden",
                 f"a multiple of teacher.heads ({self.heads})")]


@dataclass(frozen=True)
class StudentConfig:
    """The small int8-friendly student.

    ``pooling`` is ``mean`` (masked mean) or ``position`` (learned position-weighted mean, starting
    from the recency weights ``exp(-initial_decay * distance)``); ``warm_start`` initialises item
    embeddings from the teacher's by PCA. ``tie_output`` scores the last hidden state against the
    item embedding table instead of a separate output Dense (the last hidden width must equal
    ``embedding_dim``); off by default, because the int8 file then holds the table twice
    (per-tensor for the lookup, per-channel for the output).

    ``alone_dropout`` is the dropout of the student trained without a teacher (``None``: the
    same ``dropout``). The teacher's soft labels regularise a distilled student; one trained alone
    has only hard labels and overfits sooner, so the baseline distillation is measured against
    (and the student shipped when distillation does not pay) gets its own rate.
    """

    embedding_dim: int = param(16, **POSITIVE_INT)
    hidden: tuple[int, ...] = param((12,), check=lambda widths: all(w >= 1 for w in widths),
                                    expected="a list of integers >= 1")
    pooling: str = param("position", check=one_of("mean", "position"), expected="'mean' or 'position'")
    tie_output: bool = False
    warm_start: bool = True
    dropout: float = param(0.1, **DROPOUT)
    alone_dropout: float | None = param(None, check=optional(in_range(0.0, 1.0, closed_high=False)),
                                        expected="a number in [0, 1)")
    initial_decay: float = param(0.3, check=at_least(0.0), expected="a number >= 0")
    fit: FitConfig = field(
        default_factory=lambda: FitConfig(epochs=8, batch_size=16, learning_rate=1e-2, patience=2)
    )

    def related_checks(self) -> list[tuple[bool, str, str]]:
        """Keys constrained by each other: ``(holds, key, expected)``."""
        return [(not self.tie_output or self.can_tie_output, "hidden",
                 f"a last width equal to student.embedding_dim ({self.embedding_dim}) when "
                 "student.tie_output is true (the output scores against the embedding table)")]

    def trained_alone(self) -> StudentConfig:
        """This config for the student trained without a teacher: dropout = ``alone_dropout``
        when set."""
        if self.alone_dropout is None:
            return self
        return dataclasses.replace(self, dropout=self.alone_dropout)

    @property
    def hidden_width(self) -> int:
        """Width of the state the output layer reads: the last Dense, else the pooled heads."""
        return self.hidden[-1] if self.hidden else self.embedding_dim

    @property
    def can_tie_output(self) -> bool:
        """Whether a tied output fits: the hidden state must be as wide as the item embedding."""
        return self.hidden_width == self.embedding_dim


@dataclass(frozen=True)
class DistillConfig:
    """Loss = ce_weight·CE + kd_weight·T²·KL + hint_weight·hint + rank_weight·ranking +
    relation_weight·relation: one independent weight per registered loss term
    (:mod:`edge_rec.distill.loss_terms`; 0 switches a term off).

    ``relation`` keeps the teacher's item-item cosine similarities among up to ``relation_items``
    of each batch's target items. With a sampled softmax, ``teacher_candidates`` > 0 adds each
    position's top that-many teacher items to the candidate set the KD and ranking terms compare
    on (0: positive + sampled negatives only).
    """

    ce_weight: float = param(0.3, check=at_least(0.0), expected="a number >= 0")
    kd_weight: float = param(0.7, check=at_least(0.0), expected="a number >= 0")
    hint_weight: float = param(0.0, check=at_least(0.0), expected="a number >= 0")
    rank_weight: float = param(0.0, check=at_least(0.0), expected="a number >= 0")
    relation_weight: float = param(0.0, check=at_least(0.0), expected="a number >= 0")
    temperature: float = param(1.0, check=at_least(1e-12), expected="a positive number")
    ranking_top_k: int = param(10, **POSITIVE_INT)
    ranking_lambda: float = param(5.0, check=at_least(1e-12), expected="a positive number")
    relation_items: int = param(256, check=at_least(2), expected="an integer >= 2")
    teacher_candidates: int = param(0, check=at_least(0), expected="an integer >= 0")

    def related_checks(self) -> list[tuple[bool, str, str]]:
        """Keys constrained by each other: ``(holds, key, expected)``."""
        return [(self.ce_weight + self.kd_weight > 0, "ce_weight",
                 "ce_weight + kd_weight > 0 (a student needs a target to learn from)")]

    def without_teacher(self) -> DistillConfig:
        """This config with every teacher term off (cross-entropy alone, weight 1): how a student
        trains alone, the teacher trains, and compression fine-tunes a student the teacher did
        not help. Every ``*_weight`` key but ``ce_weight`` is a teacher term's."""
        return dataclasses.replace(self, **{
            name: 1.0 if name == "ce_weight" else 0.0
            for name in self.__dataclass_fields__ if name.endswith("_weight")
        })


@dataclass(frozen=True)
class SoftmaxConfig:
    """Full or sampled softmax while training (evaluation always ranks the whole catalog).

    ``mode``: ``full``, ``sampled`` (each position's positive plus ``negatives`` shared
    popularity-sampled negatives with the logQ correction, see
    :mod:`edge_rec.distill.negative_sampler`) or ``auto``: sampled when the catalog has more than
    ``auto_min_items`` items. Pruning and QAT fine-tuning always use the full softmax (their
    wrapped output layer scores the whole catalog anyway).
    """

    mode: str = param("auto", check=one_of("auto", "full", "sampled"), expected="'auto', 'full' or 'sampled'")
    negatives: int = param(1024, **POSITIVE_INT)
    auto_min_items: int = param(5000, check=at_least(0), expected="an integer >= 0")
    power: float = param(0.75, check=at_least(0.0), expected="a number >= 0")

    def sampled_negatives(self, catalog_size: int) -> int:
        """How many shared negatives to draw for a catalog of ``catalog_size`` logits; 0 = full."""
        sampled = self.mode == "sampled" or (
            self.mode == "auto" and real_item_count(catalog_size) > self.auto_min_items
        )
        return min(self.negatives, real_item_count(catalog_size)) if sampled else 0


@dataclass(frozen=True)
class PruneConfig:
    """TF-MOT magnitude pruning, KD still on, with the sparsity chosen by measured loss.

    Fine-tuning climbs ``fit.epochs`` evenly spaced sparsity levels, one per epoch, from above
    ``initial_sparsity`` to ``target_sparsity`` (masks updated every ``frequency`` steps of each
    level's ramp), and keeps the sparsest level whose validation NDCG@10 is within ``max_loss``
    (a fraction) of the float student's; ``max_loss = 1`` always reaches the target. Layers with
    fewer than ``min_weights`` parameters stay dense: they save nothing and cost the most
    (pruning the student's 204-weight hidden layer cost more NDCG@10 than its 300k-weight tables).
    """

    enabled: bool = True
    target_sparsity: float = param(0.5, check=in_range(0.0, 1.0, closed_high=False), expected="a number in [0, 1)")
    initial_sparsity: float = 0.0
    frequency: int = param(20, **POSITIVE_INT)
    max_loss: float = param(0.01, check=in_range(0.0, 1.0), expected="a number in [0, 1] (a fraction of NDCG@10)")
    min_weights: int = param(1024, check=at_least(0), expected="an integer >= 0")
    fit: FitConfig = field(
        default_factory=lambda: FitConfig(epochs=5, batch_size=64, learning_rate=3e-3, patience=100)
    )

    def related_checks(self) -> list[tuple[bool, str, str]]:
        """Keys constrained by each other: ``(holds, key, expected)``."""
        return [(0.0 <= self.initial_sparsity <= self.target_sparsity, "initial_sparsity",
                 f"a number in [0, prune.target_sparsity = {self.target_sparsity}]")]


@dataclass(frozen=True)
class QATConfig:
    """Pruning-preserving quantization-aware training, KD still on."""

    enabled: bool = True
    fit: FitConfig = field(
        default_factory=lambda: FitConfig(epochs=2, batch_size=64, learning_rate=3e-4, patience=100)
    )


@dataclass(frozen=True)
class LowRankConfig:
    """Replace the hidden x catalog output layer by two layers of rank ``rank`` (truncated SVD)."""

    enabled: bool = False
    rank: int = param(8, **POSITIVE_INT)
    fit: FitConfig = field(default_factory=lambda: FitConfig(epochs=2, batch_size=64, patience=100))


@dataclass(frozen=True)
class ConvertConfig:
    """TFLite conversion: variants to build, top-K in the graph, calibration, parity threshold."""

    variants: tuple[str, ...] = param(VARIANTS, check=lambda names: set(names) <= set(VARIANTS),
                                      expected=f"a subset of {', '.join(VARIANTS)}")
    top_k: int = param(100, check=at_least(10), expected="an integer >= 10")
    representative_samples: int = param(256, **POSITIVE_INT)
    sparsity_encoding: bool = False
    parity_threshold: float = param(0.8, **FRACTION)


@dataclass(frozen=True)
class GateConfig:
    """Quality gate: the relative NDCG@10 drop from the shipped float student to the int8 bundle
    that still passes."""

    max_ndcg_drop: float = param(0.05, **FRACTION)


#: Most keys a role may require: a larger threshold is a typo, not a policy.
MAX_THRESHOLD = 16
THRESHOLD = {"check": in_range(1, MAX_THRESHOLD), "expected": f"an integer in 1..{MAX_THRESHOLD}"}
EXPIRY_DAYS = {"check": in_range(0.0, 3650.0, closed_low=False), "expected": "days in (0, 3650]"}


@dataclass(frozen=True)
class FeaturesConfig:
    """How item features (``data.item_features``, :mod:`edge_rec.data.item_features`) are encoded:
    tokens hashed into ``buckets`` ids, at most ``max_tokens`` per item, numeric columns in
    ``numeric_bins`` quantile bins; ``id_dropout`` is the share of items whose id part training
    drops (so the model learns to rank from features alone, as it must for a new item); a
    patched-in item's output bias is the ``new_item_bias_quantile`` quantile of the catalog's.
    ``keep_rare_items``: an item of the log with features that the minimum-count filters dropped
    stays in the catalog, represented by its features alone (like a patched item).
    ``cold_evaluation``: a build with features also measures cold items on a time split, the
    newest ``cold_share`` of the log's time held out (:mod:`edge_rec.cold_items`)."""

    buckets: int = param(8192, check=at_least(16), expected="an integer >= 16")
    max_tokens: int = param(32, **POSITIVE_INT)
    numeric_bins: int = param(8, check=at_least(2), expected="an integer >= 2")
    id_dropout: float = param(0.25, **DROPOUT)
    new_item_bias_quantile: float = param(0.5, **FRACTION)
    keep_rare_items: bool = True
    cold_evaluation: bool = True
    cold_share: float = param(0.1, check=in_range(0.0, 0.5, closed_low=False), expected="a number in (0, 0.5]")


@dataclass(frozen=True)
class SigningConfig:
    """Signed updates (``edge-rec keys``, ``edge-rec publish``; TUF roles): how many keys must
    sign each role's metadata (its threshold: ``keys init`` and ``keys rotate`` make that many
    keys) and how many days each role's metadata stays valid before it must be re-signed (a device
    refuses expired metadata: the freeze defence). Thresholds take effect when the role's keys
    are made; expiries at every signing."""

    root_threshold: int = param(1, **THRESHOLD)
    targets_threshold: int = param(1, **THRESHOLD)
    snapshot_threshold: int = param(1, **THRESHOLD)
    timestamp_threshold: int = param(1, **THRESHOLD)
    root_expiry_days: float = param(365.0, **EXPIRY_DAYS)
    targets_expiry_days: float = param(90.0, **EXPIRY_DAYS)
    snapshot_expiry_days: float = param(7.0, **EXPIRY_DAYS)
    timestamp_expiry_days: float = param(1.0, **EXPIRY_DAYS)

    def threshold(self, role: str) -> int:
        """The threshold of TUF role ``role`` (root, targets, snapshot or timestamp)."""
        return getattr(self, f"{role}_threshold")

    def expiry_days(self, role: str) -> float:
        """How many days a new version of ``role``'s metadata stays valid."""
        return getattr(self, f"{role}_expiry_days")


@dataclass(frozen=True)
class EdgeRecConfig:
    """The whole pipeline configuration.

    ``time_budget`` (e.g. ``"20m"``, ``"1.5h"``, ``"900s"``; empty = none) caps the training
    stages of a build (:mod:`edge_rec.time_budget`). ``provenance`` maps each dotted key set by a
    layer above the defaults to that layer (:data:`LAYERS`: ``log: <reason>``, ``file <path>``,
    ``preset <name>``, ``flag``); ``explicit`` is the keys the user set (file, profile or
    flags). Neither is a TOML key. ``sections`` holds the sections of passes
    registered beyond the built-in ones (:meth:`section` reads any section by name).
    """

    seed: int = 0
    time_budget: str = ""
    data: DataConfig = field(default_factory=DataConfig)
    teacher: TeacherConfig = field(default_factory=TeacherConfig)
    student: StudentConfig = field(default_factory=StudentConfig)
    distill: DistillConfig = field(default_factory=DistillConfig)
    softmax: SoftmaxConfig = field(default_factory=SoftmaxConfig)
    prune: PruneConfig = field(default_factory=PruneConfig)
    qat: QATConfig = field(default_factory=QATConfig)
    lowrank: LowRankConfig = field(default_factory=LowRankConfig)
    convert: ConvertConfig = field(default_factory=ConvertConfig)
    gate: GateConfig = field(default_factory=GateConfig)
    signing: SigningConfig = field(default_factory=SigningConfig)
    features: FeaturesConfig = field(default_factory=FeaturesConfig)
    sections: Mapping[str, Any] = field(default_factory=dict)
    provenance: Mapping[str, str] = field(default_factory=dict, compare=False, repr=False)

    @property
    def explicit(self) -> frozenset[str]:
        """The dotted keys the user set (config file, preset or flags), not the log's sizing."""
        return frozenset(key for key, layer in self.provenance.items() if not layer.startswith(LOG_LAYER))

    def section(self, name: str) -> Any:
        """The config section ``name``: a built-in one, a registered pass's as loaded, or that
        pass's defaults when the file did not set it."""
        if name in _BUILTIN_SECTIONS:
            return getattr(self, name)
        if name in self.sections:
            return self.sections[name]
        return _registered_sections()[name]()


#: Keys that were renamed -> what to write instead (named in the unknown-key error).
RENAMED_KEYS = {
    "distill.alpha": "distill.ce_weight (and distill.kd_weight, which was 1 - alpha)",
    "distill.beta": "distill.hint_weight",
    "distill.gamma": "distill.rank_weight",
    "distill.delta": "distill.relation_weight",
}

#: The layers of a resolved config, lowest first: a key takes the value of the highest layer that
#: sets it (the log's sizing fills only keys no user layer set).
LAYERS = ("default", "log", "file", "preset", "flag")
LOG_LAYER = "log"

#: Fields of a config that are bookkeeping, not TOML keys.
_NOT_KEYS = frozenset({"provenance", "sections"})
_BUILTIN_SECTIONS = frozenset(f.name for f in fields(EdgeRecConfig) if is_dataclass(f.default_factory))


def _registered_sections() -> dict[str, type]:
    """Section name -> config type of every registered pass that is not a built-in section."""
    from edge_rec.passes.registry import config_sections

    return {name: kind for name, kind in config_sections().items() if name not in _BUILTIN_SECTIONS}


def _dotted_keys(base: Any, table: Mapping[str, Any], prefix: str = "") -> frozenset[str]:
    """Every leaf key ``table`` sets, as dotted names (``teacher.fit.epochs``)."""
    keys: set[str] = set()
    for name, value in table.items():
        if isinstance(value, Mapping):  # a section (no config key holds a table)
            keys |= _dotted_keys(None, value, f"{prefix}{name}.")
        else:
            keys.add(f"{prefix}{name}")
    return frozenset(keys)


def parse_duration(text: str, *, where: str = "time_budget") -> float | None:
    """Seconds in ``"90s"``, ``"20m"``, ``"1.5h"`` or a bare number of seconds; None for ``""``.

    Raises :class:`ConfigError` naming ``where`` for anything else or a value <= 0.
    """
    text = text.strip().lower()
    if not text:
        return None
    units = {"s": 1.0, "m": 60.0, "h": 3600.0}
    number, unit = (text[:-1], text[-1]) if text[-1] in units else (text, "s")
    try:
        seconds = float(number) * units[unit]
    except ValueError:
        seconds = -1.0
    if not seconds > 0 or seconds != seconds or seconds == float("inf"):
        raise ConfigError(
            f"{where}: expected a positive duration such as '90s', '20m' or '1.5h', got {text!r}"
        )
    return seconds


def _coerce(value: Any, annotation: Any, where: str) -> Any:
    """Check ``value`` against a dataclass field annotation and convert lists to tuples."""
    origin = typing.get_origin(annotation)
    if origin in (typing.Union, getattr(types, "UnionType", typing.Union)):
        args = typing.get_args(annotation)
        if value is None and type(None) in args:
            return None
        errors = []
        for arg in args:
            if arg is type(None):
                continue
            try:
                return _coerce(value, arg, where)
            except ConfigError as exc:
                errors.append(str(exc))
        raise ConfigError(errors[0] if errors else f"{where}: invalid value {value!r}")
    if is_dataclass(annotation):
        if not isinstance(value, Mapping):
            raise ConfigError(f"{where}: expected a table, got {type(value).__name__}")
        return _merge(annotation(), value, where)
    if origin is tuple:
        (item_type, *_rest) = typing.get_args(annotation)
        if not isinstance(value, (list, tuple)):
            raise ConfigError(f"{where}: expected a list, got {value!r}")
        return tuple(_coerce(v, item_type, f"{where}[{i}]") for i, v in enumerate(value))
    if annotation is float:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ConfigError(f"{where}: expected a number, got {value!r}")
        return float(value)
    if annotation is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise ConfigError(f"{where}: expected an integer, got {value!r}")
        return value
    if annotation is bool:
        if not isinstance(value, bool):
            raise ConfigError(f"{where}: expected true or false, got {value!r}")
        return value
    if annotation is str:
        if not isinstance(value, str):
            raise ConfigError(f"{where}: expected a string, got {value!r}")
        return value
    return value


def _field_types(cls: type) -> dict[str, Any]:
    """The evaluated annotation of each field of a config dataclass. On Python 3.9 an ``X | None``
    annotation cannot be evaluated by ``typing.get_type_hints``; it is read as ``Optional[X]``."""
    try:
        return typing.get_type_hints(cls)
    except TypeError:
        namespace = vars(sys.modules[cls.__module__])
        hints = {}
        for f in fields(cls):
            if not isinstance(f.type, str):
                hints[f.name] = f.type
                continue
            parts = [type(None) if part.strip() == "None" else eval(part.strip(), namespace)
                     for part in f.type.split("|")]
            hints[f.name] = typing.Union[tuple(parts)] if len(parts) > 1 else parts[0]  # noqa: UP007 (Python 3.9)
        return hints


def _merge(base: Any, table: Mapping[str, Any], where: str) -> Any:
    hints = _field_types(type(base))
    known = {f.name for f in fields(base)} - _NOT_KEYS
    registered = _registered_sections() if isinstance(base, EdgeRecConfig) else {}
    unknown = sorted(set(table) - known - set(registered))
    renamed = [f"{key} is now {RENAMED_KEYS[f'{where}.{key}'.lstrip('.')]}" for key in unknown
               if f"{where}.{key}".lstrip(".") in RENAMED_KEYS]
    if unknown:
        raise ConfigError(
            f"{where}: unknown key(s) {', '.join(unknown)}; expected one of {', '.join(sorted(known | set(registered)))}"
            + (f" ({'; '.join(renamed)})" if renamed else "")
        )
    changes: dict[str, Any] = {}
    sections = dict(base.sections) if registered else {}
    for name, value in table.items():
        if name in registered:
            if not isinstance(value, Mapping):
                raise ConfigError(f"{where}.{name}: expected a table, got {type(value).__name__}")
            sections[name] = _merge(base.section(name), value, f"{where}.{name}")
            continue
        current = getattr(base, name)
        if is_dataclass(current) and isinstance(value, Mapping):
            changes[name] = _merge(current, value, f"{where}.{name}")
        else:
            changes[name] = _coerce(value, hints[name], f"{where}.{name}")
    if registered:
        changes["sections"] = sections
    return dataclasses.replace(base, **changes)


def validate_section(section: Any, where: str) -> None:
    """Check every key of a config section against the constraint declared beside it
    (:func:`param`), then the section's ``related_checks``, recursing into nested sections.
    Raises :class:`ConfigError` ``"<where>.<key>: expected ..., got ..."`` for the first failure."""
    for f in fields(section):
        if f.name in _NOT_KEYS:
            continue
        value = getattr(section, f.name)
        if is_dataclass(value):
            validate_section(value, f"{where}.{f.name}")
        elif f.metadata.get("check") is not None and not f.metadata["check"](value):
            raise ConfigError(f"{where}.{f.name}: expected {f.metadata['expected']}, got {value!r}")
    for ok, key, expected in getattr(section, "related_checks", lambda: [])():
        if not ok:
            raise ConfigError(f"{where}.{key}: expected {expected}, got {getattr(section, key)!r}")


def _validate(cfg: EdgeRecConfig) -> None:
    """Every section's declared constraints, the registered passes' sections and the budget."""
    parse_duration(cfg.time_budget)
    for name in sorted(_BUILTIN_SECTIONS):
        validate_section(getattr(cfg, name), name)
    for name, section in cfg.sections.items():
        validate_section(section, name)


def config_from_dict(table: Mapping[str, Any], *, source: str = "<config>") -> EdgeRecConfig:
    """Build and validate an :class:`EdgeRecConfig` from a parsed TOML table.

    A ``[preset.NAME]`` table is not part of the config itself; see :func:`load_config`.
    """
    table = {k: v for k, v in table.items() if k != "preset"}
    try:
        cfg = _merge(EdgeRecConfig(), table, "")
    except ConfigError as exc:
        raise ConfigError(f"{source}: {str(exc).lstrip('.')}") from None
    cfg = dataclasses.replace(cfg, provenance=dict.fromkeys(_dotted_keys(cfg, table), f"file {source}"))
    try:
        _validate(cfg)
    except ConfigError as exc:
        raise ConfigError(f"{source}: {exc}") from None
    return cfg


def apply_overrides(cfg: EdgeRecConfig, overrides: Mapping[str, Any], *, source: str,
                    layer: str | None = None) -> EdgeRecConfig:
    """Return ``cfg`` with a nested table of overrides applied (validated like a file); the keys
    set are recorded in ``provenance`` as set by ``layer`` (``source`` when None)."""
    try:
        new = _merge(cfg, overrides, "")
        _validate(new)
    except ConfigError as exc:
        raise ConfigError(f"{source}: {str(exc).lstrip('.')}") from None
    return dataclasses.replace(new, provenance={**cfg.provenance,
                                                **dict.fromkeys(_dotted_keys(cfg, overrides), layer or source)})


def load_config(path: str | Path | None, *, preset: str | None = None) -> EdgeRecConfig:
    """Load a TOML config (defaults when ``path`` is None), then apply ``[preset.<preset>]`` (or
    the built-in preset of that name).

    Raises :class:`ConfigError` naming the file and field for unreadable TOML, unknown keys,
    wrong types, out-of-range values or an unknown preset.
    """
    if path is None:
        table: dict[str, Any] = {}
        source = "<defaults>"
    else:
        path = Path(path)
        source = str(path)
        try:
            table = loads_toml(path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise ConfigError(f"{source}: no such config file") from None
        except TOMLDecodeError as exc:
            raise ConfigError(f"{source}: not valid TOML ({exc})") from None
    presets = table.get("preset", {})
    cfg = config_from_dict(table, source=source)
    if preset is not None:
        if preset not in presets:
            builtin = builtin_preset(preset)
            if builtin is None:
                known = sorted(set(presets) | set(BUILTIN_PRESETS))
                raise ConfigError(
                    f"{source}: unknown preset {preset!r}; expected one of {', '.join(known) or '(none)'}"
                )
            overrides = builtin
        else:
            overrides = presets[preset]
        cfg = apply_overrides(cfg, overrides, source=f"{source} [preset.{preset}]", layer=f"preset {preset}")
    return cfg


def resolve_config(path: str | Path | None, *, preset: str | None = None,
                   flags: Mapping[str, Any] | None = None) -> EdgeRecConfig:
    """The one resolver of a config: built-in defaults < config file < config preset < flags
    (a nested table of command-line values), each validated with the source named in errors.
    The log's sizing (:func:`edge_rec.sizing.size_for_log`) fills the keys none of them set."""
    cfg = load_config(path, preset=preset)
    if flags:
        cfg = apply_overrides(cfg, flags, source="command-line flags", layer="flag")
    return cfg


def config_provenance(cfg: EdgeRecConfig) -> dict[str, dict[str, Any]]:
    """Every leaf key of ``cfg`` (dotted) -> ``{"value": ..., "layer": ...}``, the layer that set it
    (``default`` when none did): what ``edge-rec config show`` prints and the report stores."""
    out: dict[str, dict[str, Any]] = {}

    def walk(table: Mapping[str, Any], prefix: str) -> None:
        for key, value in table.items():
            if isinstance(value, dict):
                walk(value, f"{prefix}{key}.")
            else:
                out[f"{prefix}{key}"] = {"value": value, "layer": cfg.provenance.get(f"{prefix}{key}", "default")}

    walk(config_to_dict(cfg), "")
    return out


def config_to_dict(cfg: Any) -> dict[str, Any]:
    """A plain, JSON- and TOML-friendly dict of a config (tuples become lists)."""
    out: dict[str, Any] = {}
    for f in fields(cfg):
        if f.name in _NOT_KEYS:
            continue
        value = getattr(cfg, f.name)
        if is_dataclass(value):
            out[f.name] = config_to_dict(value)
        elif isinstance(value, tuple):
            out[f.name] = list(value)
        else:
            out[f.name] = value
    for name, section in getattr(cfg, "sections", {}).items():
        out[name] = config_to_dict(section)
    return out


#: Built-in config presets by name; each pass adds its section's ``quick`` overrides to ``quick``
#: (:func:`builtin_preset`).
BUILTIN_PRESETS: dict[str, dict[str, Any]] = {
    #: tiny sizes and one or two epochs, for tests and smoke runs
    "quick": {"data": {"synthetic_users": 300, "synthetic_items": 200, "history_length": 20}},
}


def builtin_preset(name: str) -> dict[str, Any] | None:
    """The overrides of the built-in preset ``name`` (None for an unknown name): its own tables
    plus, for ``quick``, every registered pass's ``quick`` overrides of its section."""
    if name not in BUILTIN_PRESETS:
        return None
    from edge_rec.passes.registry import quick_overrides

    passes = quick_overrides() if name == "quick" else {}
    return {**passes, **BUILTIN_PRESETS[name]}
