"""Other toolkits' detectors through edgecnn: Ultralytics YOLO11n, YOLO26n and YOLOv8n,
trained briefly on edgecnn's shapes scenes (192 px) and exported to ONNX by Ultralytics
itself, then
1. decoded by edgecnn with no flags and compared with Ultralytics' own `predict` on the
   300 held-out scenes (same files, conf 0.25, IoU 0.7, at most 100 boxes an image): every box must have a partner
   of the same class at IoU >= 0.99 with a score within 0.01;
2. timed: edgecnn's stream (what `edgecnn run` drives) against Ultralytics'
   `predict(stream=True)` with its ONNX backend, on the same YOLO11n ONNX and the same
   image files, onnxruntime's default threads for both, in alternating rounds;
3. quantized by `edgecnn quantize` (gate: mAP@0.5:0.95 on the held-out scenes) and the
   kept int8 file timed against the fp32 one end to end; then given blank frames to
   calibrate on, which must be refused (exit 3) or caught up front (exit 2) with
   nothing written; Ultralytics' own int8 export of the same weights is tried too.

Runs in a benchmark-only environment that has Ultralytics (never edgecnn's own):
`pip install --no-deps ultralytics==8.4.190 ultralytics-thop polars psutil` beside
edgecnn's dependencies, e.g. a venv whose .pth adds edgecnn's site-packages.

    PYTHONPATH=. /work/peer-venv/bin/python benchmarks/foreign_agreement.py --out runs/foreign [--minutes 3]

Trained weights and exports are reused when present under --out.
"""
from __future__ import annotations

import argparse
import gc
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import cv2
import numpy as np

os.environ.setdefault("YOLO_AUTOINSTALL", "false")  # a missing exporter dependency is a finding, not a download

sys.path.insert(0, str(Path(__file__).resolve().parent))
from peer_metric import torchvision_metadata  # noqa: E402
from peer_train import IMGSZ, torchvision_stand_in, write_scenes  # noqa: E402
from box_agreement import BoxAgreement  # noqa: E402

import edgecnn  # noqa: E402
from edgecnn.data.detection import MIN_VISIBLE  # noqa: E402
from edgecnn.runtime.nms import MAX_DETECTIONS  # noqa: E402

CONF, IOU = 0.25, 0.7
MODELS = ("yolo11n", "yolo26n", "yolov8n")


def train(name: str, config: Path, out: Path, minutes: float) -> Path:
    from ultralytics import YOLO

    weights = out / name / "weights" / "last.pt"
    if not weights.is_file():
        YOLO(f"{name}.yaml").train(data=str(config), imgsz=IMGSZ, time=minutes / 60, device="cpu", batch=16, seed=0,
                                   plots=False, amp=False, project=str(out), name=name, exist_ok=True, verbose=False)
    return weights


def export(weights: Path, target: Path, **settings) -> Path:
    """Ultralytics' own export of `weights` to ONNX, or to fp32 TFLite (its LiteRT route)
    when `target` ends in .tflite."""
    from ultralytics import YOLO

    if not target.is_file():
        if target.suffix == ".tflite":
            written = YOLO(str(weights)).export(format="tflite", imgsz=IMGSZ, **settings)
        else:
            written = YOLO(str(weights)).export(format="onnx", imgsz=IMGSZ, simplify=False, **settings)
        written = Path(written)
        if not written.is_file():  # a bare file name: written beside the weights
            written = Path(weights).parent / written.name
        os.replace(written, target)
    return target


def agreement(path: Path, images, conf: float = CONF) -> dict:
    """Ultralytics' predict against edgecnn's decode of the same file (ONNX or TFLite)."""
    from ultralytics import YOLO

    peer = YOLO(str(path), task="detect")
    ours = edgecnn.load(str(path), conf_threshold=conf, iou_threshold=IOU)
    matched, identical = BoxAgreement(), 0
    for image in images:
        theirs = peer.predict(image, imgsz=IMGSZ, conf=conf, iou=IOU, max_det=MAX_DETECTIONS, device="cpu",
                              verbose=False)[0].boxes
        t_boxes, t_scores, t_classes = theirs.xyxy.numpy(), theirs.conf.numpy(), theirs.cls.numpy().astype(int)
        mine = ours.predict(image)
        theirs_rows = np.c_[t_boxes, t_scores, t_classes]
        mine_rows = np.c_[mine.boxes, mine.scores, mine.classes]
        theirs_rows, mine_rows = (rows[np.lexsort((rows[:, 1], rows[:, 0], -rows[:, 4]))]
                                  for rows in (theirs_rows, mine_rows))
        identical += len(theirs_rows) == len(mine_rows) and np.allclose(theirs_rows, mine_rows, atol=1e-3)
        matched.add(mine, t_boxes, t_scores, t_classes)
    return {"file": path.name, "head": ours.card.head["format"], "conf": conf, "identical_scenes": int(identical),
            **matched.result()}


