"""Train the project's reference models with `edgecnn train`, time them, and score the
last epoch on the held-out split with `edgecnn eval` (a fixed schedule: no model
selection on the held-out data).

Presets:
  digits  MobileNetV2-0.5 classifier on the 4000 real digit tiles (1000 held out)
  shapes  MobileNetV2-0.5 detector on synthetic shapes at 192x192 (2000 train, 300 val)

    python benchmarks/assets/train_models.py digits [--ddp] [--seeds 0,1,2] [--bundle]
    python benchmarks/assets/train_models.py shapes [--bundle] [-- EXTRA edgecnn train ARGS]

--ddp also runs the same training under torchrun with 2 processes (DDP, gloo).
--seeds runs every mode once per seed and compares the means (seed-to-seed spread on
1000 held-out digits is of the order of the differences being measured).
--bundle makes the single-process model the package's bundled model, so the shipped
model is exactly the one measured here.
"""
from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PRESETS = {
    "digits": {"train": ["--task", "classify", "--model", "mobilenet_v2", "--width", "0.5", "--data", "digits",
                         "--imgsz", "80", "--epochs", "40", "--batch", "32", "--optimizer", "sgd", "--lr", "0.05",
                         "--seed", "0"],
               "data": "digits", "metric": "top1", "bundle": "digits_mobilenet_v2.pt"},
    "shapes": {"train": ["--task", "detect", "--model", "mobilenet_v2", "--width", "0.5", "--data", "shapes",
                         "--imgsz", "192", "--progressive-from", "64", "--epochs", "40", "--batch", "16", "--lr", "0.012",
                         "--val-every", "5",
                         "--tap", "expansion", "--weight-decay", "0.01", "--seed", "0"],
               "data": "shapes", "metric": "map50_95", "bundle": "shapes_detector.pt"},
}


def run(command, out: Path, preset: dict) -> dict:
    started = time.perf_counter()
    result = subprocess.run([*command, *preset["train"], "--json", "--out", str(out)], capture_output=True,
                            text=True, cwd=ROOT, check=False)
    seconds = time.perf_counter() - started
    if result.returncode != 0:
        sys.exit(f"failed: {' '.join(command)}\n{result.stderr[-3000:]}")
    summary = next(json.loads(line) for line in result.stdout.splitlines() if line.startswith("{"))
    evaluation = subprocess.run([sys.executable, "-m", "edgecnn", "eval", str(out / "last.pt"), "--data",
                                 preset["data"], "--json", "--plot", str(out / "eval.png")],
                                capture_output=True, text=True, cwd=ROOT, check=True)
    return {"seconds": seconds, "report": json.loads(evaluation.stdout), "summary": summary}


def with_seed(preset: dict, seed: int) -> dict:
    train = list(preset["train"])
    train[train.index("--seed") + 1] = str(seed)
    return dict(preset, train=train)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("preset", choices=sorted(PRESETS))
    parser.add_argument("--out", default=None)
    parser.add_argument("--ddp", action="store_true")
    parser.add_argument("--seeds", default="0", help="comma-separated training seeds; each is run in every mode")
    parser.add_argument("--bundle", action="store_true")
    argv = sys.argv[1:]
    split = argv.index("--") if "--" in argv else len(argv)
    args = parser.parse_args(argv[:split])
    args.extra = argv[split + 1:]  # after --: more `edgecnn train` arguments, e.g. -- --tap expansion
    owned = {"--seed", "--out", "--json"} & {a.split("=")[0] for a in args.extra}
    if owned:
        parser.error(f"{', '.join(sorted(owned))} after -- would clash with this script's own "
                     f"(use --seeds and --out before --)")
    seeds = [int(s) for s in args.seeds.split(",")]
    out = Path(args.out or ROOT / "runs" / f"bench-{args.preset}")
    edgecnn = [sys.executable, "-m", "edgecnn", "train"]
    modes = {"1 process": (edgecnn, "one")}
    if args.ddp:
        modes["torchrun, 2 processes (DDP, gloo)"] = (
            [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
             "-m", "edgecnn", "train"], "two")
    base = dict(PRESETS[args.preset], train=[*PRESETS[args.preset]["train"], *args.extra])
    rows = []  # (mode, seed, result)
    for seed in seeds:
        preset = with_seed(base, seed)
        for mode, (command, folder) in modes.items():
            directory = out / folder if len(seeds) == 1 else out / f"{folder}-seed{seed}"
            rows.append((mode, seed, run(command, directory, preset)))
    metric = PRESETS[args.preset]["metric"]
    print(f"`edgecnn train {' '.join(base['train'])}` (seed as listed)\n")
    if metric == "top1":
        print("| run | seed | wall time | held-out top-1 (last epoch) | best epoch |\n|---|---|---|---|---|")
        for mode, seed, row in rows:
            print(f"| {mode} | {seed} | {row['seconds']:.0f} s | {100 * row['report']['top1']:.2f}% "
                  f"of {row['report']['images']} | {100 * row['summary']['best']:.2f}% |")
    else:
        print("| run | seed | wall time | mAP@0.5:0.95 | mAP@0.5 | per-class AP@0.5:0.95 |\n|---|---|---|---|---|---|")
        for mode, seed, row in rows:
            report = row["report"]
            classes = ", ".join(f"{c['label']} {100 * c['ap50_95']:.1f}" for c in report["per_class"])
            print(f"| {mode} | {seed} | {row['seconds']:.0f} s | {100 * report['map50_95']:.2f} | "
                  f"{100 * report['map50']:.2f} | {classes} |")
    means = {mode: statistics.mean(row["report"][metric] for m, _, row in rows if m == mode) for mode in modes}
    if len(seeds) > 1:
        print("\n" + "; ".join(f"{mode}: mean {100 * value:.2f} over {len(seeds)} seeds"
                                for mode, value in means.items()))
    if len(means) == 2:
        one, two = means.values()
        print(f"\nDDP minus single process{' (means)' if len(seeds) > 1 else ''}: {100 * (two - one):+.2f} points")
    if args.bundle:
        sys.path.insert(0, str(ROOT))
        from edgecnn.assets import ASSETS
        from edgecnn.training.checkpoint import strip_checkpoint

        first = out / "one" if len(seeds) == 1 else out / f"one-seed{seeds[0]}"
        strip_checkpoint(first / "last.pt", ASSETS / PRESETS[args.preset]["bundle"])
        print(f"\nbundled: edgecnn/assets/{PRESETS[args.preset]['bundle']}")


if __name__ == "__main__":
    main()
