"""Which CPU clock can tell `edgecnn bench` that other processes took the CPU
(benchmarks/RESULTS.md, "Test suite").

Over timed windows of the length `bench` uses, it reads CPU-seconds per wall second
from the whole process's clock and from the calling thread's:

1. A pure-Python busy loop of 1 ms, with a second thread hashing (it releases the GIL,
   so both cores are busy): the process clock adds the second thread's time only at
   scheduler ticks, so its share is spread far around the true 2.0.
2. Each model given, at 1 and 2 threads, over 100 and 1000 runs on a quiet machine:
   the calling thread's share, which `bench` flags below 0.8.

    python benchmarks/investigations/cpu_clock.py MODEL... [--windows 200]
"""
from __future__ import annotations

import argparse
import hashlib
import sys
import threading
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from edgecnn.bench.measure import sample_input  # noqa: E402
from edgecnn.runtime.backends import open_backend  # noqa: E402


def shares_beside_a_busy_thread(windows: int) -> dict:
    """Process and thread CPU shares over 1 ms windows while another thread computes."""
    stop = threading.Event()

    def hash_until_stopped() -> None:
        while not stop.is_set():
            hashlib.sha256(b"x" * 10_000_000).digest()

    worker = threading.Thread(target=hash_until_stopped)
    worker.start()
    time.sleep(0.1)
    process, thread = [], []
    for _ in range(windows):
        cpu, own, wall = time.process_time(), time.thread_time(), time.perf_counter()
        while time.perf_counter() - wall < 0.001:
            pass
        elapsed = time.perf_counter() - wall
        process.append((time.process_time() - cpu) / elapsed)
        thread.append((time.thread_time() - own) / elapsed)
    stop.set()
    worker.join()
    return {name: [round(float(v), 2) for v in np.percentile(values, [0, 50, 100])]
            for name, values in (("process min/median/max", process), ("thread min/median/max", thread))}


def shares_while_inferring(model: str, threads: int, runs: int) -> dict:
    backend = open_backend(model, "auto", threads)
    blob = sample_input(backend)
    for _ in range(20):
        backend.infer(blob)
    cpu, own, wall = time.process_time(), time.thread_time(), time.perf_counter()
    for _ in range(runs):
        backend.infer(blob)
    elapsed = time.perf_counter() - wall
    return {"model": Path(model).name, "backend": backend.name, "threads": threads, "runs": runs,
            "window_s": round(elapsed, 3), "process": round((time.process_time() - cpu) / elapsed, 2),
            "thread": round((time.thread_time() - own) / elapsed, 2)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("models", nargs="+")
    parser.add_argument("--windows", type=int, default=200)
    args = parser.parse_args()
    print("1 ms windows beside a busy thread:", shares_beside_a_busy_thread(args.windows))
    for model in args.models:
        for threads in (1, 2):
            for runs in (100, 1000):
                print(shares_while_inferring(model, threads, runs))


if __name__ == "__main__":
    main()
