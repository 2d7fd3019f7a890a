#!/usr/bin/env python3
"""Times onnxruntime's raw inference on the committed models and golden input tensors.

The reference the Rust (tract) numbers are paired with: same .onnx file, same tensor
(ml/tests/fixtures/golden/<model>-coffee.input.f32), no decode or preprocessing. Three setups per model:
  threads=1              one session, 1 intra-op thread, sequential calls
  threads=2              one session, 2 intra-op threads, sequential calls
  streams=2 threads=1    two sessions with 1 intra-op thread each, run from two threads at once
                         (onnxruntime releases the GIL while it runs), as two peer workers would

Prints one JSON object per line: median / p10 / p90 latency in ms over --runs timed calls (after
--warmup untimed ones) and images per second (for streams, all images over the wall time).

Usage: .venv-bench/bin/python benches/ort_infer.py [--model efficientnet-lite0] [--runs 100]
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import threading
import time
from pathlib import Path

import numpy as np
import onnxruntime as ort

ROOT = Path(__file__).resolve().parent.parent
MODEL_DIR = ROOT / "ml" / "model"
GOLDEN = ROOT / "ml" / "tests" / "fixtures" / "golden"


def session(path: Path, threads: int) -> ort.InferenceSession:
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = threads
    opts.inter_op_num_threads = 1
    opts.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    return ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])


def time_calls(sess: ort.InferenceSession, tensor: np.ndarray, warmup: int, runs: int) -> list[float]:
    feed = {"input": tensor}
    for _ in range(warmup):
        sess.run(["logits"], feed)
    times = []
    for _ in range(runs):
        t = time.perf_counter()
        sess.run(["logits"], feed)
        times.append((time.perf_counter() - t) * 1e3)
    return times


def summary(times: list[float]) -> dict:
    a = np.asarray(times)
    return {
        "runs": int(a.size),
        "median_ms": round(float(np.median(a)), 3),
        "p10_ms": round(float(np.percentile(a, 10)), 3),
        "p90_ms": round(float(np.percentile(a, 90)), 3),
        "min_ms": round(float(a.min()), 3),
    }


def main(argv: list[str]) -> int:
    manifest = json.loads((MODEL_DIR / "manifest.json").read_text(encoding="utf-8"))
    names = [m["name"] for m in manifest["models"]]
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    parser.add_argument("--model", action="append", choices=names, help="model to time (repeatable; default all)")
    parser.add_argument("--runs", type=int, default=100, help="timed calls per setup (at least 60)")
    parser.add_argument("--warmup", type=int, default=10, help="untimed calls first")
    args = parser.parse_args(argv)
    if args.runs < 60:
        parser.error("--runs must be at least 60")

    for entry in manifest["models"]:
        if args.model and entry["name"] not in args.model:
            continue
        path = MODEL_DIR / entry["file"]
        short = entry["name"].removeprefix("efficientnet-")
        shape = (1, 3, entry["input_size"], entry["input_size"])
        tensor = np.fromfile(GOLDEN / f"{short}-coffee.input.f32", dtype="<f4").reshape(shape)
        base = {
            "engine": "onnxruntime",
            "engine_version": ort.__version__,
            "model": entry["name"],
            "input": f"ml/tests/fixtures/golden/{short}-coffee.input.f32",
            "cpus": os.cpu_count(),
        }
        for threads in (1, 2):
            times = time_calls(session(path, threads), tensor, args.warmup, args.runs)
            s = summary(times)
            print(json.dumps({**base, "setup": f"threads={threads}", "threads": threads, "streams": 1, **s,
                              "images_per_s": round(1e3 / s["median_ms"], 1)}), flush=True)

        sessions = [session(path, 1), session(path, 1)]
        results: list[list[float]] = [[], []]
        for s in sessions:
            time_calls(s, tensor, args.warmup, 0)
        barrier = threading.Barrier(3)

        def stream(i: int) -> None:
            barrier.wait()
            results[i] = time_calls(sessions[i], tensor, 0, args.runs)

        workers = [threading.Thread(target=stream, args=(i,)) for i in range(2)]
        for w in workers:
            w.start()
        barrier.wait()
        started = time.perf_counter()
        for w in workers:
            w.join()
        wall = time.perf_counter() - started
        s = summary(results[0] + results[1])
        print(json.dumps({**base, "setup": "streams=2 threads=1", "threads": 1, "streams": 2, **s,
                          "images_per_s": round(2 * args.runs / wall, 1)}), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
