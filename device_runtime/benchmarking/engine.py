"""The benchmark engine: what a device will see from one bundle or ``.tflite``, measured in-process.

:func:`measure_target` runs inside a fresh child process (see :mod:`device_runtime.benchmarking.child`,
which also times the imports), so load time, first inference and memory are those of a cold start.
In order, it measures:

1. load (``Recommender.load`` for a bundle; read + interpreter + allocate for a plain model), RSS
   after load (``VmRSS``), and the first inference;
2. latency over ``runs`` calls after ``warmup``: ``Recommender.recommend(history, k=10)`` for a
   bundle, "set inputs + invoke + read outputs" for a plain model;
3. throughput with ``threads`` concurrent callers (a bundle's ``Recommender`` is shared, as in a
   device app; a plain model gets one interpreter per thread);
4. ``peak_rss_mb``: this child process's own peak RSS (``VmHWM``, see
   :mod:`device_runtime.benchmarking.process_memory`) at this point, i.e. of serving, before the benchmark
   builds its own extra interpreters or loads evaluation data; ``peak_rss_total_mb`` is the same
   high-water mark at the end of the whole run (raw interpreter, batch, evaluation included);
5. ``raw_invoke_us``: ``interpreter.invoke()`` alone — inputs are set before the clock starts and
   outputs are not read — cycling through ``INPUT_POOL`` distinct synthesized input sets (see
   :data:`RAW_INVOKE_CALL`), on a separate interpreter for a bundle, so the runtime's own overhead
   is visible next to (2). (For a plain model it is measured right after (2), on its interpreter.)
6. batch throughput when the model has a batch signature (a dynamic batch dimension, or a second
   signature whose inputs have a static batch > 1), op histogram and tensor details;
7. ranking quality on the evaluation examples, when given: through ``Recommender.recommend``
   (external ids) for a bundle, through the interpreter (dataset-vocabulary indices) for a plain
   model whose signature looks like a recommender; metrics from :mod:`device_runtime.metrics`.

Synthetic inputs (no evaluation data needed for timing): a bundle gets random histories of
``history_length`` catalog ids; a plain model gets inputs from :mod:`device_runtime.benchmarking.synthetic_inputs`.
"""

from __future__ import annotations

import gzip
import math
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from device_runtime.benchmarking.latency_stats import summarize_ns
from device_runtime.benchmarking.process_memory import current_rss_mb, peak_rss_mb, peak_rss_source
from device_runtime.benchmarking.progress_line import ProgressLine
from device_runtime.benchmarking.synthetic_inputs import id_upper_bounds, synthesize_input
from device_runtime.bundle import (
    MODEL_FILE,
    OOV_INDEX,
    PAD_INDEX,
    TOP_IDS_OUTPUT,
    read_bundle_files,
)
from device_runtime.bundle_schema import FIRST_ITEM_INDEX
from device_runtime.interpreter import create_interpreter, describe_model, read_signatures
from device_runtime.metrics import EVAL_DEPTH, evaluate_ranked, rank_scores
from device_runtime.served_ranking import EVAL_K, evaluation_depth, served_items

BUNDLE_ARCHIVE_SUFFIXES = (".tar.gz", ".tgz")
INPUT_POOL = 64  # distinct inputs cycled through timed calls
THREAD_WARMUP_CALLS = 3
RAW_INVOKE_CALL = (f"interpreter.invoke() alone: inputs set before the clock starts, outputs not read; "
                   f"{INPUT_POOL} distinct synthesized input sets cycled (integer ids uniform over each "
                   "embedding table's rows), one call per timed sample, after the same warm-up")
PEAK_RSS_MOMENT = ("this process's own high-water mark after load, latency and throughput were "
                   "measured; before any extra benchmark interpreter (a bundle's raw-invoke one, the "
                   "batch one) and before the evaluation data is loaded")


class BenchmarkError(RuntimeError):
    """A target could not be benchmarked; the message names the target and the reason."""


