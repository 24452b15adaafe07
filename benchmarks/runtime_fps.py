"""Runtime measurements for benchmarks/RESULTS.md ("Runtime" section).

1. Video file: processed FPS of `edgecnn run MODEL --source VIDEO --json /dev/null`
   (its code path, in-process) against a plain sequential loop (decode -> preprocess ->
   infer -> decode/NMS, one frame after the other) over the same file and model, in
   interleaved rounds; each round's ratio is taken under the same machine load. FPS
   counts from the first result to the last (start-up is measured separately).
2. Start-up: wall time from launching `edgecnn run MODEL --source VIDEO --json -` to its
   first JSON line on stdout.
3. A source paced at 30 FPS (the demo scene, a live source): frame age p99 against
   inference p99 + one frame period, and frame age in the first and last 500 of 3000
   frames (no growth).

    python benchmarks/runtime_fps.py [--model PATH] [--repeats 10] [--paced-frames 3000]

The video is tests/data/tree.avi (a real 320x240 clip, 68 frames) looped 10 times into
a temporary MJPG file so each FPS figure covers 680 frames.
"""
from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import cv2  # noqa: E402
import numpy as np  # noqa: E402


def looped_video(source: Path, out: Path, loops: int) -> int:
    frames = []
    capture = cv2.VideoCapture(str(source))
    while True:
        ok, frame = capture.read()
        if not ok:
            break
        frames.append(frame)
    fps = capture.get(cv2.CAP_PROP_FPS) or 15.0
    height, width = frames[0].shape[:2]
    writer = cv2.VideoWriter(str(out), cv2.VideoWriter_fourcc(*"MJPG"), fps, (width, height))
    for _ in range(loops):
        for frame in frames:
            writer.write(frame)
    writer.release()
    return len(frames) * loops


def plain_loop(model_path: str, video: str, bound: bool = False) -> dict:
    """The baseline: no threads, no pipelining; the same preprocessing, backend and decode.
    bound: preprocessing with its OpenCV parameters built once (as `edgecnn run` does)
    instead of the plain `preprocess(image, card)` call."""
    from edgecnn.runtime.backends import open_backend
    from edgecnn.core.preprocess import make_preprocessor, preprocess
    from edgecnn.tasks.detect.task import detect

    backend = open_backend(model_path)
    card = backend.card
    prepare = make_preprocessor(card) if bound else (lambda image: preprocess(image, card))
    capture = cv2.VideoCapture(video)
    frames, first = 0, None
    while True:
        ok, image = capture.read()
        if not ok:
            break
        outputs = backend.infer(prepare(image))
        detect(card, outputs, image.shape[:2])
        frames += 1
        if first is None:
            first = time.perf_counter()
    return {"frames": frames, "fps": (frames - 1) / (time.perf_counter() - first)}


def edgecnn_run(model_path: str, video: str) -> dict:
    """What `edgecnn run MODEL --source VIDEO --json /dev/null` runs (the command's own
    code path, called in-process); its summary FPS counts first result to last."""
    from edgecnn.runtime.runner import RunOptions, run

    return run(RunOptions(model=model_path, source=video, sinks={"json": "/dev/null"}), log=lambda message: None)


def time_to_first_result(model_path: str, video: str) -> float:
    started = time.perf_counter()
    process = subprocess.Popen([sys.executable, "-m", "edgecnn", "run", model_path, "--source", video, "--json", "-"],
                               stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, cwd=ROOT)
    line = process.stdout.readline()
    seconds = time.perf_counter() - started
    process.kill()
    process.wait()
    json.loads(line)
    return seconds


