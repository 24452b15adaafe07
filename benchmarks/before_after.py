"""The bundled models measured by two versions of edgecnn in one run: accuracy (each
version's own `edgecnn eval` of every bundled file on its held-out split) and latency
(each version's own `edgecnn run` end to end and inference alone, in alternating rounds
so that the machine's drift falls on both alike). A refactor that claims to preserve
behaviour must give the same accuracy to the last digit and a latency ratio near 1.

    python benchmarks/before_after.py BEFORE_REV [--after WORKTREE] [--rounds 5] [--json PATH]

BEFORE_REV is checked out into a temporary git worktree; the after side is this
checkout (or --after). Both run with this interpreter, each with its own tree first on
PYTHONPATH.
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
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
# each bundled file with the dataset its card was measured on
FILES = {"edgecnn/assets/shapes_detector.tflite": "shapes", "edgecnn/assets/shapes_detector-int8.tflite": "shapes",
         "edgecnn/assets/shapes_detector.pt": "shapes", "edgecnn/assets/digits_mobilenet_v2.pt": "digits"}
TIMING = re.compile(r"summary: (\d+) frames, ([\d.]+) FPS, latency \(frame age\) p50 ([\d.]+) ms p99 ([\d.]+) ms, "
                    r"inference p50 ([\d.]+) ms")


def edgecnn(tree: Path, *args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(tree), "OMP_NUM_THREADS": "2"}
    return subprocess.run([sys.executable, "-m", "edgecnn", *args], capture_output=True, text=True, env=env,
                          cwd=tree, timeout=1800)


def accuracy(tree: Path) -> dict:
    found = {}
    for path, data in FILES.items():
        out = edgecnn(tree, "eval", str(tree / path), "--data", data, "--json", "--plot", "")
        if out.returncode != 0:
            raise SystemExit(f"{tree}: eval {path} failed: {out.stderr.strip().splitlines()[-1]}")
        report = json.loads(out.stdout)
        found[path] = {key: report[key] for key in ("top1", "map50_95", "map50", "miou") if key in report}
    return found


def run_timing(tree: Path, path: str, threads: int) -> dict:
    """`edgecnn run` end to end on the demo scene, as fast as frames come, on LiteRT by
    name (an `auto` choice may run a file's sibling of another precision)."""
    out = edgecnn(tree, "run", str(tree / path), "--source", "demo?fps=1000&size=384", "--max-frames", "300",
                  "--backend", "litert", "--threads", str(threads), "--json", os.devnull)
    match = TIMING.search(out.stderr)
    if out.returncode != 0 or match is None:
        raise SystemExit(f"{tree}: run {path} failed: {out.stderr.strip()[-300:]}")
    return {"fps": float(match.group(2)), "inference_p50_ms": float(match.group(5))}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("before", help="the git revision measured as 'before'")
    parser.add_argument("--after", default=str(ROOT), help="the tree measured as 'after' (default: this checkout)")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--threads", default="1,2")
    parser.add_argument("--json", default=None)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        before = Path(tmp) / "before"
        subprocess.run(["git", "-C", str(ROOT), "worktree", "add", "--detach", str(before), args.before],
                       check=True, capture_output=True)
        try:
            trees = {"before": before, "after": Path(args.after)}
            record = {"before": args.before, "after": subprocess.run(
                ["git", "-C", args.after, "rev-parse", "--short", "HEAD"], capture_output=True, text=True).stdout.strip(),
                "accuracy": {side: accuracy(tree) for side, tree in trees.items()}, "latency": []}
            for path in (p for p in FILES if p.endswith(".tflite")):
                for threads in (int(t) for t in args.threads.split(",")):
                    rounds = {side: [] for side in trees}
                    for _ in range(args.rounds):
                        for side, tree in trees.items():
                            rounds[side].append(run_timing(tree, path, threads))
                    ratios = [a["inference_p50_ms"] / b["inference_p50_ms"] for a, b in zip(rounds["after"],
                                                                                       rounds["before"])]
                    fps_ratios = [a["fps"] / b["fps"] for a, b in zip(rounds["after"], rounds["before"])]
                    record["latency"].append({
                        "file": path, "threads": threads,
                        **{f"{side}_inference_p50_ms": statistics.median(r["inference_p50_ms"] for r in values)
                           for side, values in rounds.items()},
                        **{f"{side}_fps": statistics.median(r["fps"] for r in values) for side, values in rounds.items()},
                        "after_over_before_inference": round(statistics.median(ratios), 3),
                        "after_over_before_fps": round(statistics.median(fps_ratios), 3)})
        finally:
            subprocess.run(["git", "-C", str(ROOT), "worktree", "remove", "--force", str(before)], capture_output=True)
    with open("/proc/cpuinfo") as handle:
        flags = next(line for line in handle if line.startswith("flags")).split(":")[1].split()
    record["cpu_flags"] = sorted(f for f in flags if f.startswith(("avx", "sse4", "fma", "f16c", "amx")))
    text = json.dumps(record, indent=1)
    print(text)
    if args.json:
        Path(args.json).write_text(text + "\n")


if __name__ == "__main__":
    main()
