"""A slow sink must not slow the camera (benchmarks/RESULTS.md, "Sinks off the inference
thread").

Two runs of `edgecnn run` (its code path, in-process) on a source paced at 30 FPS (the
demo scene through the live-source capture thread), each writing JSON lines to
/dev/null; the second also has a sink that sleeps 200 ms per record (a callback, which
the runner puts behind its own queue and thread like every sink). Inference FPS and
frame age p99 of the two are compared: the goal is FPS within 5% and frame age p99
within one frame period, with the slow sink's dropped records counted.

    python benchmarks/slow_sink.py [--frames 3000] [--fps 30] [--sleep 0.2] [--model PATH]
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from edgecnn.runtime.runner import RunOptions, run  # noqa: E402


def one_run(model, frames: int, fps: float, sleep: float) -> dict:
    written = []

    def slow(image, result):
        time.sleep(sleep)
        written.append(result.frame_index)

    options = RunOptions(model=model, source=f"demo?fps={fps:g}", max_frames=frames, sinks={"json": "/dev/null"},
                         callbacks=[slow] if sleep > 0 else [])
    summary = run(options, log=lambda message: None)
    summary["sink_written"] = len(written)
    return summary


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default=None, help="default: the bundled detector")
    parser.add_argument("--frames", type=int, default=3000)
    parser.add_argument("--fps", type=float, default=30.0)
    parser.add_argument("--sleep", type=float, default=0.2, help="seconds the slow sink sleeps per record")
    args = parser.parse_args()
    period_ms = 1000.0 / args.fps
    plain = one_run(args.model, args.frames, args.fps, 0.0)
    slow = one_run(args.model, args.frames, args.fps, args.sleep)
    fps_change = slow["fps"] / plain["fps"] - 1
    age_change = slow["age_p99_ms"] - plain["age_p99_ms"]
    report = {
        "frames": args.frames, "source_fps": args.fps, "sink_sleep_s": args.sleep,
        "without_sink": {k: plain[k] for k in ("frames", "fps", "age_p50_ms", "age_p99_ms", "inference_p50_ms",
                                              "dropped")},
        "with_slow_sink": {k: slow[k] for k in ("frames", "fps", "age_p50_ms", "age_p99_ms", "inference_p50_ms",
                                               "dropped", "sink_written")}
        | {"sink_dropped": slow["sink_dropped"].get("callback", 0)},
        "fps_change": round(fps_change, 4), "age_p99_change_ms": round(age_change, 2),
        "fps_within_5_percent": abs(fps_change) <= 0.05, "age_p99_within_one_period": age_change <= period_ms,
    }
    report["records_accounted"] = (report["with_slow_sink"]["sink_written"]
                                   + report["with_slow_sink"]["sink_dropped"] == slow["frames"])
    print(json.dumps(report, indent=1))
    return 0 if report["fps_within_5_percent"] and report["age_p99_within_one_period"] else 1


if __name__ == "__main__":
    sys.exit(main())
