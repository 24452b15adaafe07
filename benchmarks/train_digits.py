"""Digits benchmark: MobileNetV2-0.5 trained by `edgecnn train` on the 4000 real digit
tiles, scored on the 1000 held-out tiles, single process and 2-process torchrun (DDP).

The figure reported is the LAST epoch of a fixed schedule (no model selection on the
held-out split). With --bundle the single-process model becomes the package's bundled
model, so the shipped model is exactly the one measured here.

    python benchmarks/train_digits.py [--bundle] [--skip-ddp]
"""
from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
TRAIN = ["train", "--model", "mobilenet_v2", "--width", "0.5", "--data", "digits", "--imgsz", "48",
         "--epochs", "50", "--seed", "0", "--json"]


def timed(command, out: Path) -> dict:
    started = time.perf_counter()
    result = subprocess.run([*command, "--out", str(out)], capture_output=True, text=True, cwd=ROOT)
    seconds = time.perf_counter() - started
    if result.returncode != 0:
        sys.exit(f"failed: {' '.join(command)}\n{result.stderr[-2000:]}")
    summary = [json.loads(line) for line in result.stdout.splitlines() if line.startswith("{")][0]
    evaluation = subprocess.run([sys.executable, "-m", "edgecnn", "eval", str(out / "last.pt"), "--data", "digits",
                                 "--split", "test", "--json", "--plot", str(out / "confusion.png")],
                                capture_output=True, text=True, cwd=ROOT, check=True)
    report = json.loads(evaluation.stdout)
    return {"seconds": seconds, "held_out_top1": report["top1"], "best_epoch_top1": summary["best"],
            "images": report["images"], "world_size": summary["world_size"]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", default=str(ROOT / "runs" / "bench-digits"))
    parser.add_argument("--bundle", action="store_true", help="make the 1-process model the bundled model")
    parser.add_argument("--skip-ddp", action="store_true")
    args = parser.parse_args()
    out = Path(args.out)
    rows = {"1 process": timed([sys.executable, "-m", "edgecnn", *TRAIN], out / "one")}
    if not args.skip_ddp:
        rows["torchrun, 2 processes (DDP, gloo)"] = timed(
            [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
             "-m", "edgecnn", *TRAIN], out / "two")
    print("| run | wall time | held-out top-1 (last epoch) | best epoch |")
    print("|---|---|---|---|")
    for name, row in rows.items():
        print(f"| {name} | {row['seconds']:.0f} s | {100 * row['held_out_top1']:.2f}% of {row['images']} "
              f"| {100 * row['best_epoch_top1']:.2f}% |")
    if len(rows) == 2:
        one, two = rows.values()
        print(f"\nDDP - single: {100 * (two['held_out_top1'] - one['held_out_top1']):+.2f} points")
    if args.bundle:
        sys.path.insert(0, str(ROOT))
        from edgecnn.assets import DIGITS_CLASSIFIER
        from edgecnn.checkpoint import strip_checkpoint

        strip_checkpoint(out / "one" / "last.pt", DIGITS_CLASSIFIER)
        print(f"bundled: {DIGITS_CLASSIFIER.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
