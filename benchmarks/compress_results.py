"""Compression and conversion results with the project's own commands, in one run:

1. digits classifier: prune to 50% of the MACs (+ fine-tuning), then convert the fp32
   and the pruned checkpoints to ONNX and TFLite, fp32 and int8 (`--precision both`);
   every file's accuracy is measured on the 1000 held-out digits by the converter's
   gate; latency is measured here on the raw runtime (2 threads, median);
2. shapes detector: the same conversion, mAP@0.5:0.95 on the 300 held-out scenes;
3. a Pareto table (accuracy vs latency vs size) and PNG of the digits variants.

    python benchmarks/compress_results.py [--prune-epochs 5] [--out runs/compress]
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path


ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def edgecnn(*args: str) -> str:
    result = subprocess.run([sys.executable, "-m", "edgecnn", *args], capture_output=True, text=True, cwd=ROOT)
    if result.returncode != 0:
        raise SystemExit(f"edgecnn {' '.join(args)} failed ({result.returncode}):\n{result.stderr[-3000:]}")
    return result.stdout


def latency_ms(path: str, threads: int = 2, runs: int = 300, rounds: int = 5) -> float:
    """Median over rounds of the median inference time on the raw runtime (the bench's
    input and timing loop)."""
    from edgecnn.bench.measure import sample_input
    from edgecnn.runtime.backends import timed_runs
    from edgecnn.runtime.backends import open_backend

    backend = open_backend(path, threads=threads)
    blob = sample_input(backend)
    timed_runs(backend.infer, blob, 50)
    return statistics.median(statistics.median(timed_runs(backend.infer, blob, runs)) for _ in range(rounds))


def convert_all(source: str, out: Path) -> list:
    reports = json.loads(edgecnn("convert", source, "--to", "all", "--precision", "both", "--out", str(out),
                                 "--json"))
    for report in reports:
        report["latency_ms"] = latency_ms(report["file"])
        report["latency_1t_ms"] = latency_ms(report["file"], threads=1)
        report["size_kb"] = os.path.getsize(report["file"]) / 1024
    return reports


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--prune-epochs", type=int, default=5)
    parser.add_argument("--out", default="runs/compress")
    args = parser.parse_args()
    out = ROOT / args.out
    out.mkdir(parents=True, exist_ok=True)

    digits = "edgecnn/assets/digits_mobilenet_v2.pt"
    pruned = str(out / "digits-pruned.pt")
    started = time.time()
    prune = json.loads(edgecnn("prune", digits, "--target-macs", "0.5", "--epochs", str(args.prune_epochs),
                               "--out", pruned, "--json"))
    print(f"prune ({time.time() - started:.0f} s): MACs {prune['before']['macs'] / 1e6:.2f}M -> "
          f"{prune['after']['macs'] / 1e6:.2f}M ({100 * prune['macs_ratio']:.1f}%), parameters "
          f"{prune['before']['parameters']:,} -> {prune['after']['parameters']:,}, onnxruntime fp32 latency "
          f"{prune['before']['latency_ms']:.3f} -> {prune['after']['latency_ms']:.3f} ms "
          f"({prune['speedup']:.2f}x), top-1 {100 * prune['gate']['before']:.2f} -> "
          f"{100 * prune['gate']['after']:.2f} (drop {prune['gate']['drop']:+.2f})\n")

    rows = []
    for variant, source in (("fp32", digits), ("pruned", pruned)):
        for report in convert_all(source, out / "digits"):
            label = variant if report["precision"] == "fp32" else ("int8" if variant == "fp32" else "pruned+int8")
            rows.append({"variant": label, **report})
    base = next(r for r in rows if r["variant"] == "fp32" and r["format"] == "tflite")
    original = prune["gate"]["before"]
    print("digits (1000 held-out tiles; latency: raw runtime, median; speed-up against the fp32 file on the "
          "same runtime and threads)\n")
    print("| variant | format | top-1 % | drop vs original fp32 | 2 threads ms | speed-up | 1 thread ms | speed-up "
          "| size KB | TRANSPOSE | float tensors |")
    print("|---|---|---|---|---|---|---|---|---|---|---|")
    for row in rows:
        same = next(r for r in rows if r["variant"] == "fp32" and r["format"] == row["format"])
        print(f"| {row['variant']} | {row['format']} | {100 * row['gate']['after']:.2f} | "
              f"{100 * (original - row['gate']['after']):+.2f} | {row['latency_ms']:.3f} | "
              f"{same['latency_ms'] / row['latency_ms']:.2f}x | {row['latency_1t_ms']:.3f} | "
              f"{same['latency_1t_ms'] / row['latency_1t_ms']:.2f}x | {row['size_kb']:.0f} | {row['transposes']} | "
              f"{row['float_tensors']} |")
    from edgecnn.core.plots import save_pareto_png

    png = out / "digits-pareto.png"
    save_pareto_png([{"name": f"{r['variant']} {r['format']}", "accuracy": 100 * r["gate"]["after"],
                      "latency_ms": r["latency_ms"], "size_kb": r["size_kb"]} for r in rows], png,
                    "digits MobileNetV2-0.5 variants (top-1 vs latency, marker area ~ file size)")
    print(f"\nPareto plot: {png.relative_to(ROOT)}; fp32 TFLite baseline {base['latency_ms']:.3f} ms\n")

    print("shapes detector (300 held-out scenes at 192x192)\n")
    print("| format | precision | mAP@0.5:0.95 | mAP@0.5 | drop (points) | matched-box agreement | latency ms "
          "| TRANSPOSE | float tensors |")
    print("|---|---|---|---|---|---|---|---|---|")
    for report in convert_all("edgecnn/assets/shapes_detector.pt", out / "shapes"):
        print(f"| {report['format']} | {report['precision']} | {100 * report['metrics']['map50_95']:.2f} | "
              f"{100 * report['metrics']['map50']:.2f} | {report['gate']['drop']:+.2f} | "
              f"{100 * report['agreement']:.1f}% | {report['latency_ms']:.2f} | {report['transposes']} | "
              f"{report['float_tensors']} |")


if __name__ == "__main__":
    main()
