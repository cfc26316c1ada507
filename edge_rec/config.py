"""Typed, frozen configuration for every pipeline stage, loaded from TOML.

A config file has one table per stage (``[data]``, ``[teacher]``, ``[student]``, ``[distill]``,
``[prune]``, ``[qat]``, ``[lowrank]``, ``[convert]``, ``[gate]``) plus a top-level ``seed``.
Every key is optional; unknown keys and wrong types are errors that name the file and the field.
``[profile.quick]`` style overrides are applied with :func:`apply_overrides`.
"""

from __future__ import annotations

import dataclasses
import types
import typing
from collections.abc import Mapping
from dataclasses import dataclass, field, fields, is_dataclass
from pathlib import Path
from typing import Any

import tomllib

from converters.variants import VARIANTS


class ConfigError(ValueError):
    """A configuration file or override is invalid; the message names the file and field."""


@dataclass(frozen=True)
class FitConfig:
    """How one Keras model is fitted: epochs, batch size, learning rate, early-stopping patience.

    ``schedule`` is ``constant`` or ``cosine`` (linear warm-up over ``warmup_epochs``, then a
    cosine decay over the remaining epochs); ``weight_decay`` > 0 uses AdamW (decoupled decay).
    ``length_buckets`` batches rows of similar length together (fewer padded slots computed, but
    short histories then weigh more in the loss: off by default, see
    :mod:`edge_rec.distill.training_input`).
    """

    epochs: int = 10
    batch_size: int = 64
    learning_rate: float = 1e-3
    patience: int = 3
    schedule: str = "constant"
    warmup_epochs: float = 0.0
    weight_decay: float = 0.0
    length_buckets: bool = False


@dataclass(frozen=True)
class DataConfig:
    """Where the interaction log comes from and how it becomes sequences.

    ``source`` is a synthetic preset name (``synthetic-tv``, ``synthetic-speaker``, ``synthetic-bulk``) or a path.

    ``validation_share`` (in (0, 1]): the share of users whose second-to-last item is held out
    for validation (early stopping and every choice made on validation), at least
    :data:`~edge_rec.data.split.MIN_VALIDATION_USERS` users; every other user trains on that
    item (:class:`~edge_rec.data.split.LeaveLastOutSplit`). 1 is the classic leave-last-out split.
    Every user's last item stays the test target either way.
    """

    source: str = "synthetic-tv"
    format: str = "auto"
    on_bad_line: str = "error"
    synthetic_users: int | None = None
    synthetic_items: int | None = None
    min_user_interactions: int = 5
    min_item_interactions: int = 5
    history_length: int = 50
    validation_share: float = 1.0


@dataclass(frozen=True)
class TeacherConfig:
    """The large sequential teacher: ``kind`` is ``sasrec`` (causal self-attention) or ``gru``.

    ``tie_output`` (on by default; the GRU teacher ignores it and keeps its ``Dense``) scores the last hidden state against the item
    embedding table (SASRec's shared prediction layer) instead of a separate output ``Dense``: on
    the shared real log (seed 0, default build, 20-minute budget) it took the teacher's test
    NDCG@10 from 0.0654 to 0.0709 (1.25x to 1.37x the student alone) and the distilled student's
    from 0.0623 to 0.0646; on the weak-order preset from 0.0657 to 0.0788 (dropout 0.2).

    ``members`` (>= 1): how many teachers of this kind are trained, each from its own seed, and
    averaged into one (:mod:`edge_rec.models.averaged_teacher`); 1 is a single teacher.
    """

    kind: str = "sasrec"
    members: int = 1
    hidden: int = 128
    blocks: int = 2
    heads: int = 2
    dropout: float = 0.2
    tie_output: bool = True
    fit: FitConfig = field(
        default_factory=lambda: FitConfig(epochs=8, batch_size=64, learning_rate=3e-3, patience=2)
    )


