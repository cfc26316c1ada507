"""Catalog patches: a new bundle whose catalog adds items from their features and drops retired
ones, without retraining.

A build with item features (:mod:`edge_rec.data.item_features`) keeps, in its run directory, the
feature spec and the shipped student's feature encoder. :func:`patch_catalog` takes the model the
build's bundle came from (QAT, or the pruned student when the bundle fell back to quantizing it
after training; :func:`~edge_rec.run_directory.run_dir_stages`), and:

- gives every new item the row ``encoder(features)`` (its id part is zero, as for an item whose id
  training dropped), clipped to the range of the existing table so that the int8 scale of every
  existing row stays what it was, and an output bias at the ``features.new_item_bias_quantile``
  quantile of the catalog's biases;
- removes retired items' rows: a retired item is never recommended, and in a history it is
  unknown (OOV), as any id outside the catalog;
- converts and exports the patched model through the same path as a build (int8 conversion with
  the build's calibration histories, parity on the test split, a verified bundle), and records the
  lineage in the manifest's ``build.catalog_patch``: the base bundle's ``manifest_sha256`` and the
  items added and retired.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from device_runtime.bundle import FIRST_ITEM_INDEX, OOV_INDEX
from edge_rec.config import ConfigError, EdgeRecConfig, config_from_dict
from edge_rec.data.errors import DataFormatError
from edge_rec.data.item_features import (
    FEATURE_SPEC_FILE,
    FeatureSpec,
    ItemFeatures,
    load_item_features,
)
from edge_rec.data.prepared import PreparedData, prepare_data
from edge_rec.data.sequences import SequenceDataset
from edge_rec.data.split import LeaveLastOutSplit
from edge_rec.data.vocabulary import Vocabulary
from edge_rec.models.item_encoder import encode_items, load_item_encoder
from edge_rec.run_directory import run_dir_stages

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class PatchResult:
    """What :func:`patch_catalog` wrote: the bundle, the items added and retired, the catalog size
    before and after, the parity of the patched int8 model, and the seconds it took."""

    bundle_dir: Path
    added: tuple[str, ...]
    retired: tuple[str, ...]
    catalog_before: int
    catalog_after: int
    parity_top10_overlap: float
    seconds: float


def read_retired_ids(path: str | Path) -> list[str]:
    """Item ids, one per line (blank lines and ``#`` comments skipped); raises
    :class:`DataFormatError` naming the line of a repeated id."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8-sig")
    except (OSError, UnicodeDecodeError) as exc:
        raise DataFormatError(f"{path}: cannot read the retired ids file ({exc})") from None
    seen: dict[str, int] = {}
    for number, line in enumerate(text.splitlines(), start=1):
        item = line.split("#", 1)[0].strip()
        if not item:
            continue
        if item in seen:
            raise DataFormatError(f"{path}:{number}: item {item!r} is listed again (first at line {seen[item]})")
        seen[item] = number
    return list(seen)


def _run_config(run_dir: Path) -> EdgeRecConfig:
    config_file = run_dir / "config.json"
    if not config_file.is_file():
        raise ConfigError(f"{run_dir}: not a build run directory (no config.json); expected the --out of edge-rec build")
    try:
        return config_from_dict(json.loads(config_file.read_text(encoding="utf-8")), source=str(config_file))
    except json.JSONDecodeError as exc:
        raise ConfigError(f"{config_file}: not valid JSON ({exc})") from None


def _trained_source(run_dir: Path) -> str | None:
    """The log the build trained on, as its report records it (``dataset.source``), when it is
    still there; None otherwise (the config's ``data.source`` is used then)."""
    try:
        source = json.loads((run_dir / "report.json").read_text(encoding="utf-8"))["dataset"]["source"]
    except (OSError, json.JSONDecodeError, KeyError, TypeError):
        return None
    return source if isinstance(source, str) and source else None


def _shipped_stage(run_dir: Path) -> str:
    report = run_dir / "report.json"
    try:
        return json.loads(report.read_text(encoding="utf-8"))["shipped_student"]["stage"]
    except (OSError, json.JSONDecodeError, KeyError, TypeError):
        raise ConfigError(f"{report}: expected the build's report with a shipped_student section; is "
                          f"{run_dir} a finished build?") from None


def remap_data(data: PreparedData, vocab: Vocabulary) -> PreparedData:
    """``data`` over another vocabulary: every index mapped through its item id (ids the new
    vocabulary lacks become OOV), the same users validating; features are dropped (a patched
    model is plain)."""
    old_ids = data.dataset.vocab.ids
    mapping = np.array([OOV_INDEX if i < FIRST_ITEM_INDEX else vocab.index(old_ids[i])
                        for i in range(len(old_ids))], dtype=np.int32)
    mapping[0] = 0
    dataset = SequenceDataset(vocab, list(data.dataset.user_ids), [mapping[s] for s in data.dataset.sequences])
    split = LeaveLastOutSplit(dataset, data.split.validation_users)
    return dataclasses.replace(data, dataset=dataset, split=split, feature_spec=None, item_tokens=None)