@dataclass(frozen=True)
class BenchmarkSettings:
    """How to measure: timed ``runs`` after ``warmup`` calls, ``threads`` concurrent callers for
    throughput, ``interpreter_threads`` per interpreter, backend, batch size and random seed."""

    runs: int = 200
    warmup: int = 20
    threads: int = 1
    interpreter_threads: int = 1
    backend: str = "auto"
    batch_size: int = 32
    seed: int = 0

    def __post_init__(self) -> None:
        for name, low in (("runs", 1), ("warmup", 0), ("threads", 1), ("interpreter_threads", 1),
                          ("batch_size", 2)):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < low:
                raise ValueError(f"benchmark setting {name!r} must be an integer >= {low}, got {value!r}")

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form."""
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> BenchmarkSettings:
        """Inverse of :meth:`to_dict` (validates every field)."""
        return cls(**data)


@dataclass(frozen=True)
class EvalExamples:
    """Leave-last-out test examples, one per user, in two id spaces.

    ``histories[i]`` (external ids, full history, oldest first) and ``targets[i]`` feed a bundle's
    ``Recommender``; ``history_indices`` / ``target_indices`` are the same examples in the
    dataset's vocabulary (``catalog_size`` entries), for plain ``.tflite`` models trained on it.
    """

    source: str
    histories: list[list[str]]
    targets: list[str]
    history_indices: list[list[int]]
    target_indices: list[int]
    catalog_size: int

    def __post_init__(self) -> None:
        n = len(self.targets)
        if n == 0:
            raise ValueError(f"{self.source}: no evaluation examples")
        for name in ("histories", "history_indices", "target_indices"):
            if len(getattr(self, name)) != n:
                raise ValueError(f"{self.source}: {name} has {len(getattr(self, name))} rows, "
                                 f"targets has {n}")

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form."""
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> EvalExamples:
        """Inverse of :meth:`to_dict`."""
        return cls(**data)


def target_kind(path: str | Path) -> str:
    """``"bundle"`` for a directory or ``.tar.gz``/``.tgz``, ``"tflite"`` for a ``.tflite`` file.

    Raises ``ValueError`` naming the path for anything else.
    """
    path = Path(path)
    if path.is_dir() or path.name.endswith(BUNDLE_ARCHIVE_SUFFIXES):
        return "bundle"
    if path.suffix == ".tflite":
        return "tflite"
    raise ValueError(f"{path}: expected a bundle directory, a bundle .tar.gz or a .tflite file")


def file_sizes(path: str | Path) -> dict[str, int]:
    """Sizes of a target: ``size_bytes`` of the model, ``gzip_bytes`` of the model at gzip -9
    (what an over-the-air download costs), and ``bundle_bytes`` (all bundle files on disk, or
    the archive's size; equal to ``size_bytes`` for a plain model)."""
    path = Path(path)
    if target_kind(path) == "tflite":
        model = path.read_bytes()
        bundle_bytes = len(model)
    else:
        _, files = read_bundle_files(path)
        model = files[MODEL_FILE]
        bundle_bytes = (sum(f.stat().st_size for f in path.iterdir() if f.is_file())
                        if path.is_dir() else path.stat().st_size)
    return {"size_bytes": len(model), "gzip_bytes": len(gzip.compress(model, compresslevel=9, mtime=0)),
            "bundle_bytes": bundle_bytes}


# ---- timing primitives ------------------------------------------------------------------------

