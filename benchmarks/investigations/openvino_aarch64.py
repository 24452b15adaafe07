"""Does OpenVINO's aarch64 wheel install and run edgecnn's files on a Raspberry Pi's
userland? Correctness only: under qemu-user (devices/emulated_pi) it is 300-700x slower
than a real board.

    python devices/emulated_pi.py --frames 3            # once: the sysroot and venv in /tmp/edgecnn-emulated-pi
    python benchmarks/investigations/openvino_aarch64.py [--workdir /tmp/edgecnn-emulated-pi] [--version 2026.4.1]

The openvino wheel for manylinux_2_35_aarch64 (what Debian 12's glibc 2.36 takes) is
installed with the host's pip into a directory of its own (--target; the emulated
venv is left as it is) and put on the emulated Python's path. The bundled fp32 and
int8 TFLite detectors and tests/data/models/shapes_detector.onnx then run on three demo
frames through OpenVINO and through LiteRT / onnxruntime, on the host and emulated; the
script prints each side's detections and exits 1 when any differ between the two
machines or between the engines (fp32: same boxes to 0.1 px; OpenVINO on the int8 file,
whose int8 layers run on its int8 kernels on Arm and in float arithmetic on an x86 CPU
without VNNI: boxes within 1 px and scores within 0.01).

Measured 2026-12-07 (AMD EPYC host, AVX2 without VNNI; QEMU_CPU=cortex-a76): the
manylinux_2_35_aarch64 wheel of openvino 2026.4.1 installs and imports (47 s emulated),
finds the CPU device, and gives the host's detections on the fp32 TFLite and ONNX
files; on the int8 file its boxes are within 0.7 px of LiteRT's, scores equal.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
FILES = (("edgecnn/assets/shapes_detector.tflite", "litert"), ("tests/data/models/shapes_detector.onnx", "onnxruntime"),
         ("edgecnn/assets/shapes_detector-int8.tflite", "litert"))


def detect() -> dict:
    """On whichever machine runs this: each file through its reference engine and OpenVINO."""
    started = time.time()
    import openvino

    import edgecnn
    from edgecnn.runtime.demo import DemoCapture

    report = {"machine": platform.machine(), "openvino": openvino.__version__,
              "import_seconds": round(time.time() - started, 1), "devices": openvino.Core().available_devices,
              "files": {}}
    scene = DemoCapture(size=384, seed=0)
    frames = [scene.scene(t) for t in (0, 10, 20)]
    for path, reference in FILES:
        for backend in (reference, "openvino"):
            model = edgecnn.load(str(ROOT / path), backend=backend, log=None)
            report["files"].setdefault(path, {})[backend] = {
                "ran_on": model.backend.ran_on_text(),
                "detections": [[[d.label, *[round(v, 2) for v in d.box], round(d.score, 4)] for d in model.predict(f)]
                               for f in frames]}
    return report


def agree(a: list, b: list, pixels: float, score: float) -> bool:
    return len(a) == len(b) and all(
        len(fa) == len(fb) and all(x[0] == y[0] and max(abs(p - q) for p, q in zip(x[1:5], y[1:5])) <= pixels
                                   and abs(x[5] - y[5]) <= score for x, y in zip(fa, fb))
        for fa, fb in zip(a, b))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workdir", default="/tmp/edgecnn-emulated-pi")
    parser.add_argument("--version", default="2026.4.1")
    parser.add_argument("--cpu", default="cortex-a76")
    parser.add_argument("--guest", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.guest:
        print(json.dumps(detect()))
        return 0
    workdir = Path(args.workdir)
    guest_python = workdir / "venv" / "bin" / "python"
    if not guest_python.exists():
        print(f"no emulated venv at {guest_python}; run python devices/emulated_pi.py first", file=sys.stderr)
        return 2
    site = workdir / f"openvino-{args.version}-aarch64"
    if not (site / "openvino").is_dir():
        subprocess.run([sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--only-binary=:all:",
                        "--platform", "manylinux_2_35_aarch64", "--python-version", "3.11", "--target", str(site),
                        f"openvino=={args.version}", "openvino-telemetry"], check=True)
    host = detect()
    env = {**os.environ, "QEMU_CPU": args.cpu, "PYTHONPATH": f"{site}{os.pathsep}{ROOT}", "PYTHONNOUSERSITE": "1"}
    started = time.time()
    guest = subprocess.run([str(guest_python), str(Path(__file__).resolve()), "--guest"], capture_output=True,
                           text=True, env=env, timeout=3600)
    if guest.returncode != 0:
        print(guest.stderr[-2000:], file=sys.stderr)
        return 1
    emulated = json.loads(guest.stdout.strip().splitlines()[-1])
    checks = {}
    for path, reference in FILES:
        int8 = "int8" in path
        for backend in (reference, "openvino"):
            # OpenVINO's int8 layers: its int8 kernels on Arm, float arithmetic on x86 without VNNI (exact_int8)
            loose = int8 and backend == "openvino"
            checks[f"{path} {backend}: emulated = host"] = agree(
                emulated["files"][path][backend]["detections"], host["files"][path][backend]["detections"],
                1.0 if loose else 0.1, 0.01 if loose else 1e-4)
        checks[f"{path}: openvino = {reference} (emulated)"] = agree(
            emulated["files"][path]["openvino"]["detections"], emulated["files"][path][reference]["detections"],
            1.0 if int8 else 0.1, 0.01 if int8 else 1e-3)
    print(json.dumps({"host": {k: host[k] for k in ("machine", "openvino", "devices")},
                      "emulated": {k: emulated[k] for k in ("machine", "openvino", "import_seconds", "devices")},
                      "ran_on": {path: {b: emulated["files"][path][b]["ran_on"] for b in emulated["files"][path]}
                                 for path, _ in FILES},
                      "checks": checks, "emulated_seconds": round(time.time() - started)}, indent=1))
    return 0 if all(checks.values()) else 1


if __name__ == "__main__":
    sys.exit(main())