@dataclass(frozen=True)
class StudentConfig:
    """The small int8-friendly student.

    ``pooling`` is ``mean`` (masked mean) or ``position`` (learned position-weighted mean);
    ``warm_start`` initialises item embeddings from the teacher's by PCA. ``tie_output`` scores
    the last hidden state against the item embedding table instead of a separate output Dense
    (parameter sharing; the last hidden width must equal ``embedding_dim``): on synthetic-tv a
    tied 30-wide student (87,988 params) reached 1.02x the teacher's NDCG@10 in float, but the
    int8 file holds the table twice (per-tensor for the lookup, per-channel for the output), so
    it is off by default. ``initial_decay`` sets
    the starting recency weights ``exp(-decay * distance)`` of the position pooling.

    ``alone_dropout`` is the dropout of the student trained without a teacher (``None``: the
    same ``dropout``). The teacher's soft labels regularise a distilled student; one trained alone
    has only hard labels and overfits sooner, so the baseline distillation is measured against
    (and the student shipped when distillation does not pay) gets its own rate.
    """

    embedding_dim: int = 16
    hidden: tuple[int, ...] = (12,)
    pooling: str = "position"
    tie_output: bool = False
    warm_start: bool = True
    dropout: float = 0.1
    alone_dropout: float | None = None
    initial_decay: float = 0.3
    fit: FitConfig = field(
        default_factory=lambda: FitConfig(epochs=8, batch_size=16, learning_rate=1e-2, patience=2)
    )

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
    """Loss = alpha*CE + (1-alpha)*T^2*KL + beta*hint + gamma*ranking + delta*relation.

    Each term can be off (weight 0). ``relation`` keeps the teacher's item-item cosine
    similarities among up to ``relation_items`` of each batch's target items. With a sampled
    softmax, ``teacher_candidates`` > 0 adds each position's top that-many teacher items to the
    candidate set the KD and ranking terms compare on (0: positive + sampled negatives only).
    """

    alpha: float = 0.3
    temperature: float = 1.0
    beta: float = 0.0
    gamma: float = 0.0
    delta: float = 0.0
    ranking_top_k: int = 10
    ranking_lambda: float = 5.0
    relation_items: int = 256
    teacher_candidates: int = 0

    #: The keys that switch the teacher off: cross-entropy alone.
    NO_TEACHER = {"alpha": 1.0, "beta": 0.0, "gamma": 0.0, "delta": 0.0}

    def without_teacher(self) -> DistillConfig:
        """This config with every teacher term off (α = 1): how a student trains alone, the
        teacher trains, and compression fine-tunes a student the teacher did not help."""
        return dataclasses.replace(self, **self.NO_TEACHER)


@dataclass(frozen=True)
class SoftmaxConfig:
    """Full or sampled softmax while training (evaluation always ranks the whole catalog).

    ``mode``: ``full``, ``sampled`` (each position's positive plus ``negatives`` shared
    popularity-sampled negatives with the logQ correction, see
    :mod:`edge_rec.distill.negative_sampler`) or ``auto``: sampled when the catalog has more than
    ``auto_min_items`` items. Pruning and QAT fine-tuning always use the full softmax (their
    wrapped output layer scores the whole catalog anyway).
    """

    mode: str = "auto"
    negatives: int = 1024
    auto_min_items: int = 5000
    power: float = 0.75

    def sampled_negatives(self, catalog_size: int) -> int:
        """How many shared negatives to draw for a catalog of ``catalog_size`` logits; 0 = full."""
        sampled = self.mode == "sampled" or (
            self.mode == "auto" and catalog_size - 2 > self.auto_min_items
        )
        return min(self.negatives, catalog_size - 2) if sampled else 0


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
    target_sparsity: float = 0.5
    initial_sparsity: float = 0.0
    frequency: int = 20
    max_loss: float = 0.01
    min_weights: int = 1024
    fit: FitConfig = field(
        default_factory=lambda: FitConfig(epochs=5, batch_size=64, learning_rate=3e-3, patience=100)
    )


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
    rank: int = 8
    fit: FitConfig = field(default_factory=lambda: FitConfig(epochs=2, batch_size=64, patience=100))


@dataclass(frozen=True)
class ConvertConfig:
    """TFLite conversion: variants to build, top-K in the graph, calibration, parity threshold."""

    variants: tuple[str, ...] = VARIANTS
    top_k: int = 100
    representative_samples: int = 256
    sparsity_encoding: bool = False
    parity_threshold: float = 0.8