def time_calls(run: Callable[[Any], Any], pool: Sequence[Any], *, runs: int, warmup: int = 0,
               progress: ProgressLine | None = None, phase: str = "",
               prepare: Callable[[Any], Any] | None = None) -> np.ndarray:
    """Durations (ns) of ``runs`` calls ``run(x)`` cycling through ``pool`` after ``warmup`` calls:
    the one timing loop of every latency edge-rec reports (summarize them with
    :func:`~device_runtime.benchmarking.latency_stats.summarize_ns`).

    ``prepare(x)``, when given, runs before each call outside the clock.
    """
    for i in range(warmup):
        x = pool[i % len(pool)]
        if prepare is not None:
            prepare(x)
        run(x)
    samples = np.empty(runs, dtype=np.int64)
    clock = time.perf_counter_ns
    for i in range(runs):
        x = pool[i % len(pool)]
        if prepare is not None:
            prepare(x)
        start = clock()
        run(x)
        samples[i] = clock() - start
        if progress is not None:
            progress.update(phase, i + 1, runs)
    return samples


def measure_throughput(calls: Sequence[Callable[[Any], Any]], pool: Sequence[Any], *,
                       requests: int) -> float:
    """Requests per second of ``len(calls)`` threads, thread ``t`` calling ``calls[t]``, together
    serving at least ``requests`` requests; each thread warms up before the clock starts."""
    threads = len(calls)
    per_thread = max(1, math.ceil(requests / threads))
    barrier = threading.Barrier(threads + 1)
    errors: list[BaseException] = []

    def work(t: int) -> None:
        try:
            for j in range(THREAD_WARMUP_CALLS):
                calls[t](pool[(t + j) % len(pool)])
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)
        barrier.wait()
        if errors:
            return
        try:
            for j in range(per_thread):
                calls[t](pool[(t * 7 + j) % len(pool)])
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    workers = [threading.Thread(target=work, args=(t,), daemon=True) for t in range(threads)]
    for worker in workers:
        worker.start()
    barrier.wait()
    start = time.perf_counter()
    for worker in workers:
        worker.join()
    elapsed = time.perf_counter() - start
    if errors:
        raise BenchmarkError(f"a throughput worker failed: {type(errors[0]).__name__}: {errors[0]}")
    return per_thread * threads / elapsed


# ---- raw interpreter --------------------------------------------------------------------------

def _input_id_bounds(interpreter: Any) -> dict[int, int]:
    """Embedding-table row counts per integer input (empty when the backend hides op details)."""
    try:
        ops = interpreter._get_ops_details()
        shapes = {int(d["index"]): [int(x) for x in d["shape"]] for d in interpreter.get_tensor_details()}
    except Exception:  # noqa: BLE001 - private API; fall back to safe ids
        return {}
    return id_upper_bounds(ops, shapes, [d["index"] for d in interpreter.get_input_details()])


def synthesized_pool(interpreter: Any, rng: np.random.Generator,
                     size: int = INPUT_POOL) -> list[list[np.ndarray]]:
    """``size`` random input sets for ``interpreter`` (one array per input, in input order)."""
    details = interpreter.get_input_details()
    bounds = _input_id_bounds(interpreter)
    return [[synthesize_input(d, rng, id_high=bounds.get(int(d["index"]))) for d in details]
            for _ in range(size)]


def _setter(interpreter: Any) -> Callable[[list[np.ndarray]], None]:
    indices = [int(d["index"]) for d in interpreter.get_input_details()]

    def set_inputs(arrays: list[np.ndarray]) -> None:
        for index, array in zip(indices, arrays):
            interpreter.set_tensor(index, array)

    return set_inputs


def _full_call(interpreter: Any) -> Callable[[list[np.ndarray]], list[np.ndarray]]:
    """set inputs + invoke + copy every output: what an app using a plain model does per request."""
    set_inputs = _setter(interpreter)
    outputs = [int(d["index"]) for d in interpreter.get_output_details()]

    def call(arrays: list[np.ndarray]) -> list[np.ndarray]:
        set_inputs(arrays)
        interpreter.invoke()
        return [interpreter.get_tensor(i) for i in outputs]

    return call


