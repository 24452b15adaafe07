"""Every installed backend against LiteRT on the bundled shapes detector: the same
detections on the 300 held-out scenes, and inference latency at 1 and 2 threads.

    python benchmarks/backend_parity.py [--scenes 300] [--runs 200] [--out benchmarks/openvino_results.md]

Files: the bundled fp32 and int8 TFLite detectors and its ONNX export
(tests/data/models/shapes_detector.onnx, the same checkpoint). Each backend that runs a
file decodes it with the model's own task (`edgecnn.load(path, backend=...)`,
`predict(image)`, conf 0.25); its boxes are matched to LiteRT's on the TFLite file of the
same precision (the ONNX file: LiteRT on the fp32 TFLite file), greedily, best IoU
first, same class, and scored against the scenes' ground truth (mAP@0.5:0.95). A box agrees when its partner overlaps at IoU >= 0.99 with a score
within 0.01; the share of boxes that agree is reported (unpartnered boxes count
against it). LiteRT's reference kernels (XNNPACK off) show how far two int8
implementations of one engine lie apart; OpenVINO on the int8 file is measured with its
exact_int8 default and with it off.

Latency is `Backend.infer` on one preprocessed scene, all configurations interleaved in
rounds so that load from other processes falls on all of them alike: compare ratios
within one run, not figures across machines.
"""
from __future__ import annotations

import argparse
import os
import platform
import subprocess
import sys
import time
from pathlib import Path
from typing import Dict, List, Tuple


ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

from box_agreement import MAX_SCORE_DIFFERENCE, MIN_IOU, BoxAgreement  # noqa: E402

from edgecnn.assets import RUNTIME_FP32, RUNTIME_INT8  # noqa: E402

ONNX_FILE = ROOT / "tests" / "data" / "models" / "shapes_detector.onnx"
# (label, file, the LiteRT file whose detections are the reference)
FILES = [("fp32 TFLite", RUNTIME_FP32, RUNTIME_FP32), ("int8 TFLite", RUNTIME_INT8, RUNTIME_INT8),
         ("fp32 ONNX", ONNX_FILE, RUNTIME_FP32)]
CPU_FLAGS = ("sse4_2", "avx", "avx2", "fma", "f16c", "avx512f", "avx512bw", "avx512_vnni", "avx_vnni",
             "avx512_bf16", "avx512_fp16", "amx_bf16", "amx_int8", "amx_fp16")


def cpu_description() -> Tuple[str, List[str]]:
    text = Path("/proc/cpuinfo").read_text(errors="replace")
    model = next((line.split(":", 1)[1].strip() for line in text.splitlines() if line.startswith("model name")),
                 platform.processor() or platform.machine())
    flags = next((line.split(":", 1)[1].split() for line in text.splitlines() if line.startswith("flags")), [])
    return model, [flag for flag in CPU_FLAGS if flag in flags]


def backends_for_file(path: Path) -> List[str]:
    """Installed backends that run the file; for TFLite files also LiteRT's reference
    kernels (XNNPACK off: how far two int8 implementations of one engine lie apart), and
    OpenVINO's own int8 kernels as a row of their own."""
    from edgecnn.runtime.backends import backends_for

    names = backends_for(str(path))
    if "litert" in names:
        names.insert(names.index("litert") + 1, "litert:xnnpack=off")
    if "openvino" in names and path == RUNTIME_INT8:
        names.append("openvino:exact_int8=off")
    return names


def detections(path: Path, backend: str, images) -> list:
    import edgecnn

    model = edgecnn.load(str(path), backend=backend, threads=1, log=None)
    return [model.predict(image) for image in images], model.backend.ran_on()


def agreement(mine: list, reference: list) -> Dict[str, float]:
    tally = BoxAgreement()
    for found, wanted in zip(mine, reference):
        tally.add(found, wanted.boxes, wanted.scores, wanted.classes)
    result = tally.result()
    result["share"] = result["agreeing"] / result["boxes"] if result["boxes"] else 1.0
    return result


