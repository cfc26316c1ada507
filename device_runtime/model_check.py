"""The load-time self-check of a served model, and the serve-time check of its scores.

A model whose hashes match its manifest can still be hostile or broken: it may fail to invoke,
return ids outside the catalog, return NaN or infinite scores, or ask for a gigabyte of tensors.
Before a model serves (``Recommender.load`` and ``reload``) it is run on a padding-only history
and on a short real history (the most popular items) and refused with :class:`ModelCheckError`
when any of that happens; its tensor memory is checked against ``RuntimeLimits`` before its
tensors are allocated (:class:`ModelMemoryError`). At serve time a non-finite score raises
:class:`ModelOutputError`, never reaches a caller as a result.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

from device_runtime.bundle_schema import PAD_INDEX, BundleError
from device_runtime.runtime_limits import MIB, tensor_bytes

SELF_CHECK_REAL_ITEMS = 3


class ModelCheckError(BundleError):
    """The bundle verifies, but its model failed the load-time self-check (named in the message)."""


class ModelMemoryError(ModelCheckError):
    """The model's tensors need more memory than ``RuntimeLimits.memory_limit_bytes`` allows."""


class ModelOutputError(RuntimeError):
    """At serve time the model returned something that is not a result (e.g. a NaN score)."""


def check_tensor_memory(interpreter: Any, limit_bytes: int, *, source: str) -> int:
    """The interpreter's tensor bytes (:func:`tensor_bytes`); raises :class:`ModelMemoryError`
    naming ``source`` when they exceed ``limit_bytes``. Call it before ``allocate_tensors``."""
    try:
        needed = tensor_bytes(interpreter)
    except Exception as exc:  # noqa: BLE001 - a hostile model can break the introspection
        raise ModelCheckError(f"{source}: cannot read the model's tensors: {exc}") from exc
    if needed > limit_bytes:
        raise ModelMemoryError(f"{source}: the model's tensors need {needed / MIB:.1f} MiB, more than "
                               f"the memory limit of {limit_bytes / MIB:.1f} MiB "
                               "(RuntimeLimits.memory_limit_bytes); refusing the bundle")
    return needed


def self_check_histories(popularity: Sequence[int], history_length: int) -> dict[str, list[int]]:
    """The histories the self-check runs: padding only, and the most popular items (newest last)."""
    real = list(popularity[:min(SELF_CHECK_REAL_ITEMS, history_length)])
    return {"padding-only history": [PAD_INDEX] * history_length,
            "short real history": [PAD_INDEX] * (history_length - len(real)) + real}


def check_output(ids: Sequence[int], scores: Sequence[float], catalog_size: int, *, source: str,
                 history: str) -> None:
    """Raise :class:`ModelCheckError` unless every id is an index of the catalog (0..C-1; the
    runtime never serves PAD and OOV, the graph may rank them) and every score is finite."""
    bad_ids = [i for i in ids if not 0 <= i < catalog_size]
    if bad_ids:
        raise ModelCheckError(f"{source}: on a {history} the model returned ids {bad_ids[:5]} outside "
                              f"the catalog's indices 0..{catalog_size - 1}; refusing the bundle")
    bad_scores = [s for s in scores if not math.isfinite(s)]
    if bad_scores:
        raise ModelCheckError(f"{source}: on a {history} the model returned {len(bad_scores)} "
                              f"non-finite scores (e.g. {bad_scores[0]}); refusing the bundle")


def non_finite_scores(source: str) -> ModelOutputError:
    """The serve-time error for a non-finite score."""
    return ModelOutputError(f"{source}: the model returned a non-finite score for this history; "
                            "no result is returned (the bundle is faulty: reload a good one)")
