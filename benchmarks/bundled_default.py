"""The bundled default on this device: which file `edgecnn run` with no model picks, the
two files' inference times in alternating rounds (so that load from other processes
falls on both alike), and the quick start's first-result time with a fresh and with a
warm choice cache.

    python benchmarks/bundled_default.py [--rounds 9] [--runs 200] [--threads 1,2]

Needs only edgecnn[runtime]. Prints a JSON record (and the table lines for RESULTS).
"""
from __future__ import annotations

import argparse
import json
import os
import re
import statistics
import subprocess
import sys
import tempfile

import numpy as np

from edgecnn.assets import RUNTIME_FP32, RUNTIME_INT8
from edgecnn.runtime.backends import open_backend, timed_runs
from edgecnn.runtime.bundled import median_ms


def quick_start(cache_home: str, frames: int) -> dict:
    """The README's first command (without --save's file), as a user runs it."""
    env = {**os.environ, "XDG_CACHE_HOME": cache_home}
    out = subprocess.run([sys.executable, "-m", "edgecnn", "run", "--source", "demo", "--max-frames", str(frames),
                          "--json", os.devnull], capture_output=True, text=True, env=env, check=True)
    choice = next(line for line in out.stderr.splitlines() if line.startswith("bundled model:"))
    summary = next(line for line in out.stderr.splitlines() if line.startswith("summary:"))
    return {"choice": choice, "summary": summary,
            "first_result_ms": float(re.search(r"first result (\d+) ms", summary).group(1)),
            "fps": float(re.search(r"([\d.]+) FPS", summary).group(1))}


def alternating(threads: int, rounds: int, runs: int) -> dict:
    files = {"int8": open_backend(str(RUNTIME_INT8), threads=threads),
             "fp32": open_backend(str(RUNTIME_FP32), threads=threads)}
    blobs = {name: np.zeros(backend.input_shape, np.float32) for name, backend in files.items()}
    for name, backend in files.items():
        timed_runs(backend.infer, blobs[name], 30)
    medians = {name: [] for name in files}
    for _ in range(rounds):
        for name, backend in files.items():
            medians[name].append(float(np.median(timed_runs(backend.infer, blobs[name], runs))))
    ratios = [f / i for f, i in zip(medians["fp32"], medians["int8"])]
    return {"threads": threads, **{f"{name}_ms": round(statistics.median(values), 3) for name, values in medians.items()},
            "fp32_over_int8": round(statistics.median(ratios), 3),
            "ratio_range": [round(min(ratios), 3), round(max(ratios), 3)],
            "choice_timing_ms": {name: round(median_ms(backend), 3) for name, backend in files.items()}}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=9)
    parser.add_argument("--runs", type=int, default=200)
    parser.add_argument("--threads", default="1,2")
    parser.add_argument("--frames", type=int, default=300)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as cache_home:
        fresh = quick_start(cache_home, args.frames)
        warm = quick_start(cache_home, args.frames)
    record = {"fresh_cache": fresh, "warm_cache": warm,
              "latency": [alternating(int(t), args.rounds, args.runs) for t in args.threads.split(",")]}
    print(json.dumps(record, indent=1))
    for row in record["latency"]:
        print(f"| {row['threads']} | {row['int8_ms']:.2f} | {row['fp32_ms']:.2f} | {row['fp32_over_int8']:.2f}x "
              f"({row['ratio_range'][0]:.2f}-{row['ratio_range'][1]:.2f}) |")


if __name__ == "__main__":
    main()
