"""The segmentation issue's peer: Ultralytics YOLO11n-seg trained from scratch on
edgecnn's segmentation scenes (the same 2000 training and 300 held-out scenes at
192x192 that `edgecnn train --task segment --data shapes` uses), for the same 15
minutes on this machine, then scored as a semantic segmenter by edgecnn's own
evaluator (one confusion matrix over every held-out pixel, against the exact masks).

Ultralytics trains on YOLO-seg polygons, so each shape's visible region is written as
the outer contours of its pixels, in drawing order (a later shape drawn over an
earlier one, as in the scene). How faithful those polygons are is measured: the
training masks rasterised back from them against the exact masks, as mIoU.

The peer's instance masks become a label map by painting them in rising score order
(the most confident instance wins a pixel), background elsewhere, at conf 0.25,
Ultralytics' predict default.

Needs Ultralytics' Python code beside this environment (not a project dependency):
`pip install --no-deps ultralytics==8.4.190 ultralytics-thop polars psutil`.

    PYTHONPATH=. /work/peer-venv/bin/python benchmarks/peer_segment.py --out runs/peer-seg [--minutes 15] [--threads 2]

The trained weights are reused when present under --out. The ONNX export that it
writes (OUT/yolo11n-seg.onnx) runs through `edgecnn eval` and `edgecnn bench` with
no flags.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

import cv2
import numpy as np
import yaml

os.environ.setdefault("YOLO_AUTOINSTALL", "false")

sys.path.insert(0, str(Path(__file__).resolve().parent))
from peer_metric import torchvision_metadata  # noqa: E402
from peer_train import IMGSZ, torchvision_stand_in  # noqa: E402

from edgecnn.core.scenes import DETECTION_SHAPES  # noqa: E402
from edgecnn.data.detection import MIN_VISIBLE, SHAPES_SPLITS, shapes_scene_layers  # noqa: E402
from edgecnn.data.segmentation import SHAPES_LABELS, read_yolo_polygons, shapes_mask_scene  # noqa: E402
from edgecnn.tasks.segment.metrics import ConfusionMatrix, iou_report  # noqa: E402

CONF = 0.25


def instance_polygons(owner: np.ndarray, kinds) -> list:
    """YOLO-seg lines of one scene: every outer contour of each shape's visible pixels,
    shapes in drawing order, coordinates in 0..1."""
    height, width = owner.shape
    lines = []
    for index, kind in enumerate(kinds):
        visible = (owner == index).astype(np.uint8)
        contours, _ = cv2.findContours(visible, cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_NONE)
        for contour in contours:
            points = contour.reshape(-1, 2).astype(np.float64)
            if len(points) < 3:
                continue
            coords = " ".join(f"{x / width:.6f} {y / height:.6f}" for x, y in points)
            lines.append(f"{kind} {coords}")
    return lines


def write_polygon_scenes(root: Path) -> tuple:
    """The scenes as a YOLO-seg dataset; returns (data.yaml, mIoU of the training labels
    rasterised back by edgecnn's own YOLO-seg loader against the exact masks)."""
    fidelity = ConfusionMatrix(len(SHAPES_LABELS))
    for split in ("train", "val"):
        (root / "images" / split).mkdir(parents=True, exist_ok=True)
        (root / "labels" / split).mkdir(parents=True, exist_ok=True)
        for i in range(SHAPES_SPLITS[split]):
            image, owner, kinds, _ = shapes_scene_layers(0, split, i, IMGSZ, DETECTION_SHAPES, MIN_VISIBLE)
            label = root / "labels" / split / f"{i:06d}.txt"
            if not label.is_file():
                cv2.imwrite(str(root / "images" / split / f"{i:06d}.png"), image)
                lines = instance_polygons(owner, kinds)
                label.write_text("\n".join(lines) + ("\n" if lines else ""))
            if split == "train" and i < 300:
                exact = np.asarray([0, *[k + 1 for k in kinds]], np.uint8)[owner + 1]
                fidelity.add(exact, read_yolo_polygons(label, IMGSZ, IMGSZ, len(DETECTION_SHAPES), [], True))
    config = root / "data.yaml"
    config.write_text(yaml.safe_dump({"path": str(root.resolve()), "train": "images/train", "val": "images/val",
                                      "names": list(DETECTION_SHAPES)}, sort_keys=False))
    return config, iou_report(fidelity.counts, SHAPES_LABELS)["miou"]


def semantic_miou(weights: Path, onnx: Path) -> dict:
    """The peer's predictions on the 300 held-out scenes as label maps, scored against
    the exact masks by edgecnn's evaluator; and the share of pixels where edgecnn's own
    reading of the exported ONNX file (head yolo-seg, no flags) gives the same label."""
    from ultralytics import YOLO

    import edgecnn

    model = YOLO(str(weights))
    exported = edgecnn.load(str(onnx))
    same = total = 0
    counts = ConfusionMatrix(len(SHAPES_LABELS))
    for i in range(SHAPES_SPLITS["val"]):
        image, truth = shapes_mask_scene(0, "val", i, IMGSZ)
        result = model.predict(image, imgsz=IMGSZ, conf=CONF, iou=0.7, device="cpu", retina_masks=True,
                               verbose=False)[0]
        labels = np.zeros(truth.shape, np.uint8)
        if result.masks is not None:
            masks = result.masks.data.numpy() > 0.5
            for j in np.argsort(result.boxes.conf.numpy(), kind="stable"):
                labels[masks[j]] = int(result.boxes.cls[j]) + 1
        counts.add(truth, labels)
        same += int(np.count_nonzero(exported.predict(image).class_map == labels))
        total += labels.size
    report = iou_report(counts.counts, SHAPES_LABELS)
    return {"miou": report["miou"], "pixel_accuracy": report["pixel_accuracy"],
            "edgecnn_onnx_pixel_agreement": same / total,
            "per_class_iou": {c["label"]: c["iou"] for c in report["per_class"]}}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", default="runs/peer-seg")
    parser.add_argument("--minutes", type=float, default=15.0)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=os.cpu_count(),
                        help="torch threads for training (default: every core, as edgecnn trains; Ultralytics' own "
                             "default is one core fewer than the machine has, so 1 on 2 cores)")
    args = parser.parse_args()
    out = Path(args.out).resolve()
    config, fidelity = write_polygon_scenes(out / "shapes")
    print(f"training polygons rasterised back: mIoU {100 * fidelity:.2f} against the exact masks", flush=True)
    with torchvision_metadata():
        from ultralytics import YOLO

        torchvision_stand_in()
        import ultralytics.utils.torch_utils

        ultralytics.utils.torch_utils.NUM_THREADS = args.threads  # what its device selection sets torch to
        weights = out / "train" / "weights" / "last.pt"
        seconds = None
        if not weights.is_file():
            started = time.perf_counter()
            YOLO("yolo11n-seg.yaml").train(data=str(config), imgsz=IMGSZ, time=args.minutes / 60, device="cpu",
                                           batch=16, seed=args.seed, plots=False, amp=False, project=str(out),
                                           name="train", exist_ok=True, verbose=False)
            seconds = round(time.perf_counter() - started)
        onnx = out / "yolo11n-seg.onnx"
        if not onnx.is_file():
            os.replace(YOLO(str(weights)).export(format="onnx", imgsz=IMGSZ, simplify=False), onnx)
        rows = {"training_seconds": seconds, "threads": args.threads, "polygon_fidelity_miou": fidelity,
                "last": semantic_miou(weights, onnx)}
    (out / "peer-seg.json").write_text(json.dumps(rows, indent=1))
    print(json.dumps(rows, indent=1))


if __name__ == "__main__":
    main()