def paced(model_path: str, frames: int, fps: float) -> dict:
    import edgecnn

    model = edgecnn.load(model_path)
    stream = model.stream(f"demo?fps={fps:g}", max_frames=frames)
    ages, inference = [], []
    for _, result in stream:
        ages.append(result.frame_age_ms)
        inference.append(result.inference_ms)
    ages, inference = np.array(ages), np.array(inference)
    chunk = min(500, frames // 3)
    return {"frames": len(ages), "fps_source": fps, "dropped": stream.source.dropped,
            "processed_fps": round(stream.stats.fps(), 2),
            "age_p50_ms": round(float(np.percentile(ages, 50)), 2),
            "age_p99_ms": round(float(np.percentile(ages, 99)), 2),
            "inference_p99_ms": round(float(np.percentile(inference, 99)), 2),
            "bound_ms": round(float(np.percentile(inference, 99)) + 1000 / fps, 2),
            "age_first_p50_ms": round(float(np.percentile(ages[:chunk], 50)), 2),
            "age_last_p50_ms": round(float(np.percentile(ages[-chunk:], 50)), 2),
            "age_first_p99_ms": round(float(np.percentile(ages[:chunk], 99)), 2),
            "age_last_p99_ms": round(float(np.percentile(ages[-chunk:], 99)), 2),
            "age_slope_ms_per_1000_frames": round(float(np.polyfit(np.arange(len(ages)), ages, 1)[0] * 1000), 3)}


def main() -> None:
    from edgecnn.assets import RUNTIME_DEFAULT

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default=str(RUNTIME_DEFAULT))
    parser.add_argument("--repeats", type=int, default=10, help="interleaved rounds of the three video pipelines")
    parser.add_argument("--paced-frames", type=int, default=3000, help="0: skip the paced-source part")
    parser.add_argument("--fps", type=float, default=30.0)
    args = parser.parse_args()
    report = {"model": Path(args.model).name}
    with tempfile.TemporaryDirectory() as tmp:
        video = str(Path(tmp) / "tree_x10.avi")
        report["video_frames"] = looped_video(ROOT / "tests" / "data" / "tree.avi", Path(video), 10)
        runs, loops, bound_loops = [], [], []
        cpu_share = {"plain_loop": [], "plain_loop_bound_preprocess": [], "edgecnn_run": []}
        for _ in range(args.repeats):  # interleaved rounds: drifting machine load hits all three alike
            for key, values, measure in (
                    ("plain_loop", loops, lambda: plain_loop(args.model, video, bound=False)),
                    ("plain_loop_bound_preprocess", bound_loops, lambda: plain_loop(args.model, video, bound=True)),
                    ("edgecnn_run", runs, lambda: edgecnn_run(args.model, video))):
                cpu, wall = time.process_time(), time.perf_counter()
                values.append(measure()["fps"])
                # CPU-seconds this process got per second (all its threads): above 1 only
                # when a second core was free for the decode-ahead thread.
                cpu_share[key].append((time.process_time() - cpu) / (time.perf_counter() - wall))
        report["cpu_share_median"] = {k: round(statistics.median(v), 2) for k, v in cpu_share.items()}
        for key, values in (("plain_loop", loops), ("plain_loop_bound_preprocess", bound_loops),
                            ("edgecnn_run", runs)):
            report[f"{key}_fps"] = [round(v, 1) for v in values]
            report[f"{key}_fps_median"] = round(statistics.median(values), 1)
        for key, baseline in (("plain_loop", loops), ("plain_loop_bound_preprocess", bound_loops)):
            ratios = [r / b for r, b in zip(runs, baseline)]  # paired: the same round, the same load
            report[f"run_over_{key}_median_ratio"] = round(statistics.median(ratios), 3)
            report[f"run_ge_{key}_rounds"] = f"{sum(r >= 1 for r in ratios)}/{len(ratios)}"
        starts = [time_to_first_result(args.model, video) for _ in range(5)]
        report["first_result_s"] = [round(s, 3) for s in starts]
        report["first_result_s_median"] = round(statistics.median(starts), 3)
    if args.paced_frames:
        report["paced"] = paced(args.model, args.paced_frames, args.fps)
    print(json.dumps(report, indent=1))
    ok = (report["edgecnn_run_fps_median"] >= max(report["plain_loop_fps_median"],
                                                  report["plain_loop_bound_preprocess_fps_median"])
          and (not args.paced_frames or report["paced"]["age_p99_ms"] <= report["paced"]["bound_ms"])
          and max(starts) < 1.5)
    print("all criteria met" if ok else "CRITERIA NOT MET", file=sys.stderr)


if __name__ == "__main__":
    main()
