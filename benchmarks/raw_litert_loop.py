"""The reference: a minimal hand-written ai_edge_litert loop, to check the benchmark's raw invoke.

Deliberately independent of ``device_runtime`` so it can cross-check ``edge-rec benchmark``'s
``raw_invoke_us.p50`` (issue 6: they must agree within 20% in the same ``make bench`` run). It
measures exactly what the benchmark's ``raw_invoke_us`` is documented to measure:

- one ``Interpreter(model_path, num_threads=1)`` (default delegates, i.e. XNNPACK, as the benchmark);
- a pool of 64 distinct random input sets, cycled: integer inputs that index an embedding table
  (the indices operand of a ``GATHER``) get ids uniform over that table's rows, int8/uint8/int16
  inputs their whole range, other integer inputs 0 or 1, float inputs standard-normal values. A realistic history is never all padding,
  and the inputs change from call to call: repeating one
  input lets the CPU's branch predictor learn the model's data-dependent ops (TOPK_V2), which
  made an earlier single-input version of this loop report about half the time a device sees;
- ``warmup`` untimed calls, then ``runs`` samples; each sample sets its inputs *before* the clock
  starts and times ``invoke()`` alone (no output is read), with ``time.perf_counter_ns``.

    .venv/bin/python benchmarks/raw_litert_loop.py MODEL.tflite|BUNDLE_DIR [--runs N] [--warmup N]

Prints one JSON object: ``{"model", "runs", "warmup", "num_threads", "pool", "p50_us", "mean_us"}``.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from pathlib import Path

import numpy as np
from ai_edge_litert.interpreter import Interpreter

POOL = 64


def _gather_rows(interpreter: Interpreter) -> dict[int, int]:
    """Rows of the embedding table each gathered-by input indexes (input tensor index -> rows)."""
    shapes = {d["index"]: d["shape"] for d in interpreter.get_tensor_details()}
    inputs = {d["index"] for d in interpreter.get_input_details()}
    rows: dict[int, int] = {}
    for op in interpreter._get_ops_details():
        operands = list(op.get("inputs", []))
        if op.get("op_name") == "GATHER" and len(operands) >= 2 and operands[1] in inputs:
            table_rows = int(shapes[operands[0]][0])
            rows[operands[1]] = min(table_rows, rows.get(operands[1], table_rows))
    return rows


def input_pool(interpreter: Interpreter, seed: int = 0) -> list[list[tuple[int, np.ndarray]]]:
    """``POOL`` random input sets, each a list of (input tensor index, array) (module docstring)."""
    rng = np.random.default_rng(seed)
    rows = _gather_rows(interpreter)
    pool = []
    for _ in range(POOL):
        inputs = []
        for detail in interpreter.get_input_details():
            dtype, shape = np.dtype(detail["dtype"]), detail["shape"]
            if np.issubdtype(dtype, np.floating):
                value = rng.standard_normal(shape).astype(dtype)
            elif detail["index"] not in rows and dtype in (np.int8, np.uint8, np.int16):
                info = np.iinfo(dtype)  # a quantized input: its whole range
                value = rng.integers(info.min, int(info.max) + 1, size=shape).astype(dtype)
            else:
                value = rng.integers(0, rows.get(detail["index"], 2), size=shape).astype(dtype)
            inputs.append((detail["index"], value))
        pool.append(inputs)
    return pool


def raw_invoke_p50(model: Path, *, runs: int, warmup: int, num_threads: int = 1,
                   seed: int = 0) -> dict:
    """Median and mean of ``invoke()`` alone in µs over ``runs`` calls after ``warmup`` calls."""
    interpreter = Interpreter(model_path=str(model), num_threads=num_threads)
    interpreter.allocate_tensors()
    pool = input_pool(interpreter, seed)
    for i in range(warmup):
        for index, value in pool[i % POOL]:
            interpreter.set_tensor(index, value)
        interpreter.invoke()
    samples = []
    for i in range(runs):
        for index, value in pool[i % POOL]:
            interpreter.set_tensor(index, value)
        start = time.perf_counter_ns()
        interpreter.invoke()
        samples.append((time.perf_counter_ns() - start) / 1000.0)
    return {"model": str(model), "runs": runs, "warmup": warmup, "num_threads": num_threads,
            "pool": POOL, "p50_us": statistics.median(samples), "mean_us": statistics.fmean(samples)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("model", type=Path, help="a .tflite file or a bundle directory")
    parser.add_argument("--runs", type=int, default=500)
    parser.add_argument("--warmup", type=int, default=50)
    parser.add_argument("--num-threads", type=int, default=1)
    args = parser.parse_args()
    model = args.model / "model.tflite" if args.model.is_dir() else args.model
    print(json.dumps(raw_invoke_p50(model, runs=args.runs, warmup=args.warmup,
                                    num_threads=args.num_threads)))


if __name__ == "__main__":
    main()