def latencies(configs: List[Tuple[str, Path, str, int]], runs: int, rounds: int = 5) -> Dict[tuple, Dict]:
    """p50/p99 ms of Backend.infer per (label, backend, threads), interleaved in rounds."""
    from edgecnn.bench.measure import latency_stats, sample_input
    from edgecnn.runtime.backends import open_backend, timed_runs

    loaded = {}
    for label, path, backend, threads in configs:
        opened = open_backend(str(path), backend, threads)
        blob = sample_input(opened)
        for _ in range(10):
            opened.infer(blob)
        loaded[(label, backend, threads)] = (opened, blob, [])
    for _ in range(rounds):
        for opened, blob, times in loaded.values():
            times.extend(timed_runs(opened.infer, blob, max(runs // rounds, 1)))
    return {key: latency_stats(times) for key, (_, _, times) in loaded.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--scenes", type=int, default=300)
    parser.add_argument("--runs", type=int, default=200, help="timed inferences per configuration")
    parser.add_argument("--threads", default="1,2")
    parser.add_argument("--out", default=None, help="also write the results as Markdown here")
    args = parser.parse_args()

    from edgecnn.data.detection import load_shapes_detection
    from edgecnn.tasks.detect.metrics import coco_map

    scenes = load_shapes_detection("val", count=args.scenes)
    images = scenes.images
    model, flags = cpu_description()
    started = time.time()
    references = {path: detections(path, "litert", images)[0] for path in {ref for _, _, ref in FILES}}
    parity_rows = []
    for label, path, reference in FILES:
        for backend in backends_for_file(path):
            found, ran_on = detections(path, backend, images)
            result = agreement(found, references[reference])
            result["map50_95"] = coco_map(scenes.labels, scenes.boxes, scenes.classes, found)["map50_95"]
            parity_rows.append((label, backend, result, ran_on))
            print(f"{label:12} {backend:26} {result['agreeing']}/{result['boxes']} agree "
                  f"({100 * result['share']:.1f}%), unpartnered {result['unmatched']}, min IoU {result['min_iou']}, "
                  f"max score diff {result['max_score_difference']}", file=sys.stderr)
    thread_counts = [int(t) for t in args.threads.split(",")]
    configs = [(label, path, backend, threads) for label, path, _ in FILES for backend in backends_for_file(path)
               if "xnnpack=off" not in backend for threads in thread_counts]
    timing = latencies(configs, args.runs)
    lines = report(args, model, flags, parity_rows, timing, thread_counts, time.time() - started)
    text = "\n".join(lines) + "\n"
    print(text)
    if args.out:
        Path(args.out).write_text(text)


def report(args, model: str, flags: List[str], parity_rows, timing, thread_counts, seconds: float) -> List[str]:
    revision = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True,
                              text=True).stdout.strip()
    from edgecnn.runtime.backends import get_backend

    versions = []
    for name in ("litert", "onnxruntime", "openvino"):
        kind = get_backend(name)
        if kind.installed():
            from importlib.metadata import PackageNotFoundError, version

            for distribution in kind.distributions:
                try:
                    versions.append(f"{distribution} {version(distribution)}")
                    break
                except PackageNotFoundError:
                    continue
    lines = ["# Backends against LiteRT on the bundled shapes detector", "",
             f"`python benchmarks/backend_parity.py --scenes {args.scenes} --runs {args.runs} --threads {args.threads}`"
             f" on {time.strftime('%Y-%m-%d %H:%M %Z')}, commit {revision} (working tree), {seconds:.0f} s.", "",
             f"CPU: {model}, {os.cpu_count()} cores; flags: {', '.join(flags) or 'none of ' + ', '.join(CPU_FLAGS)}. "
             f"Load average at the end: {', '.join(f'{v:.2f}' for v in os.getloadavg())} (a machine shared with "
             f"other work).", "", "Engines: " + ", ".join(versions) + ".", "",
             f"## Detections on the {args.scenes} held-out scenes (conf 0.25)", "",
             f"A box agrees when its partner in LiteRT's detections (same class) overlaps at IoU >= {MIN_IOU} "
             f"with a score within {MAX_SCORE_DIFFERENCE}. Reference: LiteRT on the TFLite file of the same "
             "precision (for the ONNX file, the fp32 TFLite file). mAP: of these detections (conf 0.25) against the "
             "scenes' ground truth, to show what a difference costs (the card's figure is at COCO settings).", "",
             "| file | backend | ran on | boxes | agree | unpartnered | min IoU | max score diff | mAP@0.5:0.95 |",
             "|---|---|---|---:|---:|---:|---:|---:|---:|"]
    for label, backend, result, ran_on in parity_rows:
        lines.append(f"| {label} | {backend} | {ran_on_text(ran_on)} | {result['boxes']} | "
                     f"{100 * result['share']:.1f}% | {result['unmatched']} | {result['min_iou']} | "
                     f"{result['max_score_difference']} | {100 * result['map50_95']:.2f}% |")
    lines += ["", "## Inference latency (ms, `Backend.infer` on one preprocessed scene)", "",
              "| file | backend | " + " | ".join(f"p50 t{t} | p99 t{t}" for t in thread_counts) + " | p50 vs LiteRT t1 |",
              "|---|---|" + "---:|---:|" * len(thread_counts) + "---:|"]
    keys = list(dict.fromkeys((label, backend) for label, backend, _ in timing))
    for label, backend in keys:
        cells = " | ".join(f"{timing[(label, backend, t)]['p50']:.2f} | {timing[(label, backend, t)]['p99']:.2f}"
                           for t in thread_counts)
        base_label = "fp32 TFLite" if label == "fp32 ONNX" else label
        base = timing.get((base_label, "litert", thread_counts[0]))
        ratio = f"{timing[(label, backend, thread_counts[0])]['p50'] / base['p50']:.2f}x" if base else "-"
        lines.append(f"| {label} | {backend} | {cells} | {ratio} |")
    return lines


def ran_on_text(ran_on: Dict) -> str:
    if ran_on.get("backend") == "openvino":
        return (f"{'+'.join(ran_on['devices'])} {ran_on['precision']}"
                + (", int8 layers in fp32" if ran_on.get("exact_int8") else ""))
    if "providers" in ran_on:
        return ", ".join(p.replace("ExecutionProvider", "") for p in ran_on["providers"])
    return f"{ran_on.get('delegate') or 'built-in kernels'}"


if __name__ == "__main__":
    main()
