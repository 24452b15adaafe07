"""A segmenter through the project's own compression and conversion commands, in one run:

1. `edgecnn eval` of the trained checkpoint (per-label IoU, mIoU on the held-out split);
2. `edgecnn convert --to tflite --precision both`: fp32 and full-int8 TFLite files, each
   measured by the converter's gate (mIoU on the held-out split, budget 1 point; a file
   beyond it is written all the same, marked as failed, so that it can be timed);
3. `edgecnn prune --target-macs 0.5` with fine-tuning, then the pruned checkpoint
   converted the same way;
4. `edgecnn bench` of the four TFLite files (LiteRT, the given thread counts, each in a
   fresh process) and `edgecnn bench report`, whose Pareto table puts each file's
   mIoU (from its card) beside its latency and size.

    python benchmarks/segment_compress.py CHECKPOINT [--prune-epochs 3] [--prune-lr 0.01] [--out runs/segment-compress]
"""
from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def edgecnn(*args: str) -> str:
    result = subprocess.run([sys.executable, "-m", "edgecnn", *map(str, args)], capture_output=True, text=True,
                            cwd=ROOT)
    if result.returncode != 0:
        raise SystemExit(f"edgecnn {' '.join(map(str, args))} failed ({result.returncode}):\n{result.stderr[-3000:]}")
    return result.stdout


def convert(source: Path, out: Path) -> list:
    """fp32 and int8 TFLite files; a file the gate refuses is written anyway (--force) so
    that it can be timed, and its report says it failed."""
    reports = json.loads(edgecnn("convert", source, "--to", "tflite", "--precision", "both", "--out", out, "--json",
                                 "--force"))
    return [{"file": r["file"], "precision": r.get("precision"), "passed": r.get("passed"), "gate": r.get("gate"),
             "transposes": r.get("transposes"), "float_tensors": r.get("float_tensors"),
             "agreement": r.get("agreement")} for r in reports]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("checkpoint")
    parser.add_argument("--prune-epochs", type=int, default=3)
    parser.add_argument("--prune-lr", type=float, default=None, help="fine-tuning learning rate (prune's default: 0.01)")
    parser.add_argument("--threads", default="2")
    parser.add_argument("--out", default="runs/segment-compress")
    parser.add_argument("--pruned", default=None, metavar="CKPT",
                        help="a pruned checkpoint this script made before: skip steps 1-3 for it")
    args = parser.parse_args()
    out = Path(args.out).resolve()
    out.mkdir(parents=True, exist_ok=True)
    checkpoint = Path(args.checkpoint).resolve()
    summary = {"checkpoint": str(checkpoint)}
    if args.pruned is None:
        report = json.loads(edgecnn("eval", checkpoint, "--json", "--plot", out / "predictions.png"))
        summary["eval"] = {"miou": report["miou"], "pixel_accuracy": report["pixel_accuracy"],
                           "per_class": {c["label"]: c["iou"] for c in report["per_class"]}}
        print(json.dumps(summary["eval"]), flush=True)
        summary["converted"] = convert(checkpoint, out / "tflite")
        print(json.dumps(summary["converted"]), flush=True)
        pruned = out / "pruned.pt"
        rate = ["--lr", args.prune_lr] if args.prune_lr is not None else []
        summary["prune"] = json.loads(edgecnn("prune", checkpoint, "--target-macs", "0.5", "--epochs",
                                              args.prune_epochs, *rate, "--out", pruned, "--force", "--json"))
        print(json.dumps(summary["prune"]), flush=True)
    else:
        pruned = Path(args.pruned).resolve()
        summary["converted"] = [{"file": str(p)} for p in sorted((out / "tflite").glob("*.tflite"))]
    summary["pruned_converted"] = convert(pruned, out / "tflite-pruned")
    print(json.dumps(summary["pruned_converted"]), flush=True)
    files = [c["file"] for c in summary["converted"] + summary["pruned_converted"]]
    bench = out / "bench.jsonl"
    bench.unlink(missing_ok=True)
    edgecnn("bench", *files, "--backend", "litert", "--threads", args.threads, "--runs", "300", "--json", bench)
    edgecnn("bench", "report", bench, "--out", out / "report")
    summary["bench"] = [{"model": r["model"], "threads": r.get("threads"), "p50_ms": r["latency_ms"]["p50"],
                         "accuracy": r.get("accuracy")} for r in map(json.loads, bench.read_text().splitlines())
                        if r.get("status") == "ok"]
    (out / "summary.json").write_text(json.dumps(summary, indent=1))
    print(json.dumps(summary["bench"], indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