@dataclass(frozen=True)
class GateConfig:
    """Quality gate: the relative NDCG@10 drop from teacher to int8 that still passes."""

    max_ndcg_drop: float = 0.05


@dataclass(frozen=True)
class EdgeRecConfig:
    """The whole pipeline configuration.

    ``time_budget`` (e.g. ``"20m"``, ``"1.5h"``, ``"900s"``; empty = none) caps the training
    stages of a build (:mod:`edge_rec.time_budget`). ``explicit`` lists the dotted keys the user
    set (file, profile or flags); every other size is derived from the log
    (:mod:`edge_rec.sizing`). It is not a TOML key.
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
    explicit: frozenset[str] = field(default=frozenset(), compare=False, repr=False)


#: Fields of a config that are bookkeeping, not TOML keys.
_NOT_KEYS = frozenset({"explicit"})


def _dotted_keys(base: Any, table: Mapping[str, Any], prefix: str = "") -> frozenset[str]:
    """Every leaf key ``table`` sets, as dotted names (``teacher.fit.epochs``)."""
    keys: set[str] = set()
    for name, value in table.items():
        current = getattr(base, name, None)
        if is_dataclass(current) and isinstance(value, Mapping):
            keys |= _dotted_keys(current, value, f"{prefix}{name}.")
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
    if origin in (typing.Union, types.UnionType):
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
        if not isinstance(value, list | tuple):
            raise ConfigError(f"{where}: expected a list, got {value!r}")
        return tuple(_coerce(v, item_type, f"{where}[{i}]") for i, v in enumerate(value))
    if annotation is float:
        if isinstance(value, bool) or not isinstance(value, int | float):
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


def _merge(base: Any, table: Mapping[str, Any], where: str) -> Any:
    hints = typing.get_type_hints(type(base))
    known = {f.name for f in fields(base)} - _NOT_KEYS
    unknown = sorted(set(table) - known)
    if unknown:
        raise ConfigError(
            f"{where}: unknown key(s) {', '.join(unknown)}; expected one of {', '.join(sorted(known))}"
        )
    changes = {}
    for name, value in table.items():
        current = getattr(base, name)
        if is_dataclass(current) and isinstance(value, Mapping):
            changes[name] = _merge(current, value, f"{where}.{name}")
        else:
            changes[name] = _coerce(value, hints[name], f"{where}.{name}")
    return dataclasses.replace(base, **changes)


def _fit_checks(stage: str, fit: FitConfig) -> list[tuple[bool, str, str]]:
    """Range checks of one stage's ``fit`` table."""
    where = f"{stage}.fit"
    return [
        (fit.epochs >= 1, f"{where}.epochs", "an integer >= 1"),
        (fit.batch_size >= 1, f"{where}.batch_size", "an integer >= 1"),
        (fit.learning_rate > 0, f"{where}.learning_rate", "a positive number"),
        (fit.patience >= 1, f"{where}.patience", "an integer >= 1"),
        (fit.schedule in ("constant", "cosine"), f"{where}.schedule", "'constant' or 'cosine'"),
        (0.0 <= fit.warmup_epochs <= fit.epochs, f"{where}.warmup_epochs",
         f"a number in [0, {where}.epochs]"),
        (fit.weight_decay >= 0, f"{where}.weight_decay", "a number >= 0"),
    ]