def _patched_weights(model: Any, catalog_size: int, keep: np.ndarray, new_rows: np.ndarray,
                     bias_quantile: float) -> list[np.ndarray]:
    """The model's weights with every catalog-sized axis 0 cut to ``keep`` and extended by the new
    items: their representation rows in the item table, a quantile bias in the output bias, ones
    in masks (padding mask, pruning masks)."""
    out = []
    for variable, value in zip(model.weights, model.get_weights(), strict=True):
        name = variable.name
        if value.ndim == 0 or value.shape[0] != catalog_size:
            if value.ndim >= 2 and value.shape[-1] == catalog_size:
                raise ConfigError(f"{name}: an untied output layer cannot score new items; catalog patches need a "
                                  "student with a tied output (a build with item features ties it)")
            out.append(value)
            continue
        kept = value[keep]
        if _is_item_table(variable):
            extra = new_rows.astype(value.dtype)
        elif np.isin(value, (0, 1)).all():
            extra = np.ones((len(new_rows), *value.shape[1:]), value.dtype)
        elif value.ndim == 1:  # the only catalog-sized vector of a tied student: the output bias
            extra = np.full(len(new_rows), np.quantile(value[FIRST_ITEM_INDEX:], bias_quantile), value.dtype)
        else:
            raise ConfigError(f"{name}: a catalog-sized weight this patch does not know how to extend")
        out.append(np.concatenate([kept, extra], axis=0))
    return out


def _is_item_table(variable: Any) -> bool:
    """Whether ``variable`` is a student's item embedding table (plain, pruned or QAT-wrapped)."""
    return "item_embedding" in variable.name and variable.name.split("/")[-1].startswith("embeddings")


def item_table(model: Any) -> np.ndarray:
    """The item embedding table ``[C, E]`` of a student (plain, pruned or QAT-wrapped)."""
    return next(v.numpy() for v in model.weights if _is_item_table(v))


def new_item_rows(model: Any, token_table: np.ndarray, token_ids: np.ndarray, token_weights: np.ndarray
                  ) -> np.ndarray:
    """Table rows of new items: their features' encoding through ``token_table``, clipped to the
    range of ``model``'s item table so that the int8 scale of every existing row stays as it was."""
    limit = float(np.abs(item_table(model)).max())
    return np.clip(encode_items(token_table, token_ids, token_weights), -limit, limit)


def _resized_config(value: Any, old: int, new: int, *, in_shape: bool = False) -> Any:
    """A model config with every catalog size ``old`` (Embedding ``input_dim``, ``catalog_size``,
    and the dimension in recorded build shapes) set to ``new``."""
    if isinstance(value, dict):
        return {k: (new if k in ("input_dim", "catalog_size") and v == old
                    else _resized_config(v, old, new, in_shape=k.endswith("shape")))
                for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_resized_config(v, old, new, in_shape=in_shape) for v in value]
    if in_shape and value == old:
        return new
    return value


def _model_to_patch(run_dir: Path) -> tuple[Path, str]:
    """The saved model the run's bundle was made from (:func:`~edge_rec.run_directory.run_dir_stages`)."""
    for stage in run_dir_stages(run_dir):
        folder = run_dir / "models" / stage
        if folder.is_dir() and any(folder.iterdir()):
            return folder, stage
    raise ConfigError(f"{run_dir}: no saved student under models/ to patch")


def extend_catalog(model: Any, keep: np.ndarray, new_rows: np.ndarray, *, bias_quantile: float) -> Any:
    """A copy of ``model`` (a tied student, plain, pruned or QAT, any mode) whose catalog is the
    rows ``keep`` (bool[C]) of its own, then one row per line of ``new_rows`` [N, E]: that row in
    the item table, the ``bias_quantile`` quantile of the catalog's output biases, ones in masks."""
    from edge_rec.compress.qat import qat_scope
    from edge_rec.keras_shim import keras
    from edge_rec.models import CUSTOM_OBJECTS

    catalog_size = len(keep)
    weights = _patched_weights(model, catalog_size, keep, new_rows, bias_quantile)
    with qat_scope(CUSTOM_OBJECTS):
        patched = keras.Model.from_config(_resized_config(model.get_config(), catalog_size,
                                                          int(keep.sum()) + len(new_rows)))
    patched.set_weights(weights)
    return patched


def _digest(ids: Sequence[str]) -> str:
    return hashlib.sha256("\n".join(sorted(ids)).encode("utf-8")).hexdigest()


