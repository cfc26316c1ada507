"""The on-device recommender: a verified bundle + a TFLite interpreter + numpy, nothing else.

::

    from device_runtime.recommender import Recommender

    rec = Recommender.load("runs/demo/bundle")
    for r in rec.recommend(["1021", "1007", 1013], k=5):
        print(r.rank, r.item_id, r.title, r.score)
"""

from __future__ import annotations

import threading
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from itertools import repeat
from operator import itemgetter
from pathlib import Path
from typing import TYPE_CHECKING, Any, NamedTuple

import numpy as np

from device_runtime.bundle import (
    HISTORY_INPUT,
    OOV_INDEX,
    PAD_INDEX,
    TOP_IDS_OUTPUT,
    TOP_SCORES_OUTPUT,
    BundleError,
    TensorSpec,
    VerifiedBundle,
    compact_indices,
    verify_bundle,
)
from device_runtime.bundle_schema import FIRST_ITEM_INDEX, real_item_count
from device_runtime.interpreter import Backend, create_interpreter, read_signatures, resolve_backend
from device_runtime.interpreter_pool import InterpreterPool
from device_runtime.model_check import (
    ModelCheckError,
    check_output,
    check_tensor_memory,
    non_finite_scores,
    self_check_histories,
)
from device_runtime.runtime_limits import DEFAULT_LIMITS, RuntimeLimits
from device_runtime.served_ranking import graph_positions, popularity_fill, popularity_fill_indices

if TYPE_CHECKING:  # the update extra (python-tuf) is optional
    from device_runtime.personalization import PersonalizationConfig
    from device_runtime.updates import DeviceTrust, UpdateResult

SOURCE_MODEL = "model"
SOURCE_POPULARITY = "popularity"
SOURCE_MIXED = "model+popularity"


class Recommendation(NamedTuple):
    """One recommended item (immutable): external ``item_id``, model ``score``, 1-based ``rank``.

    ``source`` is ``"model"`` when the item came from the model's top-K, ``"popularity"`` when it
    came from the bundle's popularity order (its ``score`` is then 0.0 and means nothing).
    ``title`` is the item's title from ``items.tsv`` ("" when none). A NamedTuple rather than a
    frozen dataclass: it is as immutable and about 6x cheaper to build (``recommend`` builds k).
    """

    item_id: str
    score: float
    rank: int
    source: str = SOURCE_MODEL
    title: str = ""

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form."""
        return {"item_id": self.item_id, "score": self.score, "rank": self.rank,
                "source": self.source, "title": self.title}


_new_recommendation = tuple.__new__  # all five fields given: skips NamedTuple's Python __new__


@dataclass(frozen=True)
class RecommendationList:
    """The answer to one ``recommend`` call; iterates, indexes and ``len()``s like its ``items``.

    ``source``: ``"model"`` (all items from the model), ``"popularity"`` (empty or all-unknown
    history: cold start), ``"model+popularity"`` (the model's top-K ran out after exclusions and
    the rest was filled from popularity). ``unknown_ids``: how many history ids were not in the
    catalog (mapped to out-of-vocabulary).
    """

    items: tuple[Recommendation, ...]
    source: str
    unknown_ids: int

    def __iter__(self):
        return iter(self.items)

    def __len__(self) -> int:
        return len(self.items)

    def __getitem__(self, position):
        return self.items[position]

    @property
    def item_ids(self) -> list[str]:
        """The recommended external ids, best first."""
        return [r.item_id for r in self.items]

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form: ``{"items": [...], "source", "unknown_ids"}``."""
        return {"items": [r.to_dict() for r in self.items], "source": self.source,
                "unknown_ids": self.unknown_ids}


def _as_key(value: Any, what: str) -> str:
    """External ids are strings; ints (and numpy integers) are compared as their str."""
    if type(value) is str:
        return value
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
        raise TypeError(f"{what} contains {value!r} ({type(value).__name__}); item ids must be "
                        "str or int")
    return str(int(value))