def score_peer_file(path: Path, val) -> dict:
    """mAP@0.5:0.95 of a file Ultralytics exported, read two ways on the held-out scenes:
    by `edgecnn eval` (no flags) and by Ultralytics' own predict on the same file, both
    scored by the COCO evaluator."""
    from edgecnn.tasks.detect.metrics import coco_map
    from peer_train import predict

    ours = edgecnn_cli("eval", path, "--data", "shapes", "--json", "--plot", "")
    theirs = coco_map(list(val.labels), val.boxes, val.classes, predict(path, val))
    return {"edgecnn_eval_map50_95": json.loads(ours.stdout)["map50_95"] if ours.returncode == 0 else None,
            "edgecnn_eval_error": ours.stderr.strip().splitlines()[-1:] if ours.returncode else None,
            "ultralytics_predict_map50_95": theirs["map50_95"]}


def fps_rounds(runners: dict, rounds: int) -> dict:
    """Frames per second of each runner (a function that loads its model, warms it up and
    returns the frames of one timed pass and its seconds), rounds alternating between
    them; the median round per runner. One model is loaded at a time: an idle
    onnxruntime session's threads would otherwise share the cores with the timed one."""
    figures = {name: [] for name in runners}
    for _ in range(rounds):
        for name, run in runners.items():
            frames, seconds = run()
            figures[name].append(frames / seconds)
            gc.collect()
    result = {name: {"median_fps": round(float(np.median(v)), 1), "rounds": [round(x, 1) for x in v]}
              for name, v in figures.items()}
    if len(figures) == 2:  # the machine's speed drifts between rounds: each round's ratio is measured side by side
        first, second = figures.values()
        ratios = [a / b for a, b in zip(first, second)]
        result["ratio_first_to_second"] = {"median": round(float(np.median(ratios)), 3),
                                           "rounds": [round(r, 3) for r in ratios]}
    return result


WARMUP_FRAMES = 20


def edgecnn_stream(path: Path, folder: Path, threads=None):
    def run() -> tuple:
        model = edgecnn.load(str(path), conf_threshold=CONF, iou_threshold=IOU, threads=threads, log=None)
        sum(1 for _ in model.stream(str(folder), max_frames=WARMUP_FRAMES))
        started = time.perf_counter()
        frames = sum(1 for _ in model.stream(str(folder)))
        return frames, time.perf_counter() - started

    return run


def ultralytics_stream(path: Path, folder: Path):
    from ultralytics import YOLO

    def run() -> tuple:
        model = YOLO(str(path), task="detect")
        for image in sorted(folder.iterdir())[:WARMUP_FRAMES]:
            model.predict(str(image), imgsz=IMGSZ, conf=CONF, iou=IOU, device="cpu", verbose=False)
        started = time.perf_counter()
        frames = sum(1 for _ in model.predict(str(folder), stream=True, imgsz=IMGSZ, conf=CONF, iou=IOU,
                                              device="cpu", verbose=False))
        return frames, time.perf_counter() - started

    return run


