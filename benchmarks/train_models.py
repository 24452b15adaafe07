"""Train the project's reference models with `edgecnn train`, time them, and score the
last epoch on the held-out split with `edgecnn eval` (a fixed schedule: no model
selection on the held-out data).

Presets:
  digits  MobileNetV2-0.5 classifier on the 4000 real digit tiles (1000 held out)
  shapes  MobileNetV2-0.5 detector on synthetic shapes at 192x192 (2000 train, 300 val)

    python benchmarks/train_models.py digits [--ddp] [--bundle]
    python benchmarks/train_models.py shapes [--bundle]

--ddp also runs the same training under torchrun with 2 processes (DDP, gloo).
--bundle makes the single-process model the package's bundled model, so the shipped
model is exactly the one measured here.
"""
from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PRESETS = {
    "digits": {"train": ["--task", "classify", "--model", "mobilenet_v2", "--width", "0.5", "--data", "digits",
                         "--imgsz", "80", "--epochs", "40", "--batch", "32", "--optimizer", "sgd", "--lr", "0.05",
                         "--seed", "0"],
               "data": "digits", "metric": "top1", "bundle": "digits_mobilenet_v2.pt"},
    "shapes": {"train": ["--task", "detect", "--model", "mobilenet_v2", "--width", "0.5", "--data", "shapes",
                         "--imgsz", "192", "--epochs", "24", "--batch", "16", "--lr", "0.002", "--seed", "0"],
               "data": "shapes", "metric": "map50_95", "bundle": "shapes_detector.pt"},
}


def run(command, out: Path, preset: dict) -> dict:
    started = time.perf_counter()
    result = subprocess.run([*command, *preset["train"], "--json", "--out", str(out)], capture_output=True,
                            text=True, cwd=ROOT)
    seconds = time.perf_counter() - started
    if result.returncode != 0:
        sys.exit(f"failed: {' '.join(command)}\n{result.stderr[-3000:]}")
    summary = [json.loads(line) for line in result.stdout.splitlines() if line.startswith("{")][0]
    evaluation = subprocess.run([sys.executable, "-m", "edgecnn", "eval", str(out / "last.pt"), "--data",
                                 preset["data"], "--json", "--plot", str(out / "eval.png")],
                                capture_output=True, text=True, cwd=ROOT, check=True)
    return {"seconds": seconds, "report": json.loads(evaluation.stdout), "summary": summary}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("preset", choices=sorted(PRESETS))
    parser.add_argument("--out", default=None)
    parser.add_argument("--ddp", action="store_true")
    parser.add_argument("--bundle", action="store_true")
    args = parser.parse_args()
    preset = PRESETS[args.preset]
    out = Path(args.out or ROOT / "runs" / f"bench-{args.preset}")
    edgecnn = [sys.executable, "-m", "edgecnn", "train"]
    rows = {"1 process": run(edgecnn, out / "one", preset)}
    if args.ddp:
        rows["torchrun, 2 processes (DDP, gloo)"] = run(
            [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
             "-m", "edgecnn", "train"], out / "two", preset)
    metric = preset["metric"]
    print(f"`edgecnn train {' '.join(preset['train'])}`\n")
    if metric == "top1":
        print("| run | wall time | held-out top-1 (last epoch) | best epoch |\n|---|---|---|---|")
        for name, row in rows.items():
            print(f"| {name} | {row['seconds']:.0f} s | {100 * row['report']['top1']:.2f}% "
                  f"of {row['report']['images']} | {100 * row['summary']['best']:.2f}% |")
    else:
        print("| run | wall time | mAP@0.5:0.95 | mAP@0.5 | per-class AP@0.5:0.95 |\n|---|---|---|---|---|")
        for name, row in rows.items():
            report = row["report"]
            classes = ", ".join(f"{c['label']} {100 * c['ap50_95']:.1f}" for c in report["per_class"])
            print(f"| {name} | {row['seconds']:.0f} s | {100 * report['map50_95']:.2f} | "
                  f"{100 * report['map50']:.2f} | {classes} |")
    if len(rows) == 2:
        one, two = (row["report"][metric] for row in rows.values())
        print(f"\nDDP minus single process: {100 * (two - one):+.2f} points")
    if args.bundle:
        sys.path.insert(0, str(ROOT))
        from edgecnn.assets import ASSETS
        from edgecnn.checkpoint import strip_checkpoint

        strip_checkpoint(out / "one" / "last.pt", ASSETS / preset["bundle"])
        print(f"\nbundled: edgecnn/assets/{preset['bundle']}")


if __name__ == "__main__":
    main()