def _check_id_list(values: Any, what: str) -> None:
    if isinstance(values, (str, bytes)) or not isinstance(values, Iterable):
        raise TypeError(f"{what} must be a list of item ids (str or int), got {type(values).__name__}")


def _as_id_list(values: Any, what: str) -> list[str]:
    _check_id_list(values, what)
    return [value if type(value) is str else _as_key(value, what) for value in values]


def _pick(values: Sequence[Any], positions: list[int]) -> tuple[Any, ...]:
    """``values`` at ``positions`` (non-empty) as a tuple, in one C call."""
    if len(positions) == 1:
        return (values[positions[0]],)
    return itemgetter(*positions)(values)


def _recommendations(serving: _ServingModel, chosen: list[int], scores: Iterable[float],
                     first_rank: int, source: str) -> tuple[Recommendation, ...]:
    """Recommendations for catalog indices ``chosen`` (non-empty), ranked from ``first_rank``."""
    items = serving.items
    return tuple(map(_new_recommendation, repeat(Recommendation), zip(
        items.ids_at(chosen), scores, range(first_rank, first_rank + len(chosen)),
        repeat(source), items.titles_at(chosen))))


class _Slot:
    """One interpreter with its reusable input buffer; used by one thread at a time.

    On the fast path (signature tensors in the main subgraph) ``history``, ``top_ids`` and
    ``top_scores`` are the interpreter's ``tensor(index)`` accessors: each call returns a numpy
    view of the tensor's own memory, so the history is written in place (no buffer copy, no
    ``set_tensor``) and the outputs are read without copying the K-long arrays. A view must be
    dropped before the next ``invoke`` (the interpreter refuses to run while one is alive).
    """

    __slots__ = ("interpreter", "buffer", "runner", "invoke", "history", "top_ids", "top_scores")

    def __init__(self, interpreter: Any, history_length: int, runner: Any,
                 indices: tuple[int, int, int] | None) -> None:
        self.interpreter = interpreter
        self.buffer = np.zeros((1, history_length), dtype=np.int32)
        self.runner = runner
        self.invoke = interpreter.invoke
        if indices is not None:
            self.history, self.top_ids, self.top_scores = map(interpreter.tensor, indices)


