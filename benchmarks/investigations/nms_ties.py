"""Why a scene's detections differ between edgecnn and Ultralytics' `predict` on the
same YOLO ONNX file: for every held-out scene whose two box lists differ (boxes to
0.01 px, scores to 1e-4), the box each side has that the other lacks, and, for each,
the largest raw (unclipped, pre-NMS) IoU with a same-class box that edgecnn kept at a
higher score, and edgecnn's lowest kept score (the 100-box cap). An IoU at the NMS
threshold means that last-bit differences between the two sides (their preprocessing
and IoU arithmetic) decided a suppression that is a tie.

    PYTHONPATH=. /work/peer-venv/bin/python benchmarks/investigations/nms_ties.py runs/foreign15/yolo11n.onnx --conf 0.001
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from peer_metric import torchvision_metadata  # noqa: E402
from peer_train import IMGSZ, torchvision_stand_in  # noqa: E402

import edgecnn  # noqa: E402
from edgecnn.data.detection import load_shapes_detection  # noqa: E402
from edgecnn.runtime.heads import head_of  # noqa: E402
from edgecnn.runtime.nms import MAX_DETECTIONS, NMS_IOU  # noqa: E402
from edgecnn.tasks.detect.task import box_iou  # noqa: E402


def table(boxes, scores, classes) -> np.ndarray:
    return np.c_[np.asarray(boxes, np.float64).reshape(-1, 4), scores, classes]


def unpaired(rows: np.ndarray, others: np.ndarray) -> list:
    """Rows with no partner among `others`: same class, corners within 0.01 px, score within 1e-4."""
    tolerance = np.array([0.01] * 4 + [1e-4, 0.5])
    return [row for row in rows if not (np.abs(others - row) <= tolerance).all(1).any()]


def stronger_kept_iou(row, kept_rows, corners, classes) -> float:
    """Raw IoU of the candidate behind `row` with the closest same-class box that edgecnn
    kept with a higher score: the box that suppresses it (or does not) at the NMS
    threshold. NaN when there is none."""
    clipped = np.clip(corners, 0, IMGSZ)

    def candidate(r) -> int:
        return int(np.argmin(np.abs(clipped - r[:4]).max(1) + 1e3 * (classes != r[5])))

    own = candidate(row)
    stronger = [candidate(r) for r in kept_rows if r[5] == row[5] and r[4] > row[4]]
    if not stronger:
        return float("nan")
    return float(box_iou(corners[own].astype(np.float64), corners[stronger].astype(np.float64)).max())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("onnx")
    parser.add_argument("--conf", type=float, default=0.001)
    args = parser.parse_args()
    val = load_shapes_detection("val", size=IMGSZ)
    with torchvision_metadata():
        torchvision_stand_in()
        from ultralytics import YOLO

        peer = YOLO(args.onnx, task="detect")
        ours = edgecnn.load(args.onnx, conf_threshold=args.conf, iou_threshold=NMS_IOU)
        differing = 0
        for index, image in enumerate(val.images):
            theirs = peer.predict(image, imgsz=IMGSZ, conf=args.conf, iou=NMS_IOU, max_det=MAX_DETECTIONS,
                                  device="cpu", verbose=False)[0].boxes
            mine = ours.predict(image)
            their_rows = table(theirs.xyxy.numpy(), theirs.conf.numpy(), theirs.cls.numpy())
            my_rows = table(mine.boxes, mine.scores, mine.classes)
            only_mine, only_theirs = unpaired(my_rows, their_rows), unpaired(their_rows, my_rows)
            if not only_mine and not only_theirs:
                continue
            differing += 1
            corners, probabilities = head_of(ours.card).decode_above(ours.card, ours.backend.infer(
                ours.preprocess(image)), args.conf)
            classes = probabilities.argmax(1)
            print(f"scene {index}: {len(mine.boxes)} boxes (edgecnn), {len(theirs.xyxy)} (Ultralytics)")
            for side, only in (("edgecnn only", only_mine), ("Ultralytics only", only_theirs)):
                for row in only:
                    iou = stronger_kept_iou(row, my_rows, corners, classes)
                    print(f"  {side}: box {np.round(row[:4], 2).tolist()} score {row[4]:.5f} class {int(row[5])}; "
                          f"raw IoU with the "
                          f"stronger same-class boxes edgecnn kept {iou:.6f} (threshold {NMS_IOU}); edgecnn's "
                          f"lowest kept score {my_rows[:, 4].min():.5f}")
        print(f"{differing} of {len(val.images)} scenes differ")


if __name__ == "__main__":
    main()