def patch_catalog(run_dir: str | Path, out_dir: str | Path, *, add: str | Path | None = None,
                  retire: str | Path | None = None, data_path: str | None = None,
                  data_format: str | None = None, bias_quantile: float | None = None) -> PatchResult:
    """Write a bundle of ``run_dir``'s model whose catalog adds the items of ``add`` (a features
    file described like the build's) and drops the ids listed in ``retire`` (see the module
    docstring). Everything is checked (run, files, ids) before any model is loaded; nothing is
    written when a check or the parity check fails. ``bias_quantile`` overrides the run's
    ``features.new_item_bias_quantile`` (higher: new items rank higher)."""
    from edge_rec.export import export_bundle
    from edge_rec.model_store import (
        find_saved_model,
        load_saved_model,
        serving_form,
        went_through_qat,
    )

    start = time.perf_counter()
    run_dir = Path(run_dir)
    cfg = _run_config(run_dir)
    if add is None and retire is None:
        raise ConfigError("a catalog patch needs --add NEW_ITEMS.csv, --retire IDS_FILE or both")
    spec_file = run_dir / FEATURE_SPEC_FILE
    if add is not None and not spec_file.is_file():
        raise ConfigError(f"{run_dir}: built without item features (no {FEATURE_SPEC_FILE}); new items are added "
                          "from their features: rebuild with --item-features")
    new_items = ItemFeatures(str(add), {}, {}) if add is None else None
    if add is not None:
        spec = FeatureSpec.load(spec_file)
        new_items = load_item_features(add, kinds=spec.kinds)
        spec.check_columns(new_items)
    retired = read_retired_ids(retire) if retire is not None else []
    data_path = data_path or _trained_source(run_dir)
    data = prepare_data(cfg.data, seed=cfg.seed, path=data_path, data_format=data_format, features=cfg.features)
    data = dataclasses.replace(data, history_length=cfg.data.history_length,
                               split=data.dataset.split(cfg.data.validation_share))
    vocab = data.dataset.vocab
    known = set(vocab.ids[FIRST_ITEM_INDEX:])
    clashing = [i for i in new_items.values if i in known]
    if clashing:
        raise DataFormatError(f"{add}: {len(clashing)} item(s) are already in the catalog (first: {clashing[0]!r}); "
                              "a patch adds new items only")
    unknown = [i for i in retired if i not in known]
    if unknown:
        raise DataFormatError(f"{retire}: {len(unknown)} retired id(s) are not in the catalog (first: "
                              f"{unknown[0]!r})")
    if len(known) - len(retired) + len(new_items) < 1:
        raise DataFormatError(f"{retire}: retiring every item leaves an empty catalog")

    folder, stage = _model_to_patch(run_dir)
    encoder = load_item_encoder(run_dir / "models" / _shipped_stage(run_dir))
    if len(new_items) and encoder is None:
        raise ConfigError(f"{run_dir}: the shipped student has no saved feature encoder; rebuild with --item-features")
    model = serving_form(load_saved_model(find_saved_model(folder)))
    catalog_size = vocab.size
    if int(model.outputs[0].shape[-1]) != catalog_size:
        raise ConfigError(f"{folder}: the model scores {int(model.outputs[0].shape[-1])} items, but {data.source} "
                          f"gives a catalog of {catalog_size}; pass --data with the log the build trained on")
    retired_set = set(retired)
    keep = np.array([i < FIRST_ITEM_INDEX or vocab.ids[i] not in retired_set for i in range(catalog_size)])
    new_ids = list(new_items.values)
    rows = np.zeros((0, item_table(model).shape[1]), np.float32)
    if new_ids:
        rows = new_item_rows(model, encoder, *spec.token_matrix([new_items.values[i] for i in new_ids]))
    patched_size = int(keep.sum()) + len(new_ids)
    quantile = cfg.features.new_item_bias_quantile if bias_quantile is None else bias_quantile
    patched = extend_catalog(model, keep, rows, bias_quantile=quantile)

    titles = {i: t for i, t in zip(vocab.ids, vocab.titles, strict=True)}
    title_column = next((c.name for c in spec.columns if c.name == "title"), None) if new_ids else None
    for i in new_ids:
        titles[i] = new_items.values[i].get(title_column, "") if title_column else ""
    kept_ids = [vocab.ids[i] for i in range(FIRST_ITEM_INDEX, catalog_size) if keep[i]]
    patched_vocab = Vocabulary([*kept_ids, *new_ids], titles)
    patched_data = remap_data(data, patched_vocab)
    base_manifest = run_dir / "bundle" / "manifest.json"
    base_digest = json.loads(base_manifest.read_text(encoding="utf-8")).get("manifest_sha256") \
        if base_manifest.is_file() else None
    lineage = {"base_manifest_sha256": base_digest, "model": f"models/{stage}",
               "items_added": len(new_ids), "items_retired": len(retired),
               "added_ids_sha256": _digest(new_ids), "retired_ids_sha256": _digest(retired)}
    log.info("catalog patch: %d items + %d new - %d retired = %d", len(known), len(new_ids), len(retired),
             patched_size - FIRST_ITEM_INDEX)
    exported = export_bundle(patched, patched_data, out_dir, convert_cfg=cfg.convert, seed=cfg.seed,
                             variant="int8", qat=went_through_qat(patched),
                             build_info={"catalog_patch": lineage})
    return PatchResult(exported.bundle_dir, tuple(new_ids), tuple(retired), catalog_size - FIRST_ITEM_INDEX,
                       patched_size - FIRST_ITEM_INDEX, exported.parity.top10_overlap,
                       time.perf_counter() - start)
