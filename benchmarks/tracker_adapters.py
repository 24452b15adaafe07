"""The trackers the tracking benchmarks compare, behind one call: make(name, fps) -> a
function (boxes (N, 4) x1 y1 x2 y2, scores (N,), classes (N,)) -> (boxes (K, 4), ids (K,))
of the confirmed tracks this frame. Needs only numpy and the tracker's own package, so
the benchmarks run it in throwaway venvs that hold Roboflow's `trackers` or `norfair`
(benchmarks/tracker_cost.py --install makes them); never a dependency of edgecnn.

    python benchmarks/tracker_adapters.py       lists the trackers importable here
"""
from __future__ import annotations

import importlib.util
import sys
from typing import Callable, Dict, List, Tuple

import numpy as np

Step = Callable[[np.ndarray, np.ndarray, np.ndarray], Tuple[np.ndarray, np.ndarray]]


def _edgecnn_bytetrack(fps: float) -> Step:
    from edgecnn.runtime.trackers.bytetrack import ByteTrack

    tracker = ByteTrack(fps)

    def step(boxes, scores, classes):
        ids, _, states, _ = tracker.update(boxes, scores, classes)
        keep = np.array([s == "tracked" for s in states], bool)
        return np.asarray(boxes).reshape(-1, 4)[keep], ids[keep]
    return step


def _roboflow(cls_name: str) -> Callable[[float], Step]:
    def make(fps: float) -> Step:
        import supervision as sv
        import trackers

        tracker = getattr(trackers, cls_name)(frame_rate=fps)  # the package's defaults otherwise

        def step(boxes, scores, classes):
            detections = sv.Detections(xyxy=np.asarray(boxes, np.float32).reshape(-1, 4),
                                       confidence=np.asarray(scores, np.float32),
                                       class_id=np.asarray(classes, int))
            out = tracker.update(detections)
            ids = np.asarray(out.tracker_id if out.tracker_id is not None else np.zeros(0), int)
            keep = ids >= 0
            return np.asarray(out.xyxy).reshape(-1, 4)[keep], ids[keep]
        return step
    return make


def _norfair(fps: float) -> Step:
    import norfair

    tracker = norfair.Tracker(distance_function="iou", distance_threshold=0.7)

    def step(boxes, scores, classes):
        detections = [norfair.Detection(points=np.array([[b[0], b[1]], [b[2], b[3]]]), scores=np.array([s, s]),
                                        label=int(c)) for b, s, c in zip(boxes, scores, classes)]
        objects = tracker.update(detections=detections)
        if not objects:
            return np.zeros((0, 4)), np.zeros(0, int)
        return (np.array([o.estimate.reshape(-1) for o in objects]), np.array([o.id for o in objects], int))
    return step


class _Boxes:
    """What Ultralytics' trackers read from a detector's results: conf, cls, xywh, xyxy,
    and indexing by a mask."""

    def __init__(self, xyxy: np.ndarray, conf: np.ndarray, cls: np.ndarray) -> None:
        self.xyxy, self.conf, self.cls = xyxy, conf, cls
        self.xywh = np.concatenate([(xyxy[:, :2] + xyxy[:, 2:]) / 2, xyxy[:, 2:] - xyxy[:, :2]], axis=1)

    def __len__(self) -> int:
        return len(self.conf)

    def __getitem__(self, index) -> "_Boxes":
        return _Boxes(self.xyxy[index], self.conf[index], self.cls[index])


def _ultralytics(fps: float) -> Step:
    """Ultralytics' BYTETracker with its packaged bytetrack.yaml settings (AGPL: only in a
    benchmark-only venv, never beside edgecnn)."""
    from pathlib import Path as _Path

    import ultralytics
    from ultralytics.trackers.byte_tracker import BYTETracker
    from ultralytics.utils import YAML, IterableSimpleNamespace

    settings = YAML.load(_Path(ultralytics.__file__).parent / "cfg" / "trackers" / "bytetrack.yaml")
    import inspect

    rate = {"frame_rate": int(round(fps))} if "frame_rate" in inspect.signature(BYTETracker).parameters else {}
    tracker = BYTETracker(IterableSimpleNamespace(**settings), **rate)  # recent releases assume 30 FPS

    def step(boxes, scores, classes):
        out = tracker.update(_Boxes(np.asarray(boxes, np.float32).reshape(-1, 4), np.asarray(scores, np.float32),
                                    np.asarray(classes, np.float32)))
        if not len(out):
            return np.zeros((0, 4)), np.zeros(0, int)
        return np.asarray(out)[:, :4], np.asarray(out)[:, 4].astype(int)
    return step


# name -> (module that must be importable, factory)
TRACKERS: Dict[str, Tuple[str, Callable[[float], Step]]] = {
    "edgecnn-bytetrack": ("edgecnn", _edgecnn_bytetrack),
    "trackers-bytetrack": ("trackers", _roboflow("ByteTrackTracker")),
    "trackers-sort": ("trackers", _roboflow("SORTTracker")),
    "trackers-ocsort": ("trackers", _roboflow("OCSORTTracker")),
    "norfair-iou": ("norfair", _norfair),
    "ultralytics-bytetrack": ("ultralytics", _ultralytics),
}


def available() -> List[str]:
    return [name for name, (module, _) in TRACKERS.items() if importlib.util.find_spec(module) is not None]


def make(name: str, fps: float = 30.0) -> Step:
    return TRACKERS[name][1](fps)


if __name__ == "__main__":
    sys.path.insert(0, str(__import__("pathlib").Path(__file__).resolve().parents[1]))
    print("\n".join(available()))
