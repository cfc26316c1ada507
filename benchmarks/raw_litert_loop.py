"""The reference: a minimal hand-written ai_edge_litert loop, to check the benchmark's raw invoke.

Load the model, allocate tensors, set random inputs, time ``invoke()`` alone, print the median.
Deliberately independent of ``device_runtime`` so it can cross-check ``edge-rec benchmark``'s
``raw_invoke_us.p50`` (issue 6: they must agree within 20% in the same ``make bench`` run).

    .venv/bin/python benchmarks/raw_litert_loop.py MODEL.tflite|BUNDLE_DIR [--runs N] [--warmup N]

Prints one JSON object: ``{"model", "runs", "warmup", "num_threads", "p50_us", "mean_us"}``.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from pathlib import Path

import numpy as np
from ai_edge_litert.interpreter import Interpreter


def raw_invoke_p50(model: Path, *, runs: int, warmup: int, num_threads: int = 1,
                   seed: int = 0) -> dict:
    """Median and mean of ``invoke()`` in µs over ``runs`` calls after ``warmup`` calls."""
    interpreter = Interpreter(model_path=str(model), num_threads=num_threads)
    interpreter.allocate_tensors()
    rng = np.random.default_rng(seed)
    inputs = []
    for detail in interpreter.get_input_details():
        dtype = np.dtype(detail["dtype"])
        if np.issubdtype(dtype, np.floating):
            value = rng.standard_normal(detail["shape"]).astype(dtype)
        else:  # ids 2..9: real items of any catalog with at least 10 entries
            value = rng.integers(2, 10, size=detail["shape"]).astype(dtype)
        inputs.append((detail["index"], value))
    for _ in range(warmup):
        for index, value in inputs:
            interpreter.set_tensor(index, value)
        interpreter.invoke()
    samples = []
    for _ in range(runs):
        for index, value in inputs:
            interpreter.set_tensor(index, value)
        start = time.perf_counter_ns()
        interpreter.invoke()
        samples.append((time.perf_counter_ns() - start) / 1000.0)
    return {"model": str(model), "runs": runs, "warmup": warmup, "num_threads": num_threads,
            "p50_us": statistics.median(samples), "mean_us": statistics.fmean(samples)}


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
