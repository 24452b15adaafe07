"""Tracking quality on synthetic clips with ground truth (benchmarks/RESULTS.md,
"Tracking"), scored by TrackEval (HOTA, MOTA, IDF1, ID switches; `pip install
trackeval`, the packaged TrackEval, MIT, in a benchmark-only venv: it wants
opencv-python and pycocotools). py-motmetrics 1.4.0, the other maintained evaluator,
fails on numpy 2 (np.asfarray).

Clips: the demo scene (`edgecnn run --source demo`: 3 shapes) and busier versions of it
(more shapes, other seeds), 600 frames each at 30 FPS, drawn by
edgecnn.runtime.demo.DemoCapture, whose ground_truth(t) gives every shape's id, box and
visibility (the fraction no later-drawn shape covers). Shapes glide, bounce and pass
over each other: the report counts the crossings (a pair of boxes starting to overlap)
and the occluded object-frames (visibility < 0.5) of each clip. Written in the
MOTChallenge layout: CLIP/gt/gt.txt (frame, id, x, y, w, h, conf, class, visibility;
conf 0 = ignored, for shapes less than 25% visible), CLIP/det/det.txt (the bundled
detector's detections, conf 0.25 and up), CLIP/seqinfo.ini.

Every tracker gets the same detections (benchmarks/tracker_adapters.py): edgecnn's
ByteTrack here, the others in the throwaway venvs given by --python (see
benchmarks/tracker_cost.py --install). A tracker's output is each confirmed track's
box per frame, CLIP/TRACKER.txt in the MOTChallenge format. Scoring is class-agnostic
(every shape is class 1, "pedestrian" to TrackEval), the ignored rows left out.

    python benchmarks/tracking_quality.py --out /tmp/edgecnn-mot \\
        --python /tmp/trk/venv-trackers/bin/python --python /tmp/trk/venv-norfair/bin/python \\
        --eval-python /tmp/trk/venv-eval/bin/python
"""
from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path[:0] = [str(HERE), str(ROOT)]

FRAMES, FPS, SIZE = 600, 30.0, 384
CLIPS = {"demo": dict(seed=0, objects=3), "shapes-5": dict(seed=1, objects=5), "shapes-8": dict(seed=2, objects=8)}
MIN_VISIBLE = 0.25  # ground truth below this visibility is marked ignore (conf 0)


def write_clip(directory: Path, seed: int, objects: int, model) -> dict:
    """Ground truth and detections of one clip; returns its crossing and occlusion counts."""
    from edgecnn.runtime.demo import DemoCapture
    from edgecnn.runtime.trackers.bytetrack import iou_matrix

    scene = DemoCapture(size=SIZE, seed=seed, fps=FPS, objects=objects)
    (directory / "gt").mkdir(parents=True, exist_ok=True)
    (directory / "det").mkdir(exist_ok=True)
    gt_lines, det_lines = [], []
    crossings = occluded = visible_rows = 0
    overlapping = np.zeros((objects, objects), bool)
    for t in range(FRAMES):
        truth = scene.ground_truth(t)
        boxes = np.array([box for _, _, box, _ in truth])
        overlap = iou_matrix(boxes, boxes) > 0
        np.fill_diagonal(overlap, False)
        crossings += int(np.triu(overlap & ~overlapping).sum())
        overlapping = overlap
        for track_id, kind, (x1, y1, x2, y2), visible in truth:
            considered = visible >= MIN_VISIBLE
            visible_rows += considered
            occluded += visible < 0.5
            gt_lines.append(f"{t + 1},{track_id},{x1:.1f},{y1:.1f},{x2 - x1:.1f},{y2 - y1:.1f},{int(considered)},"
                            f"{kind_index(kind) + 1},{visible:.3f}")
        result = model.predict(scene.scene(t), frame_index=t)
        for (x1, y1, x2, y2), score, class_id in zip(result.boxes, result.scores, result.classes):
            det_lines.append(f"{t + 1},-1,{x1:.1f},{y1:.1f},{x2 - x1:.1f},{y2 - y1:.1f},{score:.4f},"
                             f"{int(class_id)},-1,-1")
    (directory / "gt" / "gt.txt").write_text("\n".join(gt_lines) + "\n")
    (directory / "det" / "det.txt").write_text("\n".join(det_lines) + "\n")
    (directory / "seqinfo.ini").write_text(f"[Sequence]\nname={directory.name}\nframeRate={FPS:g}\n"
                                           f"seqLength={FRAMES}\nimWidth={SIZE}\nimHeight={SIZE}\nimExt=.png\n")
    return {"objects": objects, "frames": FRAMES, "crossings": crossings, "occluded_object_frames": int(occluded),
            "scored_object_frames": int(visible_rows), "detections": len(det_lines)}


def kind_index(kind: str) -> int:
    from edgecnn.core.scenes import DETECTION_SHAPES

    return DETECTION_SHAPES.index(kind)


def track_clips(out: Path, names) -> None:
    """Run each tracker over each clip's det.txt; writes CLIP/TRACKER.txt."""
    from tracker_adapters import make

    for clip in sorted(p for p in out.iterdir() if (p / "det" / "det.txt").exists()):
        rows = np.loadtxt(clip / "det" / "det.txt", delimiter=",", ndmin=2)
        for name in names:
            step, lines = make(name, FPS), []
            for frame in range(1, FRAMES + 1):
                here = rows[rows[:, 0] == frame]
                boxes = np.concatenate([here[:, 2:4], here[:, 2:4] + here[:, 4:6]], axis=1)
                tracked, ids = step(boxes, here[:, 6], here[:, 7].astype(int))
                for (x1, y1, x2, y2), track_id in zip(tracked, ids):
                    lines.append(f"{frame},{int(track_id)},{x1:.1f},{y1:.1f},{x2 - x1:.1f},{y2 - y1:.1f},1,-1,-1,-1")
            (clip / f"{name}.txt").write_text("\n".join(lines) + "\n")