def _validate(cfg: EdgeRecConfig) -> None:
    checks = [
        (cfg.teacher.kind in ("sasrec", "gru"), "teacher.kind", "'sasrec' or 'gru'"),
        (cfg.student.pooling in ("mean", "position"), "student.pooling", "'mean' or 'position'"),
        (cfg.student.initial_decay >= 0, "student.initial_decay", "a number >= 0"),
        (
            not cfg.student.tie_output or cfg.student.can_tie_output,
            "student.hidden",
            f"a last width equal to student.embedding_dim ({cfg.student.embedding_dim}) when "
            "student.tie_output is true (the output scores against the embedding table)",
        ),
        (0.0 <= cfg.distill.alpha <= 1.0, "distill.alpha", "a number in [0, 1]"),
        (cfg.distill.temperature > 0, "distill.temperature", "a positive number"),
        (cfg.softmax.mode in ("auto", "full", "sampled"), "softmax.mode", "'auto', 'full' or 'sampled'"),
        (cfg.softmax.negatives >= 1, "softmax.negatives", "an integer >= 1"),
        (cfg.softmax.power >= 0, "softmax.power", "a number >= 0"),
        (cfg.distill.delta >= 0, "distill.delta", "a number >= 0"),
        (cfg.distill.relation_items >= 2, "distill.relation_items", "an integer >= 2"),
        (0.0 <= cfg.prune.target_sparsity < 1.0, "prune.target_sparsity", "a number in [0, 1)"),
        (cfg.data.history_length >= 2, "data.history_length", "an integer >= 2"),
        (0.0 < cfg.data.validation_share <= 1.0, "data.validation_share", "a number in (0, 1]"),
        (cfg.data.on_bad_line in ("error", "skip"), "data.on_bad_line", "'error' or 'skip'"),
        (
            set(cfg.convert.variants) <= set(VARIANTS),
            "convert.variants",
            f"a subset of {', '.join(VARIANTS)}",
        ),
        (cfg.convert.top_k >= 10, "convert.top_k", "an integer >= 10"),
        (0.0 <= cfg.gate.max_ndcg_drop <= 1.0, "gate.max_ndcg_drop", "a number in [0, 1]"),
        (cfg.teacher.hidden >= 1, "teacher.hidden", "an integer >= 1"),
        (cfg.teacher.members >= 1, "teacher.members", "an integer >= 1"),
        (cfg.teacher.blocks >= 1, "teacher.blocks", "an integer >= 1"),
        (cfg.teacher.heads >= 1, "teacher.heads", "an integer >= 1"),
        (
            cfg.teacher.kind != "sasrec" or cfg.teacher.hidden % max(1, cfg.teacher.heads) == 0,
            "teacher.hidden",
            f"a multiple of teacher.heads ({cfg.teacher.heads})",
        ),
        (0.0 <= cfg.teacher.dropout < 1.0, "teacher.dropout", "a number in [0, 1)"),
        (cfg.student.embedding_dim >= 1, "student.embedding_dim", "an integer >= 1"),
        (all(w >= 1 for w in cfg.student.hidden), "student.hidden", "a list of integers >= 1"),
        (0.0 <= cfg.student.dropout < 1.0, "student.dropout", "a number in [0, 1)"),
        (cfg.student.alone_dropout is None or 0.0 <= cfg.student.alone_dropout < 1.0, "student.alone_dropout",
         "a number in [0, 1)"),
        (cfg.data.min_user_interactions >= 3, "data.min_user_interactions",
         "an integer >= 3 (a training, a validation and a test item per user)"),
        (cfg.data.min_item_interactions >= 1, "data.min_item_interactions", "an integer >= 1"),
        (cfg.data.synthetic_users is None or cfg.data.synthetic_users >= 10, "data.synthetic_users",
         "an integer >= 10"),
        (cfg.data.synthetic_items is None or cfg.data.synthetic_items >= 10, "data.synthetic_items",
         "an integer >= 10"),
        (cfg.distill.beta >= 0, "distill.beta", "a number >= 0"),
        (cfg.distill.gamma >= 0, "distill.gamma", "a number >= 0"),
        (cfg.distill.ranking_top_k >= 1, "distill.ranking_top_k", "an integer >= 1"),
        (cfg.distill.teacher_candidates >= 0, "distill.teacher_candidates", "an integer >= 0"),
        (cfg.distill.ranking_lambda > 0, "distill.ranking_lambda", "a positive number"),
        (cfg.softmax.auto_min_items >= 0, "softmax.auto_min_items", "an integer >= 0"),
        (0.0 <= cfg.prune.initial_sparsity <= cfg.prune.target_sparsity, "prune.initial_sparsity",
         f"a number in [0, prune.target_sparsity = {cfg.prune.target_sparsity}]"),
        (cfg.prune.frequency >= 1, "prune.frequency", "an integer >= 1"),
        (cfg.prune.min_weights >= 0, "prune.min_weights", "an integer >= 0"),
        (0.0 <= cfg.prune.max_loss <= 1.0, "prune.max_loss", "a number in [0, 1] (a fraction of NDCG@10)"),
        (cfg.lowrank.rank >= 1, "lowrank.rank", "an integer >= 1"),
        (cfg.convert.representative_samples >= 1, "convert.representative_samples", "an integer >= 1"),
        (0.0 <= cfg.convert.parity_threshold <= 1.0, "convert.parity_threshold", "a number in [0, 1]"),
        *(
            check
            for stage in ("teacher", "student", "prune", "qat", "lowrank")
            for check in _fit_checks(stage, getattr(cfg, stage).fit)
        ),
    ]
    parse_duration(cfg.time_budget)
    for ok, name, expected in checks:
        if not ok:
            raise ConfigError(f"{name}: expected {expected}, got {_lookup(cfg, name)!r}")


