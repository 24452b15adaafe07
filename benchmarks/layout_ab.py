"""The bundled models before and after a code change, in one run: held-out accuracy
(`edgecnn eval` on the bundled checkpoints) and end-to-end runtime latency of the
bundled TFLite detector (image -> preprocess -> LiteRT -> head decode + NMS -> result),
each side in its own process importing its own tree, latency in alternating rounds.

    python benchmarks/layout_ab.py --before 90badea [--rounds 7 --frames 200]

The "before" tree is a git worktree of that commit in a temporary directory.
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

LATENCY = r"""
import json, sys, time
import edgecnn
assert edgecnn.__file__.startswith(sys.argv[1]), edgecnn.__file__
from edgecnn.data.detection import shapes_scene
model = edgecnn.load(threads=int(sys.argv[3]))
images = [shapes_scene(7, "val", i)[0] for i in range(50)]
for image in images[:10]:
    model.predict(image)
times = []
found = 0
for i in range(int(sys.argv[2])):
    start = time.perf_counter()
    result = model.predict(images[i % len(images)])
    times.append((time.perf_counter() - start) * 1000)
    found += len(result)
print(json.dumps({"times": times, "objects": found}))
"""


def run_python(tree: Path, code: str, *args: str) -> str:
    result = subprocess.run([sys.executable, "-c", code, str(tree), *args], cwd=tree, capture_output=True,
                            text=True, env={**os.environ, "PYTHONPATH": str(tree)}, timeout=1800)
    if result.returncode != 0:
        raise SystemExit(f"{tree}: {result.stderr[-2000:]}")
    return result.stdout


def accuracy(tree: Path) -> dict:
    figures = {}
    for name, checkpoint, data, metric in (("detector", "edgecnn/assets/shapes_detector.pt", "shapes", "map50_95"),
                                           ("classifier", "edgecnn/assets/digits_mobilenet_v2.pt", "digits", "top1")):
        out = subprocess.run([sys.executable, "-m", "edgecnn", "eval", checkpoint, "--data", data, "--json",
                              "--plot", ""], cwd=tree, capture_output=True, text=True,
                             env={**os.environ, "PYTHONPATH": str(tree)}, timeout=1800)
        if out.returncode != 0:
            raise SystemExit(f"{tree}: eval {checkpoint}: {out.stderr[-2000:]}")
        report = json.loads(out.stdout)
        figures[name] = {metric: report[metric], **({"map50": report["map50"]} if "map50" in report else {})}
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--before", required=True, help="commit of the 'before' tree")
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--frames", type=int, default=200)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as scratch:
        before = Path(scratch) / "before"
        subprocess.run(["git", "worktree", "add", "--detach", str(before), args.before], cwd=ROOT, check=True,
                       capture_output=True)
        try:
            trees = {"before": before, "after": ROOT}
            commits = {side: subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=tree, capture_output=True,
                                            text=True).stdout.strip() for side, tree in trees.items()}
            results = {side: {"commit": commits[side], "accuracy": accuracy(tree), "round_medians_ms": []}
                       for side, tree in trees.items()}
            objects = {}
            for _ in range(args.rounds):
                for side, tree in trees.items():
                    measured = json.loads(run_python(tree, LATENCY, str(args.frames), str(args.threads)))
                    results[side]["round_medians_ms"].append(statistics.median(measured["times"]))
                    objects.setdefault(side, set()).add(measured["objects"])
            for side in trees:
                medians = results[side]["round_medians_ms"]
                results[side]["latency_ms_median_of_rounds"] = statistics.median(medians)
                results[side]["objects_found"] = sorted(objects[side])
        finally:
            subprocess.run(["git", "worktree", "remove", "--force", str(before)], cwd=ROOT, capture_output=True)
    ratio = results["after"]["latency_ms_median_of_rounds"] / results["before"]["latency_ms_median_of_rounds"]
    print(json.dumps({**results, "after_over_before_latency": round(ratio, 4)}, indent=1))


if __name__ == "__main__":
    main()