def time_raw_invoke(interpreter: Any, pool: Sequence[list[np.ndarray]], settings: BenchmarkSettings,
                    progress: ProgressLine) -> np.ndarray:
    """Durations (ns) of ``interpreter.invoke()`` alone, cycling through ``pool``: each sample's
    inputs are set before the clock starts and no output is read (:data:`RAW_INVOKE_CALL`);
    ``benchmarks/raw_litert_loop.py`` times exactly this by hand."""
    return time_calls(lambda _: interpreter.invoke(), pool, runs=settings.runs,
                      warmup=settings.warmup, progress=progress, phase="raw invoke",
                      prepare=_setter(interpreter))


def measure_batch(model_bytes: bytes, settings: BenchmarkSettings, rng: np.random.Generator
                  ) -> dict[str, Any] | None:
    """Batch throughput (items/s) when the model has a batch signature, else ``None``.

    A dynamic batch dimension is resized to ``batch_size``; otherwise a signature whose inputs all
    have a static batch > 1 is run through its signature runner. Failures are reported, not raised.
    """
    interpreter = create_interpreter(model_bytes, num_threads=settings.interpreter_threads,
                                     backend=settings.backend)
    details = interpreter.get_input_details()
    if not details:
        return None
    calls = max(3, settings.runs // 10)
    try:
        if all(len(d["shape_signature"]) > 0 and int(d["shape_signature"][0]) == -1 for d in details):
            size = settings.batch_size
            for d in details:
                interpreter.resize_tensor_input(int(d["index"]), [size, *[int(x) for x in d["shape"][1:]]])
            interpreter.allocate_tensors()
            pool = synthesized_pool(interpreter, rng, size=4)
            call = _full_call(interpreter)
            how = "dynamic batch dimension"
        else:
            batched = [sig for sig in read_signatures(interpreter).values() if sig.inputs
                       and all(len(shape) > 0 and shape[0] > 1 for shape, _, _ in sig.inputs.values())]
            if not batched:
                return None
            signature = batched[0]
            runner = interpreter.get_signature_runner(signature.key)
            size = next(iter(signature.inputs.values()))[0][0]
            runner_details = runner.get_input_details()
            pool = [{name: synthesize_input(d, rng) for name, d in runner_details.items()} for _ in range(4)]

            def call(inputs: dict[str, np.ndarray]) -> Any:
                return runner(**inputs)

            how = f"signature {signature.key!r}"
        for i in range(2):
            call(pool[i % len(pool)])
        start = time.perf_counter()
        for i in range(calls):
            call(pool[i % len(pool)])
        elapsed = time.perf_counter() - start
    except Exception as exc:  # noqa: BLE001 - a model may declare a batch it cannot run
        return {"size": settings.batch_size, "throughput_rps": None, "how": None,
                "error": f"{type(exc).__name__}: {exc}"}
    return {"size": int(size), "throughput_rps": size * calls / elapsed, "how": how}


def _model_facts(model_bytes: bytes, settings: BenchmarkSettings) -> dict[str, Any]:
    description = describe_model(model_bytes, backend=settings.backend)
    return {"ops": description.ops, "ops_available": description.ops_available,
            "inputs": description.inputs, "outputs": description.outputs,
            "tensor_dtypes": description.tensor_dtypes}


# ---- evaluation -------------------------------------------------------------------------------

def evaluate_recommender(recommender: Any, examples: EvalExamples, progress: ProgressLine
                         ) -> dict[str, Any]:
    """HR@10, NDCG@10, MRR, coverage@10 through ``recommender.recommend(history, k=D,
    exclude_seen=True)`` with ``D = max(10, min(top_k, 100))`` (capped by the catalog); ranks for
    MRR are positions in that list. Targets missing from the bundle's catalog count as misses."""
    bundle = recommender.bundle
    catalog_size = bundle.manifest.catalog_size
    depth = evaluation_depth(bundle.manifest.top_k, catalog_size)
    index_of = {item_id: index for index, item_id in enumerate(bundle.item_ids) if index >= 2}
    n = len(examples.targets)
    ranked = np.full((n, depth), -1, dtype=np.int32)
    targets = np.asarray([index_of.get(t, OOV_INDEX) for t in examples.targets], dtype=np.int32)
    for row, history in enumerate(examples.histories):
        items = recommender.recommend(history, k=depth, exclude_seen=True)
        ranked[row, :len(items)] = [index_of[r.item_id] for r in items]
        progress.update("eval", row + 1, n)
    metrics = evaluate_ranked(ranked, targets, catalog_size, k=min(EVAL_K, depth))
    metrics.update({"path": "Recommender.recommend", "depth": depth,
                    "targets_not_in_catalog": int((targets == OOV_INDEX).sum())})
    return metrics


def _recommender_signature(interpreter: Any, catalog_size: int) -> tuple[int, int, str, int] | str:
    """(input index, L, output kind "top_ids"/"scores", output index) or the reason it is not one."""
    inputs = interpreter.get_input_details()
    if len(inputs) != 1:
        return f"the model has {len(inputs)} inputs; a recommender has one history input"
    detail = inputs[0]
    shape = [int(x) for x in detail["shape"]]
    if len(shape) != 2 or shape[0] != 1 or not np.issubdtype(np.dtype(detail["dtype"]), np.integer):
        return f"the input is {np.dtype(detail['dtype']).name}{shape}, not an int history [1, L]"
    bound = _input_id_bounds(interpreter).get(int(detail["index"]))
    if bound is not None and bound != catalog_size:
        return (f"the model's embedding has {bound} rows but the evaluation data's vocabulary has "
                f"{catalog_size} entries; pass the --eval-data the model was trained on")
    names: dict[int, str] = {}
    for signature in read_signatures(interpreter).values():
        names.update({index: name for name, (_, _, index) in signature.outputs.items()})
    outputs = interpreter.get_output_details()
    ids = [d for d in outputs if names.get(int(d["index"])) == TOP_IDS_OUTPUT]
    ids = ids or [d for d in outputs if np.issubdtype(np.dtype(d["dtype"]), np.integer)
                  and len(d["shape"]) == 2 and int(d["shape"][0]) == 1]
    if ids:
        if int(ids[0]["shape"][1]) < EVAL_K:
            return f"the model's top-K output has {int(ids[0]['shape'][1])} < {EVAL_K} columns"
        return int(detail["index"]), shape[1], "top_ids", int(ids[0]["index"])
    scores = [d for d in outputs if np.issubdtype(np.dtype(d["dtype"]), np.floating)
              and [int(x) for x in d["shape"]] == [1, catalog_size]]
    if scores:
        return int(detail["index"]), shape[1], "scores", int(scores[0]["index"])
    return (f"no output holds top ids (int [1, K]) or scores over the {catalog_size}-entry "
            "catalog (float [1, C])")


def evaluate_interpreter(interpreter: Any, examples: EvalExamples, progress: ProgressLine
                         ) -> dict[str, Any]:
    """The same metrics for a plain model, one example at a time through the interpreter, in the
    dataset's index space. A ``top_ids`` output is ranked as returned minus PAD/OOV/seen items;
    a score output is ranked over the whole catalog by :func:`device_runtime.metrics.rank_scores`.
    Returns ``{"error": reason}`` when the model's signature is not a recommender's."""
    found = _recommender_signature(interpreter, examples.catalog_size)
    if isinstance(found, str):
        return {"error": found}
    input_index, length, kind, output_index = found
    n = len(examples.targets)
    buffer = np.zeros((1, length), dtype=np.dtype(interpreter.get_input_details()[0]["dtype"]))
    ranked = np.full((n, EVAL_DEPTH), -1, dtype=np.int32)
    score_rows: list[np.ndarray] = []
    for row, history in enumerate(examples.history_indices):
        tail = history[-length:]
        buffer.fill(PAD_INDEX)
        if tail:
            buffer[0, length - len(tail):] = tail
        interpreter.set_tensor(input_index, buffer)
        interpreter.invoke()
        output = interpreter.get_tensor(output_index)[0]
        if kind == "top_ids":
            kept, _ = served_items(output.tolist(), history, (), EVAL_DEPTH, examples.catalog_size)
            ranked[row, :len(kept)] = kept
        else:
            score_rows.append(output.astype(np.float32))
        progress.update("eval", row + 1, n)
    if kind == "scores":
        seen_rows = [np.asarray(h, dtype=np.int64) for h in examples.history_indices]
        ranked = rank_scores(np.stack(score_rows), seen_rows, depth=EVAL_DEPTH)
        depth = EVAL_DEPTH
    else:
        depth = int(interpreter.get_tensor(output_index).shape[1])
    metrics = evaluate_ranked(ranked, np.asarray(examples.target_indices), examples.catalog_size, k=EVAL_K)
    metrics.update({"path": f"interpreter ({kind})", "depth": min(depth, EVAL_DEPTH)})
    return metrics


# ---- the two kinds of target ------------------------------------------------------------------

def _random_histories(item_ids: Sequence[str], length: int, rng: np.random.Generator) -> list[list[str]]:
    real = np.asarray(item_ids[FIRST_ITEM_INDEX:], dtype=object)
    return [list(rng.choice(real, size=length)) for _ in range(INPUT_POOL)]


def _serving_result(*, kind: str, backend: str, load_ms: float, first_ms: float, first_wall: float,
                    rss_after_load: float, latency_call: str, latency: Sequence[int],
                    raw_invoke: Sequence[int], throughput: float, serving_peak: float,
                    model_bytes: bytes, settings: BenchmarkSettings, rng: np.random.Generator,
                    bundle: dict[str, Any] | None) -> dict[str, Any]:
    """The measurement dict shared by bundles and plain models (the JSON schema's serving part)."""
    return {
        "kind": kind,
        "backend": backend,
        "load_ms": load_ms,
        "first_inference_ms": first_ms,
        "first_inference_wall": first_wall,
        "rss_after_load_mb": rss_after_load,
        "latency_call": latency_call,
        "latency_us": summarize_ns(latency).to_dict(),
        "raw_invoke_us": summarize_ns(raw_invoke).to_dict(),
        "raw_invoke_call": RAW_INVOKE_CALL,
        "throughput_rps": throughput,
        "peak_rss_mb": serving_peak,
        "peak_rss_moment": PEAK_RSS_MOMENT,
        "peak_rss_source": peak_rss_source(),
        "batch": measure_batch(model_bytes, settings, rng),
        "bundle": bundle,
        **_model_facts(model_bytes, settings),
    }


def measure_bundle(target: Path, settings: BenchmarkSettings, *, progress: ProgressLine,
                   load_eval: Callable[[], EvalExamples | None]) -> dict[str, Any]:
    """Measure a bundle through ``Recommender`` (see the module docstring for the phases)."""
    from device_runtime.recommender import Recommender

    rng = np.random.default_rng(settings.seed)
    start = time.perf_counter()
    recommender = Recommender.load(target, num_threads=settings.interpreter_threads,
                                   backend=settings.backend)
    load_ms = (time.perf_counter() - start) * 1e3
    rss_after_load = current_rss_mb()
    bundle = recommender.bundle
    pool = _random_histories(bundle.item_ids, bundle.manifest.history_length, rng)
    start = time.perf_counter()
    recommender.recommend(pool[0], k=EVAL_K)
    first_ms = (time.perf_counter() - start) * 1e3
    first_wall = time.time()

    def recommend(history: list[str]) -> Any:
        return recommender.recommend(history, k=EVAL_K)

    latency = time_calls(recommend, pool, runs=settings.runs, warmup=settings.warmup,
                         progress=progress, phase="recommend")
    progress.update("throughput", 0, 1)
    throughput = measure_throughput([recommend] * settings.threads, pool, requests=settings.runs)
    progress.update("throughput", 1, 1)
    serving_peak = peak_rss_mb()

    model_bytes = bundle.model_bytes
    raw = create_interpreter(model_bytes, num_threads=settings.interpreter_threads,
                             backend=settings.backend)
    raw_pool = synthesized_pool(raw, rng)
    raw_invoke = time_raw_invoke(raw, raw_pool, settings, progress)
    result = _serving_result(
        kind="bundle", backend=recommender.backend, load_ms=load_ms, first_ms=first_ms,
        first_wall=first_wall, rss_after_load=rss_after_load,
        latency_call=f"Recommender.recommend(history, k={EVAL_K})", latency=latency,
        raw_invoke=raw_invoke, throughput=throughput, serving_peak=serving_peak,
        model_bytes=model_bytes, settings=settings, rng=rng,
        bundle={"history_length": bundle.manifest.history_length,
                "catalog_size": bundle.manifest.catalog_size, "top_k": bundle.manifest.top_k,
                "quantization": dict(bundle.manifest.model.quantization)},
    )
    examples = load_eval()
    result["metrics"] = evaluate_recommender(recommender, examples, progress) if examples else None
    return result


def measure_tflite(target: Path, settings: BenchmarkSettings, *, progress: ProgressLine,
                   load_eval: Callable[[], EvalExamples | None]) -> dict[str, Any]:
    """Measure any ``.tflite`` with synthesized inputs (see the module docstring for the phases)."""
    from device_runtime.interpreter import resolve_backend

    rng = np.random.default_rng(settings.seed)
    start = time.perf_counter()
    model_bytes = target.read_bytes()
    interpreter = create_interpreter(model_bytes, num_threads=settings.interpreter_threads,
                                     backend=settings.backend, source=str(target))
    load_ms = (time.perf_counter() - start) * 1e3
    rss_after_load = current_rss_mb()
    pool = synthesized_pool(interpreter, rng)
    call = _full_call(interpreter)
    start = time.perf_counter()
    call(pool[0])
    first_ms = (time.perf_counter() - start) * 1e3
    first_wall = time.time()
    latency = time_calls(call, pool, runs=settings.runs, warmup=settings.warmup,
                         progress=progress, phase="call")
    raw_invoke = time_raw_invoke(interpreter, pool, settings, progress)
    progress.update("throughput", 0, 1)
    if settings.threads == 1:
        calls = [call]
    else:
        calls = [call] + [_full_call(create_interpreter(model_bytes, num_threads=settings.interpreter_threads,
                                                        backend=settings.backend))
                          for _ in range(settings.threads - 1)]
    throughput = measure_throughput(calls, pool, requests=settings.runs)
    progress.update("throughput", 1, 1)
    serving_peak = peak_rss_mb()
    result = _serving_result(
        kind="tflite", backend=resolve_backend(settings.backend).name, load_ms=load_ms,
        first_ms=first_ms, first_wall=first_wall, rss_after_load=rss_after_load,
        latency_call="set inputs + invoke + read outputs", latency=latency, raw_invoke=raw_invoke,
        throughput=throughput, serving_peak=serving_peak, model_bytes=model_bytes,
        settings=settings, rng=rng, bundle=None,
    )
    examples = load_eval()
    result["metrics"] = evaluate_interpreter(interpreter, examples, progress) if examples else None
    return result


def measure_target(target: str | Path, settings: BenchmarkSettings, *, progress: ProgressLine,
                   load_eval: Callable[[], EvalExamples | None] = lambda: None) -> dict[str, Any]:
    """Measure one target in this process and return the measurement dict (see the module
    docstring); ``load_eval`` is called only after serving memory has been recorded."""
    target = Path(target)
    kind = target_kind(target)
    measure = measure_bundle if kind == "bundle" else measure_tflite
    result = measure(target, settings, progress=progress, load_eval=load_eval)
    result["peak_rss_total_mb"] = peak_rss_mb()
    p50, raw_p50 = result["latency_us"]["p50"], result["raw_invoke_us"]["p50"]
    result["overhead_p50"] = p50 / raw_p50 if raw_p50 > 0 else None
    return result