def _lookup(cfg: Any, dotted: str) -> Any:
    for part in dotted.split("."):
        cfg = getattr(cfg, part)
    return cfg


def config_from_dict(table: Mapping[str, Any], *, source: str = "<config>") -> EdgeRecConfig:
    """Build and validate an :class:`EdgeRecConfig` from a parsed TOML table.

    A ``[profile.NAME]`` table is not part of the config itself; see :func:`load_config`.
    """
    table = {k: v for k, v in table.items() if k != "profile"}
    try:
        cfg = _merge(EdgeRecConfig(), table, "")
    except ConfigError as exc:
        raise ConfigError(f"{source}: {str(exc).lstrip('.')}") from None
    cfg = dataclasses.replace(cfg, explicit=_dotted_keys(cfg, table))
    try:
        _validate(cfg)
    except ConfigError as exc:
        raise ConfigError(f"{source}: {exc}") from None
    return cfg


def apply_overrides(cfg: EdgeRecConfig, overrides: Mapping[str, Any], *, source: str) -> EdgeRecConfig:
    """Return ``cfg`` with a nested table of overrides applied (validated like a file)."""
    try:
        new = _merge(cfg, overrides, "")
        _validate(new)
    except ConfigError as exc:
        raise ConfigError(f"{source}: {str(exc).lstrip('.')}") from None
    return dataclasses.replace(new, explicit=cfg.explicit | _dotted_keys(cfg, overrides))


def load_config(path: str | Path | None, *, profile: str | None = None) -> EdgeRecConfig:
    """Load a TOML config (defaults when ``path`` is None), then apply ``[profile.<profile>]``.

    Raises :class:`ConfigError` naming the file and field for unreadable TOML, unknown keys,
    wrong types, out-of-range values or an unknown profile.
    """
    if path is None:
        table: dict[str, Any] = {}
        source = "<defaults>"
    else:
        path = Path(path)
        source = str(path)
        try:
            table = tomllib.loads(path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise ConfigError(f"{source}: no such config file") from None
        except tomllib.TOMLDecodeError as exc:
            raise ConfigError(f"{source}: not valid TOML ({exc})") from None
    profiles = table.get("profile", {})
    cfg = config_from_dict(table, source=source)
    if profile is not None:
        if profile not in profiles:
            builtin = BUILTIN_PROFILES.get(profile)
            if builtin is None:
                known = sorted(set(profiles) | set(BUILTIN_PROFILES))
                raise ConfigError(
                    f"{source}: unknown profile {profile!r}; expected one of {', '.join(known) or '(none)'}"
                )
            overrides = builtin
        else:
            overrides = profiles[profile]
        cfg = apply_overrides(cfg, overrides, source=f"{source} [profile.{profile}]")
    return cfg


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
    return out


#: ``--profile quick``: tiny sizes and one or two epochs, for tests and smoke runs.
BUILTIN_PROFILES: dict[str, dict[str, Any]] = {
    "quick": {
        "data": {"synthetic_users": 300, "synthetic_items": 200, "history_length": 20},
        "teacher": {"hidden": 32, "blocks": 1, "fit": {"epochs": 2, "batch_size": 64}},
        "student": {"embedding_dim": 8, "hidden": [16], "fit": {"epochs": 2, "batch_size": 64}},
        "prune": {"fit": {"epochs": 1}},
        "qat": {"fit": {"epochs": 1}},
        "lowrank": {"rank": 4, "fit": {"epochs": 1}},
        "convert": {"representative_samples": 32, "top_k": 50},
    }
}
