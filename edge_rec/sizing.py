"""Defaults that fit the log: one rule from the log's shape to the sizes a build uses.

Sizes are derived only for keys no user layer set (config file, preset or flag:
:attr:`~edge_rec.config.EdgeRecConfig.explicit`); each choice is returned with its reason for the
report and recorded as the ``log`` layer of the config's provenance. The rule:

- **history length**: the 90th percentile of the users' sequence lengths, rounded up to a
  multiple of 10, within [10, 50].
- **validation users**: :data:`VALIDATION_SHARE` of the users, at least
  :data:`~edge_rec.data.split.MIN_VALIDATION_USERS` (all of them on smaller logs), validate on
  their second-to-last item; every other user trains on it. Every user's last item tests.
- **teacher width**: 64 under :data:`SMALL_LOG_INTERACTIONS` interactions, else 128.
- **teacher dropout**: 0.5 when the median history is under :data:`LONG_HISTORY_MEDIAN` items, else 0.2
  (SASRec's settings for sparse and dense logs).
- **teacher members**: as many averaged teachers as keep the teacher's training work within one
  teacher's on a :data:`TEACHER_WORK_INTERACTIONS`-interaction log, at most
  :data:`MAX_TEACHER_MEMBERS`; under a time budget a member starts only when the ones before it
  converged and the time left can train it (:func:`edge_rec.stages.train_teacher`).
- **teacher schedule**: up to 40 epochs, one warm-up epoch and a cosine decay from 1e-3, early
  stopping after 4 epochs without validation gain (best weights kept); batch 128 from 5,000
  users, else 64.
- **student width**: :data:`WIDE_STUDENT` while its int8 file stays under
  :data:`STUDENT_FILE_BYTES` (derived from the smart-speaker profile), else :data:`NARROW_STUDENT`.
- **student alone dropout**: :data:`ALONE_DROPOUT` for the student trained without a teacher,
  only when the rule also sets the student's epochs.
- **student schedule**: 20 epochs of a cosine decay run to the end (patience = epochs, best epoch
  kept); batch 64 from 10,000 users, else 16; pruning fine-tunes at the student's batch size.

Under a time budget every cosine decay ends with the last epoch the budget allows. The
measurements behind each choice are in ``benchmarks/results/history.md``.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from device_runtime.benchmarking.device_profile import MIB, load_profile
from device_runtime.bundle_schema import real_item_count
from edge_rec.config import LOG_LAYER, EdgeRecConfig, apply_overrides
from edge_rec.data.sequences import SequenceDataset
from edge_rec.data.split import MIN_VALIDATION_USERS, validation_count

#: The share of users that validate (the others train on their second-to-last item).
VALIDATION_SHARE = 0.2
#: A log with fewer interactions than this gets the small-log teacher (width 64).
SMALL_LOG_INTERACTIONS = 1_000_000
#: The teacher's training work (interactions x members) the members rule keeps within.
TEACHER_WORK_INTERACTIONS = 1_000_000
#: The most members an averaged teacher gets from the sizing rule.
MAX_TEACHER_MEMBERS = 2
#: The student's ``(embedding_dim, hidden)`` when its int8 file fits :data:`STUDENT_FILE_BYTES`.
WIDE_STUDENT = (32, (24,))
#: The student's ``(embedding_dim, hidden)`` for larger catalogs.
NARROW_STUDENT = (16, (12,))
#: Keys that shape the student's widths; set one and the rule sets none of them.
STUDENT_SHAPE_KEYS = frozenset({"student.embedding_dim", "student.hidden", "student.tie_output"})
#: Rule key -> the keys that withhold it: the rule sets nothing when the user set any of them. The
#: student's widths are one choice (a user who set any of them, or tied the output, which
#: constrains them, keeps the built-in pair or their own); the alone dropout goes with the rule's
#: own student epochs.
WITHHELD_BY: dict[str, frozenset[str]] = {
    **{key: STUDENT_SHAPE_KEYS for key in STUDENT_SHAPE_KEYS},
    "student.alone_dropout": frozenset({"student.fit.epochs"}),
}
#: The device profile the build sizes its student for: the tightest built-in one.
SIZING_PROFILE = "smart-speaker"
#: The share of that profile's ``model_size_mb`` the wide student's int8 file must stay under
#: (the rest is headroom for catalog growth between builds).
STUDENT_SHARE_OF_MODEL_BUDGET = 0.25
#: The int8 file size the wide student must stay under (2 MiB from the smart speaker's 8 MiB).
STUDENT_FILE_BYTES = int(load_profile(SIZING_PROFILE).model_size_mb * MIB * STUDENT_SHARE_OF_MODEL_BUDGET)
#: Bytes per catalog item and unit of embedding + output width in an int8 student (one int8
#: weight each, plus the int32 output bias and the graph; measured: the 16/12 student on the
#: shared real log is a 358,464-byte file for 10,674 items x 28).
INT8_BYTES_PER_WIDTH = 1.2
#: Epochs of the students' cosine decay, all of them run (patience = epochs).
STUDENT_EPOCHS = 20
#: Dropout of the student trained alone (the distilled one keeps ``student.dropout``).
ALONE_DROPOUT = 0.3
#: Users' median history length from which the teacher's dropout is 0.2 instead of 0.5.
LONG_HISTORY_MEDIAN = 20


@dataclass(frozen=True)
class LogShape:
    """What the sizing rule reads from a log (after filtering)."""

    users: int
    items: int
    interactions: int
    median_length: float
    p90_length: float
    item_features: bool = False

    @classmethod
    def of(cls, dataset: SequenceDataset, *, item_features: bool = False) -> LogShape:
        """The shape of a prepared dataset (``item_features``: the build has item features)."""
        lengths = np.array([len(s) for s in dataset.sequences], dtype=np.float64)
        return cls(
            users=len(dataset.sequences),
            items=real_item_count(dataset.vocab.size),
            interactions=int(lengths.sum()),
            median_length=float(np.median(lengths)),
            p90_length=float(np.percentile(lengths, 90)),
            item_features=item_features,
        )


@dataclass(frozen=True)
class SizingChoice:
    """One value the rule set: the dotted config key, the value and why."""

    key: str
    value: Any
    reason: str


def size_for_log(cfg: EdgeRecConfig, shape: LogShape) -> tuple[EdgeRecConfig, tuple[SizingChoice, ...]]:
    """Fill every size the user did not set from the log's ``shape`` (see the module docstring)."""
    small = shape.interactions < SMALL_LOG_INTERACTIONS
    long_histories = shape.median_length >= LONG_HISTORY_MEDIAN
    size = "small" if small else "large"
    log_words = f"{shape.interactions:,} interactions ({size} log)"
    history = int(min(50, max(10, 10 * math.ceil(shape.p90_length / 10))))
    teacher_batch = 128 if shape.users >= 5000 else 64
    student_batch = 64 if shape.users >= 10_000 else 16
    wide_bytes = INT8_BYTES_PER_WIDTH * shape.items * (WIDE_STUDENT[0] + WIDE_STUDENT[1][-1])
    embedding_dim, hidden_widths = WIDE_STUDENT if wide_bytes < STUDENT_FILE_BYTES else NARROW_STUDENT
    width_words = (f"{shape.items:,} items: about {wide_bytes / 1e6:.1f} MB of int8 for the wide student "
                   f"({'under' if wide_bytes < STUDENT_FILE_BYTES else 'over'} {STUDENT_FILE_BYTES / 1e6:.0f} MB)")
    members = max(1, min(MAX_TEACHER_MEMBERS, TEACHER_WORK_INTERACTIONS // max(1, shape.interactions)))
    validation_users = validation_count(shape.users, VALIDATION_SHARE)
    rules: list[SizingChoice] = [
        SizingChoice(
            "data.validation_share", VALIDATION_SHARE,
            f"{validation_users:,} of {shape.users:,} users validate on their second-to-last item (at least "
            f"{MIN_VALIDATION_USERS:,}); the others train on it",
        ),
        SizingChoice(
            "data.history_length", history,
            f"90% of users have at most {shape.p90_length:.0f} items (median {shape.median_length:.0f})",
        ),
        SizingChoice("teacher.hidden", 64 if small else 128, log_words),
        SizingChoice("teacher.dropout", 0.2 if long_histories else 0.5,
                     f"median history {shape.median_length:.0f} items ({'long' if long_histories else 'short'}; "
                     f"SASRec: 0.5 on short, sparse logs, 0.2 on long ones)"),
        SizingChoice("teacher.members", members,
                     f"{members} x {shape.interactions:,} interactions of teacher training "
                     f"{'stays within' if members > 1 else 'is at least'} one teacher's on "
                     f"{TEACHER_WORK_INTERACTIONS:,} (at most {MAX_TEACHER_MEMBERS} averaged)"),
        SizingChoice("teacher.fit.epochs", 40, "early stopping decides (patience 4)"),
        SizingChoice("teacher.fit.patience", 4, "validation NDCG@10 is noisy epoch to epoch"),
        SizingChoice("teacher.fit.learning_rate", 1e-3, "peak of the warm-up + cosine schedule"),
        SizingChoice("teacher.fit.schedule", "cosine", "warm-up then cosine decay"),
        SizingChoice("teacher.fit.warmup_epochs", 1.0, "one warm-up epoch"),
        SizingChoice("teacher.fit.batch_size", teacher_batch, f"{shape.users:,} users"),
        SizingChoice("student.embedding_dim", embedding_dim, width_words),
        *([SizingChoice("student.hidden", [embedding_dim], "item features: a tied output scores items by the same "
                        "id + features representation, so new items can be scored from their features"),
           SizingChoice("student.tie_output", True, "item features (see student.hidden)")]
          if shape.item_features else [SizingChoice("student.hidden", list(hidden_widths), width_words)]),
        SizingChoice("student.alone_dropout", ALONE_DROPOUT,
                     "the student trained alone has no soft labels to regularise it and overfits sooner"),
        SizingChoice("student.fit.epochs", STUDENT_EPOCHS, "the length of the cosine decay"),
        SizingChoice("student.fit.patience", STUDENT_EPOCHS,
                     "the decay runs to its end (it gains most in its last epochs); the best epoch is kept"),
        SizingChoice("student.fit.schedule", "cosine", "decays from the learning rate to 1 % within the epochs"),
        SizingChoice("student.fit.batch_size", student_batch, f"{shape.users:,} users"),
        SizingChoice("prune.fit.batch_size", student_batch, "the student's batch size"),
    ]
    chosen = tuple(rule for rule in rules if rule.key not in cfg.explicit
                   and not WITHHELD_BY.get(rule.key, frozenset()) & cfg.explicit)
    overrides: dict[str, Any] = {}
    for rule in chosen:
        *path, leaf = rule.key.split(".")
        table = overrides
        for part in path:
            table = table.setdefault(part, {})
        table[leaf] = rule.value
    sized = apply_overrides(cfg, overrides, source="sizing rule") if overrides else cfg
    provenance = {**cfg.provenance, **{rule.key: f"{LOG_LAYER}: {rule.reason}" for rule in chosen}}
    return dataclasses.replace(sized, provenance=provenance), chosen


def sizing_summary(choices: tuple[SizingChoice, ...]) -> str:
    """One line for the report: ``key = value (reason); ...``."""
    if not choices:
        return "none (every size was set in the config)"
    return "; ".join(f"{c.key} = {c.value} ({c.reason})" for c in choices)
