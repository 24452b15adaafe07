"""Train the detection issue's peer, Ultralytics YOLO11n from scratch, on edgecnn's own
synthetic-shapes scenes (the same 2000 training and 300 held-out scenes at 192x192 that
`edgecnn train --task detect --data shapes` uses), for the same 15 minutes on this
machine, and score it with the same COCO evaluator as `edgecnn eval`, and with
Ultralytics' own validation code. The issue's 0.992 mAP@0.5 came from the peer on its own
set "of this kind"; this puts the two detectors on one set.

Needs Ultralytics' Python code beside this environment (not a project dependency):
`pip install --no-deps ultralytics==8.4.190 ultralytics-thop polars psutil`.

    python benchmarks/peer_train.py --out runs/peer [--minutes 15] [--seed 0] [--min-visible 0.4]

The last epoch is scored (Ultralytics' `time=` budget shortens its schedule so that it
ends inside the budget). Its `best.pt` is scored too, for reference only: Ultralytics
chose it on these same held-out scenes, so its score is biased upward.
"""
from __future__ import annotations

import argparse
import json
import sys
import time
import types
from pathlib import Path

import numpy as np
import yaml

from edgecnn.data.detection import MIN_VISIBLE, load_shapes_detection, write_yolo
from edgecnn.tasks.detect.metrics import coco_map
from edgecnn.tasks.detect.result import Detections

from peer_metric import torchvision_metadata, ultralytics_map

IMGSZ = 192


def torchvision_stand_in() -> None:
    """Ultralytics' validator imports torchvision only for its NMS kernel; this CPU torch
    cannot load torchvision's CUDA build, so a module whose `ops.nms` is Ultralytics' own
    pure-torch NMS (the same greedy algorithm) stands in for it."""
    from ultralytics.utils.nms import TorchNMS

    sys.modules["torchvision"] = types.ModuleType("torchvision")
    sys.modules["torchvision"].ops = types.SimpleNamespace(nms=TorchNMS.nms)


def write_scenes(root: Path, min_visible: float) -> tuple:
    """The training and held-out scenes in YOLO layout, with an absolute dataset path."""
    train, val = (load_shapes_detection(split, size=IMGSZ, min_visible=min_visible) for split in ("train", "val"))
    for data in (train, val):
        write_yolo(data, str(root), data.split)
    config = root / "data.yaml"
    settings = yaml.safe_load(config.read_text())
    settings["path"] = str(root.resolve())
    config.write_text(yaml.safe_dump(settings, sort_keys=False))
    return config, val


def predict(weights: Path, val) -> list:
    """Detections of `weights` on every held-out scene at COCO-evaluation settings."""
    from ultralytics import YOLO

    model = YOLO(str(weights))
    found = []
    for image in val.images:
        result = model.predict(image, imgsz=IMGSZ, conf=0.001, iou=0.7, max_det=100, device="cpu",
                               verbose=False)[0].boxes
        found.append(Detections(result.xyxy.numpy().astype(np.float32), result.conf.numpy().astype(np.float32),
                                result.cls.numpy().astype(np.int64), list(val.labels)))
    return found


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", default="runs/peer")
    parser.add_argument("--minutes", type=float, default=15.0)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--min-visible", type=float, default=MIN_VISIBLE,
                        help="the scenes of `edgecnn shapes --min-visible F` (default: the standard scenes)")
    args = parser.parse_args()
    out = Path(args.out).resolve()
    config, val = write_scenes(out / "shapes", args.min_visible)
    with torchvision_metadata():
        from ultralytics import YOLO

        torchvision_stand_in()
        started = time.perf_counter()
        YOLO("yolo11n.yaml").train(data=str(config), imgsz=IMGSZ, time=args.minutes / 60, device="cpu",
                                   batch=16, seed=args.seed, plots=False, amp=False, project=str(out),
                                   name="train", exist_ok=True, verbose=False)
        seconds = time.perf_counter() - started
        rows = []
        for name in ("last", "best"):
            found = predict(out / "train" / "weights" / f"{name}.pt", val)
            coco = coco_map(list(val.labels), val.boxes, val.classes, found)
            peer50, peer50_95 = ultralytics_map(val, found)
            rows.append({"weights": name, "seconds": round(seconds), "coco_map50": coco["map50"],
                         "coco_map50_95": coco["map50_95"], "ultralytics_map50": peer50,
                         "ultralytics_map50_95": peer50_95,
                         "per_class_ap50": {c["label"]: c["ap50"] for c in coco["per_class"]}})
    print("| YOLO11n weights | wall time | COCO mAP@0.5 | COCO mAP@0.5:0.95 | Ultralytics mAP@0.5 | "
          "Ultralytics mAP@0.5:0.95 |\n|---|---|---|---|---|---|")
    for row in rows:
        print(f"| {row['weights']}.pt | {row['seconds']} s | {100 * row['coco_map50']:.2f} | "
              f"{100 * row['coco_map50_95']:.2f} | {100 * row['ultralytics_map50']:.2f} | "
              f"{100 * row['ultralytics_map50_95']:.2f} |")
    (out / "peer.json").write_text(json.dumps(rows, indent=1))


if __name__ == "__main__":
    main()