def edgecnn_cli(*args) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "edgecnn", *map(str, args)], capture_output=True, text=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", default="runs/foreign")
    parser.add_argument("--minutes", type=float, default=3.0, help="training time per model")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--max-drop", type=float, default=1.0)
    parser.add_argument("--conf", default=str(CONF), help="comma-separated score thresholds for the agreement "
                        "(a briefly trained model has few boxes above 0.25)")
    parser.add_argument("--stages", default="agreement,fps,quantize", help="which of agreement,fps,quantize to run")
    parser.add_argument("--models", default=",".join(MODELS), help="which of the peer models to train and export "
                        "(fps and quantize need yolo11n)")
    parser.add_argument("--tflite", action="store_true", help="also export each model to fp32 TFLite with "
                        "Ultralytics' exporter and compare those files too")
    args = parser.parse_args()
    stages = set(args.stages.split(","))
    out = Path(args.out).resolve()
    results_path = out / "foreign.json"
    results = json.loads(results_path.read_text()) if results_path.is_file() else {}

    def save():
        results_path.write_text(json.dumps(results, indent=1))

    config, val = write_scenes(out / "shapes", MIN_VISIBLE)
    folder = out / "shapes" / "images" / "val"
    with torchvision_metadata():
        torchvision_stand_in()
        files = {}
        for name in args.models.split(","):
            if name not in MODELS:
                parser.error(f"--models: {name!r} is not one of {', '.join(MODELS)}")
            weights = train(name, config, out, args.minutes)
            for suffix in ((".onnx", ".tflite") if args.tflite else (".onnx",)):
                files[name + suffix] = export(weights, out / f"{name}{suffix}")
                if name == "yolo26n":
                    files["yolo26n-end2end" + suffix] = export(weights, out / f"yolo26n-end2end{suffix}", nms=False)
        if "agreement" in stages:
            results["agreement"] = [agreement(path, val.images, float(conf)) for conf in args.conf.split(",")
                                    for path in files.values()]
            save()
            print(json.dumps(results["agreement"], indent=1), flush=True)
        if "fps" not in stages:
            return
        results["fps_fp32"] = fps_rounds({"edgecnn": edgecnn_stream(files["yolo11n.onnx"], folder),
                                          "ultralytics": ultralytics_stream(files["yolo11n.onnx"], folder)}, args.rounds)
        save()
        print(json.dumps(results["fps_fp32"]), flush=True)

        if "quantize" not in stages:
            return
        int8 = out / "yolo11n-int8.onnx"
        if int8.exists():
            int8.unlink()
        calib = out / "shapes" / "images" / "train"
        kept = edgecnn_cli("quantize", files["yolo11n.onnx"], "--calib", calib, "--data", "shapes", "--out", int8,
                           "--max-drop", args.max_drop, "--mixed", "--json")
        results["quantize"] = {"exit": kept.returncode, "stderr_tail": kept.stderr.strip().splitlines()[-3:],
                               "summary": json.loads(kept.stdout) if kept.returncode == 0 else None}
        save()
        if kept.returncode == 0:
            results["fps_int8"] = {
                f"threads={threads or 'default'}": fps_rounds({"fp32": edgecnn_stream(files["yolo11n.onnx"], folder,
                                                                                       threads),
                                                               "int8": edgecnn_stream(int8, folder, threads)},
                                                              args.rounds) for threads in (None, 1)}
            save()
        blank = out / "blank"
        blank.mkdir(exist_ok=True)
        for i in range(64):
            cv2.imwrite(str(blank / f"{i:03d}.png"), np.zeros((IMGSZ, IMGSZ, 3), np.uint8))
        bad_out = out / "yolo11n-int8-blank.onnx"
        bad = edgecnn_cli("quantize", files["yolo11n.onnx"], "--calib", blank, "--data", "shapes", "--out", bad_out,
                          "--max-drop", args.max_drop, "--json")
        results["blank_calibration"] = {"exit": bad.returncode, "written": bad_out.exists(),
                                        "stderr_tail": bad.stderr.strip().splitlines()[-2:]}
        save()
        try:
            from ultralytics import YOLO

            written = YOLO(str(out / "yolo11n" / "weights" / "last.pt")).export(format="tflite", imgsz=IMGSZ,
                                                                                int8=True, data=str(config))
            results["ultralytics_int8"] = {"written": str(written)}
        except Exception as exc:  # whatever stops Ultralytics' own int8 export here is the finding
            results["ultralytics_int8"] = {"error": f"{type(exc).__name__}: {str(exc).splitlines()[0][:300]}"}
        save()
        if "written" in results["ultralytics_int8"]:
            results["ultralytics_int8"].update(score_peer_file(Path(results["ultralytics_int8"]["written"]), val))
            save()
    print(json.dumps({k: v for k, v in results.items() if k != "agreement"}, indent=1))


if __name__ == "__main__":
    main()