class _ServingModel:
    """Everything derived from one verified bundle; immutable after construction except the pool."""

    def __init__(self, bundle: VerifiedBundle, backend: Backend, num_threads: int,
                 limits: RuntimeLimits) -> None:
        manifest = bundle.manifest
        self.bundle = bundle
        self.backend = backend
        self.num_threads = num_threads
        self.limits = limits
        self.source = f"{bundle.source}/{manifest.model.file}"
        self.history_length = manifest.history_length
        self.catalog_size = manifest.catalog_size
        self.top_k = manifest.top_k
        self.real_items = real_item_count(manifest.catalog_size)
        self.items = bundle.items
        if len(manifest.popularity) == self.real_items:  # distinct real items (checked): all of them
            self.popularity = manifest.popularity
        else:
            self.popularity = compact_indices(popularity_fill_indices(manifest.popularity, self.catalog_size),
                                              self.catalog_size)
        self.tensor_bytes = 0
        first = self._new_slot()  # checks memory, and the signature against the manifest
        capacity = min(limits.max_interpreters, max(1, limits.memory_limit_bytes // max(self.tensor_bytes, 1)))
        self.pool: InterpreterPool[_Slot] = InterpreterPool(self._new_slot, capacity, limits.pool_wait_s, first)
        self._self_check()

    def _check_memory(self, interpreter: Any) -> None:
        self.tensor_bytes = check_tensor_memory(interpreter, self.limits.memory_limit_bytes,
                                                source=self.source)

    def _new_slot(self) -> _Slot:
        interpreter = create_interpreter(self.bundle.model_bytes, num_threads=self.num_threads,
                                         backend=self.backend, source=self.source,
                                         before_allocate=self._check_memory)
        self._check_memory(interpreter)  # again: allocation resolves any dynamic shapes
        if not hasattr(self, "input_index"):
            self._bind_signature(interpreter, self.source)
        if self.fast_path:
            return _Slot(interpreter, self.history_length, None,
                         (self.input_index, self.ids_index, self.scores_index))
        return _Slot(interpreter, self.history_length,
                     interpreter.get_signature_runner(self.signature_key), None)

    def _self_check(self) -> None:
        """Run the model on a padding-only and a short real history; refuse it
        (:class:`ModelCheckError`) when it fails, returns ids outside the catalog or non-finite
        scores."""
        for name, history in self_check_histories(self.popularity, self.history_length).items():
            try:
                ids, scores = self.run(history, self.top_k)
            except Exception as exc:  # noqa: BLE001 - any failure to invoke refuses the bundle
                raise ModelCheckError(f"{self.source}: the model fails to run on a {name}: "
                                      f"{type(exc).__name__}: {exc}; refusing the bundle") from exc
            check_output(ids, scores, self.catalog_size, source=self.source, history=name)

    def _bind_signature(self, interpreter: Any, source: str) -> None:
        manifest = self.bundle.manifest
        self.signature_key = manifest.model.signature_key
        signatures = read_signatures(interpreter)
        if self.signature_key not in signatures:
            raise BundleError(f"{source}: the model has no signature {self.signature_key!r} "
                              f"(it has {sorted(signatures)}); rebuild the bundle")
        signature = signatures[self.signature_key]
        L, K = self.history_length, self.top_k
        expected_in = {HISTORY_INPUT: TensorSpec(HISTORY_INPUT, (1, L), "int32")}
        expected_out = {TOP_IDS_OUTPUT: TensorSpec(TOP_IDS_OUTPUT, (1, K), "int32"),
                        TOP_SCORES_OUTPUT: TensorSpec(TOP_SCORES_OUTPUT, (1, K), "float32")}
        for what, declared, expected, actual in (
            ("inputs", manifest.model.inputs, expected_in, signature.inputs),
            ("outputs", manifest.model.outputs, expected_out, signature.outputs),
        ):
            declared_map = {spec.name: spec for spec in declared}
            if declared_map != expected:
                raise BundleError(f"{self.bundle.source}/manifest.json: model.{what} is "
                                  f"{[s.to_dict() for s in declared]}, expected "
                                  f"{[s.to_dict() for s in expected.values()]} for history_length "
                                  f"{L} and top_k {K}")
            found = {name: TensorSpec(name, shape, dtype) for name, (shape, dtype, _) in actual.items()}
            if found != expected:
                raise BundleError(f"{source}: signature {self.signature_key!r} {what} are "
                                  f"{[s.to_dict() for s in found.values()]}, but the manifest "
                                  f"declares {[s.to_dict() for s in declared]}; the model does not "
                                  "belong to this manifest: rebuild the bundle")
        self.input_index = signature.inputs[HISTORY_INPUT][2]
        self.ids_index = signature.outputs[TOP_IDS_OUTPUT][2]
        self.scores_index = signature.outputs[TOP_SCORES_OUTPUT][2]
        main_inputs = {d["index"] for d in interpreter.get_input_details()}
        main_outputs = {d["index"] for d in interpreter.get_output_details()}
        # signature tensors in the main subgraph: set/invoke/get directly (no runner overhead)
        self.fast_path = (self.input_index in main_inputs and self.ids_index in main_outputs
                          and self.scores_index in main_outputs)

    def run(self, indices: list[int], count: int, *, as_arrays: bool = False) -> tuple[Any, Any]:
        """The graph's first ``count`` top ids and scores for the last L ``indices`` (left-padded
        with PAD): Python lists, or numpy copies (int32, float32) with ``as_arrays``. Nothing
        returned refers to interpreter memory."""
        convert = np.array if as_arrays else np.ndarray.tolist
        L = self.history_length
        tail = indices[-L:]
        start = L - len(tail)
        pool = self.pool
        slot = pool.acquire()
        try:
            if slot.runner is None:
                history = slot.history()
                if start:
                    history[0, :start] = PAD_INDEX
                history[0, start:] = tail
                del history  # no view may outlive this point: invoke refuses to run otherwise
                slot.invoke()
                ids = convert(slot.top_ids()[0, :count])
                scores = convert(slot.top_scores()[0, :count])
            else:
                buffer = slot.buffer
                if start:
                    buffer[0, :start] = PAD_INDEX
                buffer[0, start:] = tail
                out = slot.runner(**{HISTORY_INPUT: buffer})
                ids = convert(out[TOP_IDS_OUTPUT][0, :count])
                scores = convert(out[TOP_SCORES_OUTPUT][0, :count])
        finally:
            pool.release(slot)
        return ids, scores


class Recommender:
    """Next-item recommendations from a verified bundle, safe for concurrent use.

    Construct with :meth:`load`. Every public method may be called from any number of threads.

    Concurrency design: a pool of interpreters, each used by one thread at a time (an
    interpreter is not thread-safe). A call takes an idle interpreter from the pool or creates one
    from the in-memory model bytes when all are busy, and gives it back afterwards, so the pool
    grows to the peak number of concurrent callers, but never beyond ``limits.max_interpreters``
    nor the memory budget ``limits.memory_limit_bytes``: past that, callers wait for an idle
    interpreter (:class:`~device_runtime.interpreter_pool.InterpreterPool`). This is "interpreter per thread"
    without ``threading.local``: ``ThreadingHTTPServer`` starts a new thread per request, which
    would create (and throw away) an interpreter per request with ``threading.local``. It was
    measured against one shared interpreter behind a lock (``benchmarks/runtime.py``, 4 threads on
    2 cores shared with other jobs: pool/lock throughput ranged 0.7-1.7x on the tiny test bundle
    (Python-bound, 2 us invoke) and 1.1-1.5x on a demo-shaped one (40 us invoke, which releases
    the GIL); the pool is chosen because it scales with cores where invoke dominates) and costs
    one interpreter's memory per concurrent caller.

    ``reload`` builds and checks the new model completely, then swaps one reference: a call in
    flight finishes on the model it started with, and a failed reload leaves the old model serving.

    With ``trust`` (a :class:`~device_runtime.updates.DeviceTrust`), only bundles that a signed
    release of the update repository lists are loaded or reloaded; any other raises
    :class:`~device_runtime.updates.UnsignedBundleError` (a ``BundleError``).
    """

    def __init__(self, bundle: VerifiedBundle, *, num_threads: int = 1, backend: str = "auto",
                 limits: RuntimeLimits = DEFAULT_LIMITS, trust: DeviceTrust | None = None,
                 state_dir: str | Path | None = None,
                 personalization: PersonalizationConfig | None = None) -> None:
        """Serve an already verified bundle (prefer :meth:`load`). Checks the bundle's signed
        release when ``trust`` is given, the model's signature against the manifest
        (:class:`BundleError` when they differ) and runs the load-time self-check
        (:class:`~device_runtime.model_check.ModelCheckError`)."""
        if not isinstance(limits, RuntimeLimits):
            raise TypeError(f"limits must be a RuntimeLimits, got {type(limits).__name__}")
        self._backend = resolve_backend(backend)
        self._num_threads = num_threads
        self._limits = limits
        self._trust = trust
        self._reload_lock = threading.Lock()
        self._serving = self._checked_model(bundle)
        self._personal = None
        if state_dir is not None:
            from device_runtime.personalization import PersonalizationConfig, Personalizer

            self._personal = Personalizer(state_dir, personalization or PersonalizationConfig())

    def _checked_model(self, bundle: VerifiedBundle) -> _ServingModel:
        """A serving model for ``bundle``, after its signed release is found (with ``trust``)."""
        if self._trust is not None:
            self._trust.require_signed(bundle.manifest_sha256, str(bundle.source))
        return _ServingModel(bundle, self._backend, self._num_threads, self._limits)

    @classmethod
    def load(cls, path: str | Path, *, num_threads: int = 1, backend: str = "auto",
             limits: RuntimeLimits = DEFAULT_LIMITS, trust: DeviceTrust | None = None,
             state_dir: str | Path | None = None,
             personalization: PersonalizationConfig | None = None) -> Recommender:
        """Verify the bundle at ``path`` (directory or ``.tar.gz``), load it and self-check it.

        Raises :class:`BundleError` for a bundle that fails verification or whose model signature
        does not match the manifest; its subclass ``ModelCheckError`` when the model fails to run
        on a padding-only or a short real history, returns ids outside the catalog or non-finite
        scores, and ``ModelMemoryError`` (a ``ModelCheckError``) when its tensors exceed
        ``limits.memory_limit_bytes``; ``ModelFormatError`` for model bytes the interpreter
        rejects; ``InterpreterUnavailableError`` when no backend is installed (or it cannot run
        with this numpy). ``limits`` also bounds the interpreter pool
        (:class:`~device_runtime.runtime_limits.RuntimeLimits`). ``trust`` restricts loading and
        every later reload to signed releases (see the class docstring). ``state_dir`` turns on
        personalization: each user's head is kept there (:meth:`feedback`, ``recommend(...,
        user=)``, :meth:`forget`); without it nothing is learned or stored.
        """
        return cls(verify_bundle(path), num_threads=num_threads, backend=backend, limits=limits,
                   trust=trust, state_dir=state_dir, personalization=personalization)

    # ---- properties -------------------------------------------------------------------------
    @property
    def bundle(self) -> VerifiedBundle:
        """The verified bundle currently serving (model bytes, manifest, items)."""
        return self._serving.bundle

    @property
    def history_length(self) -> int:
        """L: how many of the most recent history items the model sees."""
        return self._serving.history_length

    @property
    def catalog_size(self) -> int:
        """C: real items + 2 (padding and OOV)."""
        return self._serving.catalog_size

    @property
    def backend(self) -> str:
        """Name of the interpreter backend in use."""
        return self._backend.name

    # ---- recommending -----------------------------------------------------------------------
    def recommend(self, history: Sequence[str | int], k: int = 10, *, exclude: Iterable[str | int] = (),
                  exclude_seen: bool = True, user: str | int | None = None) -> RecommendationList:
        """The top ``k`` next items for ``history`` (external ids, oldest first).

        - ids are compared as strings (``1007`` == ``"1007"``); unknown ids map to
          out-of-vocabulary and are counted in ``unknown_ids``;
        - only the last ``history_length`` ids are fed to the model, but ``exclude_seen`` removes
          every id of the whole history;
        - an empty or all-unknown history returns the popularity order (``source="popularity"``);
        - ``exclude`` ids never appear; when fewer than ``k`` of the graph's top-K remain after
          exclusions, the rest comes from popularity (``source="model+popularity"``); fewer than
          ``k`` items are returned only when exclusions leave fewer than ``k`` items in the catalog.

        - with ``user`` (and a ``state_dir``), the graph's top-K are re-ranked by that user's head
          (scores are then standardized model scores plus the personal term); a user with no
          feedback yet gets exactly the ranking without ``user``.

        Raises ``ValueError`` for ``k`` outside 1..(number of real items) and ``TypeError`` for
        ids that are neither str nor int; ``ModelOutputError`` when the model returns a
        non-finite score (never returned as a result); ``InterpreterPoolTimeout`` when every
        interpreter stays busy for ``limits.pool_wait_s``.
        """
        serving = self._serving  # one read: a concurrent reload cannot mix two models in one call
        return self._recommend(serving, history, k, exclude, exclude_seen, user)

    def recommend_batch(self, histories: Iterable[Sequence[str | int]], k: int = 10, *,
                        exclude: Iterable[str | int] = (), exclude_seen: bool = True,
                        user: str | int | None = None) -> list[RecommendationList]:
        """:meth:`recommend` for each history (all on the same model, even during a reload)."""
        if isinstance(histories, (str, bytes)) or not isinstance(histories, Iterable):
            raise TypeError(f"histories must be a list of histories, got {type(histories).__name__}")
        serving = self._serving
        exclude = _as_id_list(exclude, "exclude")
        return [self._recommend(serving, history, k, exclude, exclude_seen, user) for history in histories]

    def _recommend(self, serving: _ServingModel, history: Any, k: Any, exclude: Iterable[Any],
                   exclude_seen: bool, user: Any = None) -> RecommendationList:
        # Hot path: every step is a C-level builtin (map, set, compress, islice) whose work grows
        # with len(history) + k, never with K or the catalog (benchmarks/runtime.py: overhead).
        if type(k) is not int and (isinstance(k, bool) or not isinstance(k, (int, np.integer))):
            raise TypeError(f"k must be an integer, got {type(k).__name__}")
        if not 1 <= k <= serving.real_items:
            raise ValueError(f"k={k} is out of range: the catalog has {serving.real_items} items, "
                             f"so k must be in 1..{serving.real_items}")
        catalog = serving.items
        if type(history) is not list:
            _check_id_list(history, "history")
            history = list(history)
        try:
            indices = catalog.lookup(history)  # one vectorized search; None = unknown or not a str
        except TypeError:  # an unhashable element
            indices = [None] * len(history)
        banned = {PAD_INDEX, OOV_INDEX}  # never recommended, even if the graph ranks them
        if exclude_seen:
            banned.update(indices)  # the whole history, not only the last L
        unknown = 0
        if None in banned if exclude_seen else None in indices:  # set lookup beats a list scan
            for position, index in enumerate(indices):
                if index is None:
                    index = catalog.index_of(_as_key(history[position], "history"), OOV_INDEX)
                    indices[position] = index
                    unknown += index == OOV_INDEX
            if exclude_seen:
                banned.discard(None)
                banned.update(indices)
        if type(exclude) is not tuple or exclude:  # skip the common empty default cheaply
            banned.update(catalog.lookup(_as_id_list(exclude, "exclude")))
            banned.discard(None)  # excluded ids that are not in the catalog
        items: tuple[Recommendation, ...] = ()
        chosen: list[int] = []
        head = None if user is None else self._personal_head(serving, user)
        if unknown < len(indices):
            if head is None:
                # top ids are distinct (a TopK's are), so at most len(banned) of the first
                # k + len(banned) are banned: only those are converted to Python ints
                ids, scores = serving.run(indices, k + len(banned))
            else:  # the whole top-K, re-ranked by the user's head
                ids, scores = head.adjust(*serving.run(indices, serving.top_k, as_arrays=True),
                                          self._personal.config)
            positions = graph_positions(ids, banned, k, serving.catalog_size)  # the serving rule
            chosen = list(map(ids.__getitem__, positions))
            if chosen:
                scores = _pick(scores, positions)
                total = sum(scores)
                if total - total != 0.0:  # NaN or +-inf anywhere (cheaper than k isfinite calls)
                    raise non_finite_scores(serving.source)
                items = _recommendations(serving, chosen, scores, 1, SOURCE_MODEL)
            if len(chosen) == k:
                return RecommendationList(items, SOURCE_MODEL, unknown)
            source = SOURCE_MIXED
        else:
            source = SOURCE_POPULARITY
        banned.update(chosen)
        filler = popularity_fill(serving.popularity, banned, k - len(chosen))
        if not filler:
            return RecommendationList(items, SOURCE_MODEL if source == SOURCE_MIXED else source, unknown)
        items += _recommendations(serving, filler, repeat(0.0), len(chosen) + 1, SOURCE_POPULARITY)
        return RecommendationList(items, source, unknown)

    # ---- personalization ----------------------------------------------------------------------
    def _personal_head(self, serving: _ServingModel, user: Any) -> Any:
        """``user``'s head when it has learned something (else None: the unpersonalized path)."""
        if self._personal is None:
            raise ValueError("recommend(user=...) needs personalization: load the recommender with "
                             "state_dir=FOLDER")
        head = self._personal.head(user, serving.items)
        return None if head.empty else head

    @property
    def personalized(self) -> bool:
        """True when loaded with a ``state_dir`` (feedback, ``recommend(user=)``, forget work)."""
        return self._personal is not None

    def _personalizer(self) -> Any:
        if self._personal is None:
            raise ValueError("personalization is off: load the recommender with state_dir=FOLDER")
        return self._personal

    def feedback(self, user: str | int, item: str | int, kind: str | float = "play") -> bool:
        """Teach ``user``'s head one event: ``kind`` is ``play``, ``skip``, ``like``, ``dislike``
        or a weight in [-10, 10] (negative demotes). The head is saved atomically in the state
        folder before this returns. Returns False (and learns nothing) for an item the catalog does
        not have. ``ValueError``/``TypeError`` for a bad user id, kind or weight."""
        return self.feedback_batch(user, [(item, kind)]) == 1

    def feedback_batch(self, user: str | int, events: Iterable[tuple[str | int, str | float]]) -> int:
        """:meth:`feedback` for several ``(item, kind)`` events of one user, in order, saved once
        (for a batch when the device is idle). Returns how many events were learned."""
        personal = self._personalizer()
        serving = self._serving
        catalog = serving.items
        known = []
        for item, kind in events:
            index = catalog.index_of(_as_key(item, "item"))
            if index is not None and index >= FIRST_ITEM_INDEX:
                known.append((index, kind))
        return personal.learn(serving, user, known)

    def forget(self, user: str | int) -> int:
        """Delete every trace of ``user``: the head in memory, its state file and any set-aside
        copy. Returns the number of files removed."""
        return self._personalizer().forget(user)

    # ---- lifecycle --------------------------------------------------------------------------
    def reload(self, path: str | Path) -> dict[str, Any]:
        """Verify and load the bundle at ``path``, then swap it in atomically; returns :meth:`info`.

        The new model passes the same checks as :meth:`load` (signed release when a trust state
        is configured, signature, memory, self-check); on any error the exception propagates and
        the current model keeps serving unchanged.
        """
        with self._reload_lock:
            fresh = self._checked_model(verify_bundle(path))
            self._serving = fresh
        return self.info()

    def update_from(self, repo_url: str, *, trust_root: str | Path, dest: str | Path,
                    profile: str | None = None) -> UpdateResult:
        """Check the signed update repository at ``repo_url`` and, when it offers a newer release
        for this device, download, verify, install it in ``dest`` and hot-reload it here
        (:class:`~device_runtime.updates.UpdateClient`). Raises an
        :class:`~device_runtime.updates.UpdateError` subclass for every refusal; the current model
        keeps serving. Needs the update extra (python-tuf).
        """
        from device_runtime.updates import UpdateClient

        client = UpdateClient(repo_url, trust_root, dest, profile=profile)

        def self_check(path: Path) -> None:
            _ServingModel(verify_bundle(path), self._backend, self._num_threads, self._limits)

        return client.update(self_check=self_check, reload=self.reload)

    def info(self) -> dict[str, Any]:
        """What is serving: source path, digests, sizes, L, K, catalog, quantization, metrics, build."""
        serving = self._serving
        manifest = serving.bundle.manifest
        return {
            "bundle": str(serving.bundle.source),
            "manifest_sha256": serving.bundle.manifest_sha256,
            "created_at": manifest.created_at,
            "schema_version": manifest.schema_version,
            "backend": serving.backend.name,
            "num_threads": serving.num_threads,
            "history_length": manifest.history_length,
            "catalog_size": manifest.catalog_size,
            "items": real_item_count(manifest.catalog_size),
            "top_k": manifest.top_k,
            "model_bytes": len(serving.bundle.model_bytes),
            "model_sha256": manifest.files[manifest.model.file].sha256,
            "quantization": dict(manifest.model.quantization),
            "metrics": dict(manifest.metrics),
            "build": dict(manifest.build),
            "interpreters": serving.pool.size,
            "max_interpreters": serving.pool.capacity,
            "tensor_bytes": serving.tensor_bytes,
            "personalization": None if self._personal is None else {
                "cached_users": self._personal.store.cached_users(),
                "state_files_set_aside": self._personal.store.set_aside},
        }

    def __repr__(self) -> str:
        return (f"Recommender({str(self._serving.bundle.source)!r}, items={self._serving.real_items}, "
                f"L={self.history_length}, backend={self.backend!r})")
