"""Defaults that fit the log: one rule from the log's shape to the sizes a build uses.

A user who runs ``edge-rec build --data LOG --out DIR`` without a config gets sizes derived from
the log; any key set in a config file, a profile or a flag is kept as is (the config records the
keys the user set, :attr:`~edge_rec.config.EdgeRecConfig.explicit`). The rule, in full:

- **history length** = the 90th percentile of the users' sequence lengths, rounded up to a
  multiple of 10, within [10, 50]: longer windows are mostly padding (real logs: median 6-60),
  and every position costs attention in the teacher and memory on the device.
- **validation users**: :data:`VALIDATION_SHARE` of the users, but at least
  :data:`~edge_rec.data.split.MIN_VALIDATION_USERS` (every user on smaller logs), validate on their
  second-to-last item; every other user trains on it (every user's last item still tests). On a
  sparse log a user's second-to-last item is a large share of what the models can learn from that
  user, and the newest. On the shared real log (median history 7, 4,861 of 24,303 users
  validating; seed 0, default build, 30-minute budget) it raised test NDCG@10 of the int8 bundle
  from 0.0778 to 0.0827, of the teacher from 0.0775 to 0.0840 and of the student alone from 0.0515
  to 0.0563 (so the ratios fell a little: teacher / alone 1.506 to 1.492, distilled / alone 1.498
  to 1.467), and validating 4,861 users instead of 24,303 cut the teacher's time from 812 to 618 s.
- **teacher width**: logs under 1M interactions are small for a self-attention model and
  overfit within a few epochs, so the teacher gets width 64; larger logs get 128.
- **teacher dropout** follows SASRec's own settings: 0.5 where histories are short and sparse
  (median under 20 items: its Amazon and Steam logs), 0.2 where they are long (MovieLens-like).
  On the weak-order preset (median 60) dropout 0.5 held the teacher near popularity for twice as
  many epochs and cost 9 % test NDCG@10 (0.0721 vs 0.0788, seed 0).
- **teacher members**: as many teachers (from their own seeds, logits averaged:
  :mod:`edge_rec.models.averaged_teacher`) as keep the teacher's training work within one
  teacher's on a :data:`TEACHER_WORK_INTERACTIONS`-interaction log, at most
  :data:`MAX_TEACHER_MEMBERS`: 2 on the shared real log (231,780 interactions), 1 from 500k
  interactions. On the shared real log (seed 0, teachers trained to convergence) one SASRec
  scored 0.0764 / 0.0769 / 0.0771 test NDCG@10 (seeds 0 / 1 / 2), two averaged 0.0788, three
  0.0796, four 0.0797; but the student distilled from two (0.0725) or three (0.0726) scored the
  same, against 0.0716 from one: the student, not the teacher, is then the limit, so a third
  member is not worth its time. Under a time budget the members are an upper bound: a member
  starts only when the ones before it converged and the time left can train it
  (:func:`edge_rec.stages.train_teacher`).
- **teacher output**: tied to the item embedding (SASRec's shared prediction layer), which is
  :attr:`~edge_rec.config.TeacherConfig.tie_output`'s default, not a sizing choice.
- **teacher schedule**: up to 40 epochs of Adam with one warm-up epoch and a cosine decay
  from 1e-3, early stopping after 4 epochs without validation gain (best weights kept);
  batch 128 from 5,000 users, else 64.
- **student width**: the distilled student is limited by its capacity, not by its teacher, so it
  gets :data:`WIDE_STUDENT` (item embedding 32, hidden 24) while that student's int8 file stays
  under :data:`STUDENT_FILE_BYTES` (about :data:`INT8_BYTES_PER_WIDTH` byte per item and unit of
  width: catalogs up to about 30k items), else :data:`NARROW_STUDENT` (16, 12). On the shared
  real log (seed 0, from the same averaged teacher, test NDCG@10 0.0796) the 16/12 student
  distilled to 0.0726 (0.91 of the teacher) and the 32/24 one to 0.0782 (0.98); trained alone the
  wider one overfits after 6 epochs and scores no better (0.0515 against 0.0532), so the gain is
  what distillation buys. On the weak-order preset (seed 0) both widths scored the same (distilled
  0.0857 / 0.0858). 620k parameters on the shared log: a 0.6 MB int8 file, far inside the
  smart-speaker profile's 8 MB.
- **student alone dropout** (:data:`ALONE_DROPOUT`): the baseline distillation is measured
  against must be the best student one can train without a teacher. The distilled student is
  regularised by its teacher's soft labels; the one trained alone is not and overfits sooner. On
  the shared real log (seed 0, every training window) it scored 0.0593 test NDCG@10 with the
  distilled student's dropout 0.1 (best epoch 8 of 20), 0.0666 with 0.3 and 0.0611 with 0.5; the
  distilled student scored 0.0829 with 0.1 and 0.0788 with 0.3, so each keeps its own. On the
  weak-order preset it makes no difference: the student alone scored 0.0775 / 0.0788 (0.1 / 0.3,
  seed 0) and 0.0790 / 0.0786 (seed 1). It is set only with the rule's own student epochs: a
  config that sets ``student.fit.epochs`` keeps one dropout (the demo's 8-epoch student alone
  scored 0.0616 with 0.1 and 0.0585 with 0.3: still rising when the epochs ran out).
- **student schedule**: batch 64 from 10,000 users (else 16, so small logs still get enough
  updates), 20 epochs of a cosine decay from the student's learning rate run to the end
  (patience = the epochs, best epoch kept: a cosine decay gains most in its last epochs, and on
  the shared real log patience 3 stopped the student alone at epoch 16 of 20, best 13, before
  its rate had decayed, while the distilled student ran all 20 and was best at the last;
  a student left at its peak rate is not converged: four more epochs at a tenth of it gained
  8 % NDCG@10 on the shared real log); pruning fine-tunes at the student's batch size.
- Under a time budget every cosine decay ends with the last epoch the budget allows
  (:class:`~edge_rec.distill.learning_rate.WarmupCosineDecay`).
- The full/sampled softmax choice is :meth:`~edge_rec.config.SoftmaxConfig.sampled_negatives`.

:func:`size_for_log` returns the sized config and one :class:`SizingChoice` per value it set,
with the reason, for the report.
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
#: constrains them, keeps the built-in pair or their own), and the alone dropout was measured with the rule's 20-epoch decay (with fewer
#: epochs it slows the student alone down: demo config, 8 epochs, 0.0585 with 0.3 against 0.0616
#: with 0.1).
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

    @classmethod
    def of(cls, dataset: SequenceDataset) -> LogShape:
        """The shape of a prepared dataset."""
        lengths = np.array([len(s) for s in dataset.sequences], dtype=np.float64)
        return cls(
            users=len(dataset.sequences),
            items=real_item_count(dataset.vocab.size),
            interactions=int(lengths.sum()),
            median_length=float(np.median(lengths)),
            p90_length=float(np.percentile(lengths, 90)),
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
        SizingChoice("student.hidden", list(hidden_widths), width_words),
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