def evaluate(out: Path, names) -> dict:
    """TrackEval's HOTA (mean over its IoU thresholds, with DetA and AssA), CLEAR (MOTA,
    ID switches) and Identity (IDF1) per tracker: per clip and all clips together."""
    import shutil

    import trackeval

    root = out / "_trackeval"
    shutil.rmtree(root, ignore_errors=True)
    clips = sorted(p.name for p in out.iterdir() if (p / "gt" / "gt.txt").exists())
    for clip in clips:
        rows = [line.split(",") for line in (out / clip / "gt" / "gt.txt").read_text().split()]
        (root / "gt" / clip / "gt").mkdir(parents=True)
        (root / "gt" / clip / "gt" / "gt.txt").write_text(
            "".join(",".join(r[:7] + ["1", r[8]]) + "\n" for r in rows))
        for name in names:
            (root / "trackers" / name / "data").mkdir(parents=True, exist_ok=True)
            shutil.copy(out / clip / f"{name}.txt", root / "trackers" / name / "data" / f"{clip}.txt")
    evaluator = trackeval.Evaluator({"USE_PARALLEL": False, "PRINT_RESULTS": False, "PRINT_CONFIG": False,
                                     "OUTPUT_SUMMARY": False, "OUTPUT_DETAILED": False, "PLOT_CURVES": False,
                                     "TIME_PROGRESS": False, "DISPLAY_LESS_PROGRESS": True})
    dataset = trackeval.datasets.MotChallenge2DBox({
        "GT_FOLDER": str(root / "gt"), "TRACKERS_FOLDER": str(root / "trackers"), "TRACKERS_TO_EVAL": list(names),
        "SKIP_SPLIT_FOL": True, "SEQ_INFO": {clip: FRAMES for clip in clips}, "DO_PREPROC": False,
        "PRINT_CONFIG": False})
    metrics = [trackeval.metrics.HOTA(), trackeval.metrics.CLEAR({"PRINT_CONFIG": False}),
               trackeval.metrics.Identity({"PRINT_CONFIG": False})]
    results, _ = evaluator.evaluate([dataset], metrics)
    report = {}
    for name in names:
        report[name] = {}
        for clip in clips + ["COMBINED_SEQ"]:
            scores = results["MotChallenge2DBox"][name][clip]["pedestrian"]
            report[name]["all" if clip == "COMBINED_SEQ" else clip] = {
                "HOTA": round(float(np.mean(scores["HOTA"]["HOTA"])), 4),
                "DetA": round(float(np.mean(scores["HOTA"]["DetA"])), 4),
                "AssA": round(float(np.mean(scores["HOTA"]["AssA"])), 4),
                "MOTA": round(float(scores["CLEAR"]["MOTA"]), 4),
                "IDF1": round(float(scores["Identity"]["IDF1"]), 4),
                "IDSW": int(scores["CLEAR"]["IDSW"]), "FP": int(scores["CLEAR"]["CLR_FP"]),
                "FN": int(scores["CLEAR"]["CLR_FN"])}
    return report


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path("/tmp/edgecnn-mot"))
    parser.add_argument("--python", action="append", default=[], help="another interpreter whose trackers to run")
    parser.add_argument("--eval-python", default=sys.executable, metavar="PYTHON",
                        help="an interpreter with trackeval installed (default: this one)")
    parser.add_argument("--tracks-only", action="store_true", help="reuse the clips in --out, run the trackers")
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--evaluate", nargs="*", default=None, help=argparse.SUPPRESS)
    args = parser.parse_args()
    from tracker_adapters import available

    if args.child:  # in a tracker's venv: track the clips written by the parent
        track_clips(args.out, [n for n in available() if n != "edgecnn-bytetrack"])
        return 0
    if args.evaluate is not None:  # in TrackEval's venv
        print(json.dumps(evaluate(args.out, args.evaluate)))
        return 0
    import edgecnn

    chosen = []
    model = edgecnn.load(log=chosen.append)
    if args.tracks_only:
        clips = json.loads((args.out / "clips.json").read_text())
    else:
        clips = {name: write_clip(args.out / name, **settings, model=model) for name, settings in CLIPS.items()}
        (args.out / "clips.json").write_text(json.dumps(clips))
    names = ["edgecnn-bytetrack"]
    track_clips(args.out, names)
    for python in args.python:
        subprocess.run([python, __file__, "--child", "--out", str(args.out)], check=True)
        listing = subprocess.run([python, str(HERE / "tracker_adapters.py")], capture_output=True, text=True,
                                 check=True).stdout.split()
        names += [n for n in listing if n not in names]
    child = subprocess.run([args.eval_python, __file__, "--out", str(args.out), "--evaluate", *names],
                           capture_output=True, text=True, check=True)
    report = {"detector": model.backend.path, "detector_choice": chosen, "clips": clips,
              "scores": json.loads(child.stdout.strip().splitlines()[-1])}
    print(json.dumps(report, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
