"""Whether reading a stream's statistics (StreamStats.snapshot(): what /stats.json and
the summary return) makes the process grow (benchmarks/RESULTS.md, "Soak and faults").

A StreamStats is fed results as a stream would (a frame age and an inference time
each), without a model or a camera, with or without a camera frame's buffer made and
freed per result (as a pipeline does: freeing a buffer larger than glibc's mmap
threshold raises that threshold, after which buffers of that size come from the
arenas); every N results, snapshot() is called from
one of 8 worker threads in turn (as the web view's fixed pool serves
/stats.json), or from the feeding thread itself. RSS is read every 1000 results; each
variant runs alone in a fresh process. The slope is in bytes per result fed, so the
variants compare at any frame rate (15 FPS: 870 results a minute; the web view's page
polls /stats.json twice a second, one snapshot per 7 or 8 results).

    python benchmarks/investigations/stats_snapshot_memory.py [--results 40000]
"""
from __future__ import annotations

import argparse
import json
import os
import queue
import subprocess
import sys
import threading
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

FRAME_BYTES = 384 * 384 * 3  # the soak's camera frame
VARIANTS = {  # name: (snapshot every N results, worker threads (0: the feeding thread), a frame per result)
    "no snapshot": (0, 0, False),
    "every 870 results, 8 workers": (870, 8, False),
    "every 7 results, 8 workers": (7, 8, False),
    "every 7 results, feeding thread": (7, 0, False),
    "no snapshot, a 384x384 frame made and freed per result": (0, 0, True),
    "every 870 results, 8 workers, a frame per result": (870, 8, True),
    "every 7 results, 8 workers, a frame per result": (7, 8, True),
}


def rss_kb() -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise RuntimeError("no VmRSS")


class Result(list):
    """What StreamStats.add() and snapshot() read of a result: no objects."""

    frame_age_ms = 7.5
    inference_ms = 5.0

    def to_dict(self):
        return {}


def one(every: int, threads: int, frames: bool, results: int) -> dict:
    import numpy as np

    from edgecnn.runtime.stats import StreamStats

    stats = StreamStats()
    jobs: "queue.Queue" = queue.Queue()

    def work() -> None:
        while True:
            job = jobs.get()
            if job is None:
                return
            stats.snapshot()
            jobs.task_done()

    workers = [threading.Thread(target=work, daemon=True) for _ in range(threads)]
    for worker in workers:
        worker.start()
    rng = np.random.default_rng(0)
    points = []
    for index in range(results):
        result = Result()
        result.frame_age_ms, result.inference_ms = float(rng.uniform(5, 30)), float(rng.uniform(4, 8))
        if frames:  # a camera frame's buffer (above glibc's initial 128 KiB mmap threshold), filled and freed
            np.ones(FRAME_BYTES, np.uint8)
        stats.add(result)
        if every and index % every == 0:
            if threads:
                jobs.put(index)
                jobs.join()  # one request at a time, as a page polling
            else:
                stats.snapshot()
        if index % 1000 == 0:
            points.append((index, rss_kb()))
    for _ in workers:
        jobs.put(None)
    tail = [p for p in points if p[0] >= results // 4]  # past the interpreter's own start-up growth
    slope = float(np.polyfit([p[0] for p in tail], [p[1] * 1024 for p in tail], 1)[0])
    return {"bytes_per_result": round(slope, 1), "rss_first_kb": tail[0][1], "rss_last_kb": tail[-1][1]}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--results", type=int, default=40000)
    parser.add_argument("--one", default=None, help=argparse.SUPPRESS)  # the child process: a variant's name
    args = parser.parse_args()
    if args.one:
        print(json.dumps(one(*VARIANTS[args.one], args.results)))
        return 0
    print("| snapshots | RSS growth per result fed | RSS at 1/4 and at the end |")
    print("|---|---|---|")
    for name in VARIANTS:
        child = subprocess.run([sys.executable, __file__, "--one", name, "--results", str(args.results)],
                               capture_output=True, text=True, env={**os.environ, "PYTHONPATH": str(ROOT)})
        if child.returncode != 0:
            print(f"| {name} | failed: {child.stderr.strip().splitlines()[-1:]} | - |")
            continue
        row = json.loads(child.stdout.strip().splitlines()[-1])
        print(f"| {name} | {row['bytes_per_result']:.0f} B | {row['rss_first_kb'] / 1024:.1f} / "
              f"{row['rss_last_kb'] / 1024:.1f} MiB |", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
