"""How the memory of `--save` grows with the frames written (benchmarks/RESULTS.md, "Soak
and faults"): each of edgecnn's video writers (edgecnn.runtime.video_files.open_video,
the code path of `edgecnn run --save`) is fed the demo scene's frames in a loop of its
own, alone in a fresh process, and its RSS is read every --every frames after the first
--warmup frames. The slope (bytes per frame written, least squares) is what a writer
keeps per frame until its file is closed: an MP4's sample tables (moov) are written at
the end, so a writer that is never closed holds them all.

    python benchmarks/investigations/video_writer_memory.py [--frames 20000] [--codecs h264,vp8,mp4v,mjpg]
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))


def rss_kb() -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise RuntimeError("no VmRSS")


def one(codec_name: str, frames: int, warmup: int, every: int) -> dict:
    """In this process: write `frames` frames with one writer, RSS every `every`."""
    import numpy as np

    from edgecnn.runtime.demo import DemoCapture
    from edgecnn.runtime.video_files import CODECS, open_video

    capture = DemoCapture(384, 0, 15.0, 3)
    scene = [capture.read()[1] for _ in range(150)]
    codec = CODECS[codec_name]
    with tempfile.TemporaryDirectory() as folder:
        writer = open_video(Path(folder) / f"out{codec.suffix if codec_name != 'mjpg' else '.avi'}", codec, 15.0)
        points = []
        for index in range(frames):
            writer.write(scene[index % len(scene)])
            if index >= warmup and (index - warmup) % every == 0:
                points.append((index, rss_kb()))
        writer.close()
        size = sum(p.stat().st_size for p in Path(folder).iterdir())
    x = np.array([p[0] for p in points], float)
    y = np.array([p[1] for p in points], float) * 1024
    slope = float(np.polyfit(x, y, 1)[0])
    return {"codec": codec_name, "frames": frames, "bytes_per_frame_rss": round(slope, 1),
            "rss_first_kb": points[0][1], "rss_last_kb": points[-1][1], "file_bytes": size}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--frames", type=int, default=20000)
    parser.add_argument("--warmup", type=int, default=2000)
    parser.add_argument("--every", type=int, default=500)
    parser.add_argument("--codecs", default="h264,vp8,mp4v,mjpg")
    parser.add_argument("--one", default=None, help=argparse.SUPPRESS)  # the child process
    args = parser.parse_args()
    if args.one:
        print(json.dumps(one(args.one, args.frames, args.warmup, args.every)))
        return 0
    rows = []
    for codec in args.codecs.split(","):
        child = subprocess.run([sys.executable, __file__, "--one", codec, "--frames", str(args.frames), "--warmup",
                                str(args.warmup), "--every", str(args.every)], capture_output=True, text=True,
                               env={**os.environ, "PYTHONPATH": str(ROOT)})
        if child.returncode != 0:
            rows.append({"codec": codec, "error": child.stderr.strip().splitlines()[-1:]})
        else:
            rows.append(json.loads(child.stdout.strip().splitlines()[-1]))
        print(json.dumps(rows[-1]), flush=True)
    print()
    print("| writer | frames | RSS growth per frame written | RSS first / last (after the warm-up) | file |")
    print("|---|---|---|---|---|")
    for row in rows:
        if "error" in row:
            print(f"| {row['codec']} | - | {row['error']} | - | - |")
            continue
        print(f"| {row['codec']} | {row['frames']} | {row['bytes_per_frame_rss']:.0f} B | "
              f"{row['rss_first_kb'] / 1024:.1f} / {row['rss_last_kb'] / 1024:.1f} MiB | "
              f"{row['file_bytes'] / 1e6:.1f} MB |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
