#!/usr/bin/env python3
"""Run edgecnn's device runtime on an emulated Raspberry Pi and check it agrees with x86.

    python devices/emulated_pi.py [--workdir DIR] [--cpu cortex-a72|cortex-a76] [--frames 30]
                                  [--raw-frames 3] [--pytest] [--json PATH]
    python devices/emulated_pi.py --compare REFERENCE.jsonl DEVICE.jsonl [--json PATH]

The emulated Pi is a Debian 12 (Raspberry Pi OS Bookworm's base) arm64 userland with
Python 3.11, run by qemu-user (qemu-aarch64-static, taken from Debian's
qemu-user-static package without installing it) with no root, no binfmt_misc and no
chroot: `qemu -L SYSROOT` makes every absolute path the guest opens resolve inside the
sysroot first. The sysroot is made by mmdebstrap (also run from its unpacked package)
in its extract variant, and cached in --workdir. cortex-a72 emulates a Pi 4's CPU,
cortex-a76 a Pi 5's; the sysroot gets a matching /proc/cpuinfo and
/proc/device-tree/model (qemu 7.2 would pass the host's x86 /proc/cpuinfo through,
and onnxruntime's CPU detection crashes on it).

What it does: builds an edgecnn wheel from this checkout, installs `edgecnn[runtime]`
from it with pytest into the emulated venv (aarch64 wheels resolved by the host pip,
pinned to the host's versions of the runtime's dependencies), runs
`edgecnn run --source demo` with the bundled .tflite (LiteRT) and with
tests/data/models/shapes_detector.onnx (onnxruntime) inside the emulator, dumps raw
model outputs of the first demo frames, and does the same on the host. It compares
the detections frame by frame (same classes, box IoU >= 0.99, scores within 0.01) and
the raw outputs (fp32: relative error <= 1e-4; integer outputs: within one
quantization step), reports the kernels that load (LiteRT's XNNPACK delegate,
onnxruntime's execution providers) and prints a JSON summary.

Emulation is 300-700x slower than the real CPU: it answers "does it work and agree",
never "how fast". The demo source is live and keeps only the newest frame, so the
emulated run sees frames 0, ~40, ~80...; the demo's frame t is a pure function of t,
and the host reference is computed on exactly the frames the emulated run saw.

Exit codes: 0 everything agrees (and, with --pytest, the emulated tests pass); 1 a
disagreement, a failed emulated test or a failed step (the summary or one line says
which); 2 a prerequisite is missing or an argument is wrong (one line on stderr naming
it). A run on a 480-pixel demo (`litert-demo480` in the summary) is recorded but not
gated: OpenCV's aarch64 resize rounds differently from x86's at non-integer scales.

Standard library only (it runs with any Python 3.9+; the host Python that computes
the x86 reference, --host-python, needs edgecnn[runtime]).
"""
from __future__ import annotations

import os
import sys

# Run as a script, this file's folder comes first on sys.path, and devices/profile.py
# would shadow the standard library's `profile`.
_HERE = os.path.dirname(os.path.abspath(__file__))
sys.path[:] = [p for p in sys.path if os.path.abspath(p or os.curdir) != _HERE]

import argparse  # noqa: E402
import contextlib  # noqa: E402
import fcntl  # noqa: E402
import glob  # noqa: E402
import hashlib  # noqa: E402
import json  # noqa: E402
import platform  # noqa: E402
import re  # noqa: E402
import shutil  # noqa: E402
import subprocess  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
import urllib.error  # noqa: E402
import urllib.request  # noqa: E402
from pathlib import Path  # noqa: E402
from typing import Dict, Iterator, List, Optional, Sequence, Tuple  # noqa: E402

DEFAULT_WORKDIR = "/tmp/edgecnn-emulated-pi"
SUITE = "bookworm"
DEFAULT_MIRROR = "http://deb.debian.org/debian"
# The sysroot: Python 3.11 as Raspberry Pi OS Bookworm has it, the C++ runtime the
# inference libraries link, and libGL/GLib for opencv-python (the non-headless wheel
# edgecnn[runtime] asks for).
SYSROOT_PACKAGES = ("python3.11", "python3.11-venv", "libstdc++6", "libgcc-s1", "libgomp1", "ca-certificates",
                    "libgl1", "libglib2.0-0")
GUEST_PYTHON = "usr/bin/python3.11"
# Runtime dependencies whose aarch64 wheels are pinned to the host's versions, so both
# sides run the same library releases.
PINNED = ("numpy", "opencv-python", "onnxruntime", "ai-edge-litert", "tqdm")
WHEEL_PLATFORMS = ["manylinux2014_aarch64"] + [f"manylinux_2_{v}_aarch64" for v in (17, 27, 28, 31, 34, 35, 36)]
NEEDED_FREE_BYTES = 2 * 1024 ** 3  # sysroot ~0.3 GB, wheels ~0.4 GB, unpacked site-packages ~0.6 GB

# (board model, /proc/cpuinfo per-core block, board revision) for each emulated CPU.
CPUS = {
    "cortex-a72": ("Raspberry Pi 4 Model B Rev 1.5",
                   "BogoMIPS\t: 108.00\nFeatures\t: fp asimd evtstrm crc32 cpuid\nCPU implementer\t: 0x41\n"
                   "CPU architecture: 8\nCPU variant\t: 0x0\nCPU part\t: 0xd08\nCPU revision\t: 3\n", "d03115"),
    "cortex-a76": ("Raspberry Pi 5 Model B Rev 1.0",
                   "BogoMIPS\t: 108.00\nFeatures\t: fp asimd evtstrm aes pmull sha1 sha2 crc32 atomics fphp asimdhp "
                   "cpuid asimdrdm lrcpc dcpop asimddp\nCPU implementer\t: 0x41\nCPU architecture: 8\n"
                   "CPU variant\t: 0x4\nCPU part\t: 0xd0b\nCPU revision\t: 1\n", "d04170"),
}
DEMO = (384, 0, 30.0)  # size, seed, fps: what `--source demo` opens
# The demo's 384-pixel frames meet the detector's 192x192 input at exactly 2x, where
# OpenCV's x86 and ARM resizes agree; RESIZED frames take a non-integer scale, as a
# camera's 640x480 would. Recorded, not gated: the two resizes round differently there.
RESIZED = 480
CONF = 0.25  # edgecnn run's default --conf
IOU_MIN, SCORE_TOL, FP32_REL_TOL = 0.99, 0.01, 1e-4
# In-process tests: every `edgecnn` subprocess pays 10-20 s of emulated start-up, so the
# command-line tests (test_info_files' four took 163 s, test_registries' one 24 s) are
# left to the demo runs above.
PYTEST_FILES = ("tests/test_card_and_preprocess.py", "tests/test_registries.py", "tests/test_devices.py",
                "tests/test_bench_fingerprint.py", "tests/test_segment_runtime.py")


class Missing(Exception):
    """A prerequisite or an argument problem: one line on stderr, exit 2."""


class Failed(Exception):
    """A step that should have worked did not: one line on stderr, exit 1."""


def log(message: str) -> None:
    print(f"emulated-pi: {message}", file=sys.stderr, flush=True)


def last_line(text: str) -> str:
    lines = [line.strip() for line in (text or "").strip().splitlines() if line.strip()]
    return lines[-1][:300] if lines else "(no output)"


# ------------------------------------------------------------------ comparison

def read_records(path: str) -> List[dict]:
    """`edgecnn run --json` output: one JSON record per line."""
    try:
        with open(path) as handle:
            lines = [line for line in handle if line.strip()]
    except OSError as exc:
        raise Missing(f"{path}: cannot read: {exc.strerror or exc}") from None
    records = []
    for number, line in enumerate(lines, 1):
        try:
            record = json.loads(line)
        except ValueError:
            raise Missing(f"{path}:{number}: not a JSON record (expected `edgecnn run --json` output)") from None
        if not isinstance(record, dict) or "frame" not in record or "task" not in record:
            raise Missing(f"{path}:{number}: no frame/task fields (expected `edgecnn run --json` output)")
        records.append(record)
    if not records:
        raise Missing(f"{path}: no records")
    return records


def box_iou(a: Sequence[float], b: Sequence[float]) -> float:
    width = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    height = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = width * height
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return inter / union if union > 0 else float(a == b)


def compare_records(reference: List[dict], device: List[dict], conf: float = CONF) -> dict:
    """Frame-by-frame agreement of two `edgecnn run --json` outputs of the same source.

    Frames are joined on their index. Detections pair up within a class by IoU (best
    first); a detection without a partner counts as borderline, not as a
    disagreement, when its score is within SCORE_TOL of the confidence threshold (one
    side's 0.2501 is the other's 0.2499). Classifier records compare their classes.
    """
    ref = {r["frame"]: r for r in reference}
    dev = {r["frame"]: r for r in device}
    common = sorted(set(ref) & set(dev))
    problems: List[str] = []
    min_iou, max_score_diff, pairs, borderline = 1.0, 0.0, 0, 0
    for frame in common:
        a, b = ref[frame], dev[frame]
        if a["task"] != b["task"]:
            problems.append(f"frame {frame}: task {a['task']} vs {b['task']}")
            continue
        if a["task"] == "classify":
            if a.get("label") != b.get("label"):
                problems.append(f"frame {frame}: top class {a.get('label')} vs {b.get('label')}")
            scores_b = {c["class_id"]: c["score"] for c in b.get("classes", [])}
            for entry in a.get("classes", []):
                if entry["class_id"] in scores_b:
                    diff = abs(entry["score"] - scores_b[entry["class_id"]])
                    max_score_diff = max(max_score_diff, diff)
                    pairs += 1
                    if diff > SCORE_TOL:
                        problems.append(f"frame {frame}: {entry['label']} score {entry['score']} vs "
                                        f"{scores_b[entry['class_id']]}")
            continue
        da, db = a.get("detections", []), b.get("detections", [])
        candidates = sorted(((box_iou(x["box"], y["box"]), i, j) for i, x in enumerate(da)
                             for j, y in enumerate(db) if x["class_id"] == y["class_id"]), reverse=True)
        used_a, used_b = set(), set()
        for iou, i, j in candidates:
            if i in used_a or j in used_b or iou <= 0:
                continue
            used_a.add(i)
            used_b.add(j)
            diff = abs(da[i]["score"] - db[j]["score"])
            min_iou, max_score_diff, pairs = min(min_iou, iou), max(max_score_diff, diff), pairs + 1
            if iou < IOU_MIN or diff > SCORE_TOL:
                problems.append(f"frame {frame}: {da[i]['label']} IoU {iou:.4f}, score {da[i]['score']} vs "
                                f"{db[j]['score']}")
        for side, items, used in (("reference", da, used_a), ("device", db, used_b)):
            for k, item in enumerate(items):
                if k in used:
                    continue
                if item["score"] < conf + SCORE_TOL:
                    borderline += 1
                else:
                    problems.append(f"frame {frame}: {item['label']} {item['score']} at {item['box']} "
                                    f"only in the {side} output")
    return {"frames_reference": len(ref), "frames_device": len(dev), "frames_compared": len(common),
            "frames_device_only": len(set(dev) - set(ref)), "objects_paired": pairs,
            "min_iou": round(min_iou, 5) if pairs else None,
            "max_score_diff": round(max_score_diff, 5) if pairs else None,
            "borderline_unpaired": borderline, "problems": problems[:10], "problem_count": len(problems),
            "agree": bool(common) and not problems}


def compare_raw(reference: dict, device: dict) -> dict:
    """Raw model outputs of the same frames (arrays read from the .npz dumps).

    fp32 outputs: the largest absolute difference over every output and frame, over
    the reference's largest magnitude, within FP32_REL_TOL (the converter's parity
    measure, converters/parity.py). Integer outputs (dequantized by the runtime):
    within one quantization step. The worst relative error of a single output is
    reported too: small-valued outputs (scores far from any object) show more there.
    The preprocessed inputs ("in<frame>") are compared in pixel levels, for the record.
    """
    fp32_diff, fp32_scale, per_output, worst_steps, problems = 0.0, 0.0, 0.0, 0.0, []
    compared, input_levels, input_changed, input_values = 0, 0.0, 0, 0
    for key, ref in reference["arrays"].items():
        dev = device["arrays"].get(key)
        if dev is None or len(dev) != len(ref):
            problems.append(f"{key}: missing or of another size on the device")
            continue
        if key.startswith("in"):
            input_levels = max(input_levels, max((abs(x - y) for x, y in zip(ref, dev)), default=0.0)
                               * reference.get("input_std", 1.0))
            input_changed += sum(1 for x, y in zip(ref, dev) if x != y)
            input_values += len(ref)
            continue
        compared += 1
        step = reference["steps"][int(key.rsplit("_o", 1)[1])]
        diff = max((abs(x - y) for x, y in zip(ref, dev)), default=0.0)
        if step:
            worst_steps = max(worst_steps, diff / step)
            if diff > step * (1 + 1e-6):
                problems.append(f"{key}: {diff / step:.2f} quantization steps apart")
        else:
            scale = max((abs(x) for x in ref), default=0.0)
            fp32_diff, fp32_scale = max(fp32_diff, diff), max(fp32_scale, scale)
            per_output = max(per_output, diff / scale if scale else diff)
    relative = fp32_diff / max(fp32_scale, 1e-12)
    if relative > FP32_REL_TOL:
        problems.append(f"fp32 outputs: relative error {relative:.3g} exceeds {FP32_REL_TOL:g}")
    return {"input_max_diff_levels": round(input_levels, 3),
            "input_values_differing": round(input_changed / input_values, 5) if input_values else None,
            "outputs_compared": compared, "max_abs_error_fp32": fp32_diff, "relative_error_fp32": relative,
            "worst_single_output_relative_error_fp32": per_output, "max_quantization_steps": worst_steps,
            "problems": problems[:10], "agree": bool(compared) and not problems}


# ------------------------------------------------------------------ the code both Pythons run

# Run by the emulated Python and by the host Python with one JSON argument. It uses
# the installed edgecnn runtime only (numpy, OpenCV, LiteRT, onnxruntime; no torch).
GUEST_PROBE = r'''
import collections, ctypes, json, os, platform, sys, tempfile, time
args = json.loads(sys.argv[1])
import numpy as np
import edgecnn
from edgecnn.core.preprocess import make_preprocessor
from edgecnn.runtime.backends import open_backend
from edgecnn.runtime.card_options import CardOptions, resolve_card
from edgecnn.assets import ASSETS
from edgecnn.runtime.demo import DemoCapture
from edgecnn.tasks import get_task

demo = DemoCapture(int(args["demo"][0]), int(args["demo"][1]), float(args["demo"][2]))
report = {"machine": platform.machine(), "python": platform.python_version(), "edgecnn_file": edgecnn.__file__,
          "jobs": {}}
try:
    from importlib.metadata import version
    report["versions"] = {name: version(name) for name in ("numpy", "opencv-python", "onnxruntime", "ai-edge-litert")}
except Exception as exc:
    report["versions"] = {"error": str(exc)}


def hwcaps():
    """aarch64 AT_HWCAP/AT_HWCAP2 feature names: what the (emulated) CPU offers."""
    if platform.machine() != "aarch64":
        return None
    names1 = ("fp asimd evtstrm aes pmull sha1 sha2 crc32 atomics fphp asimdhp cpuid asimdrdm jscvt fcma lrcpc "
              "dcpop sha3 sm3 sm4 asimddp sha512 sve asimdfhm dit uscat ilrcpc flagm ssbs sb paca pacg").split()
    names2 = {0: "dcpodp", 1: "sve2", 13: "i8mm", 14: "bf16", 15: "dgh", 16: "rng", 17: "bti"}
    libc = ctypes.CDLL(None)
    libc.getauxval.restype = ctypes.c_ulong
    libc.getauxval.argtypes = [ctypes.c_ulong]
    first, second = libc.getauxval(16), libc.getauxval(26)
    return ([name for bit, name in enumerate(names1) if first >> bit & 1]
            + [name for bit, name in names2.items() if second >> bit & 1])


def captured_fd2(action):
    """Run action() with file descriptor 2 captured (native libraries print there)."""
    sys.stderr.flush()
    saved = os.dup(2)
    with tempfile.TemporaryFile() as sink:
        os.dup2(sink.fileno(), 2)
        try:
            value = action()
        finally:
            sys.stderr.flush()
            os.dup2(saved, 2)
            os.close(saved)
        sink.seek(0)
        return value, [l for l in sink.read().decode(errors="replace").splitlines() if l.strip()]


for job in args["jobs"]:
    started, entry = time.perf_counter(), {}
    job["model"] = job["model"] or str(ASSETS / job["bundled"])  # a bundled file of this side's package
    scenes = DemoCapture(*job["demo"]) if job.get("demo") else demo
    if job.get("predict"):
        model = edgecnn.load(job["model"], backend=job["backend"])
        with open(job["predict_out"], "w") as handle:
            for t in job["predict"]:
                handle.write(json.dumps(model.predict(scenes.scene(t), frame_index=t).to_dict()) + "\n")
    if job.get("raw"):
        backend = open_backend(job["model"], job["backend"])
        card = resolve_card(backend.card, CardOptions(), backend.input_shape, os.path.basename(job["model"]))
        prepare = make_preprocessor(card, get_task(card.task).preprocessing(card))
        arrays = {}
        for t in job["raw"]:
            blob = prepare(scenes.scene(t))
            arrays["in%d" % t] = blob
            for k, out in enumerate(backend.infer(blob)):
                arrays["f%d_o%d" % (t, k)] = np.asarray(out, np.float32)
        np.savez(job["raw_out"], **arrays)
        entry["outputs"] = backend.output_names
        entry["steps"] = [q[0] if q else None for q in backend.output_quant]
        entry["input_std"] = float(min(card.channel_values("std")))
    if job.get("kernels"):
        backend = open_backend(job["model"], job["backend"])
        if job["backend"] == "onnxruntime":
            import onnxruntime
            entry["providers_available"] = onnxruntime.get_available_providers()
            entry["providers_session"] = backend.session.get_providers()
            entry["device"] = onnxruntime.get_device()
        else:
            from ai_edge_litert.interpreter import Interpreter
            with open(job["model"], "rb") as handle:
                data = handle.read()

            def load_and_run():
                interpreter = Interpreter(model_content=data)
                interpreter.allocate_tensors()
                detail = interpreter.get_input_details()[0]
                interpreter.set_tensor(detail["index"], np.zeros(detail["shape"], detail["dtype"]))
                interpreter.invoke()
                return interpreter

            interpreter, lines = captured_fd2(load_and_run)
            entry["native_messages"] = lines
            ops = interpreter._get_ops_details()
            entry["ops_after_invoke"] = dict(collections.Counter(op["op_name"] for op in ops))
            backend.infer(np.zeros(backend.input_shape, np.float32))
            entry["runtime_backend_ops"] = backend.op_counts()
        entry["hwcaps"] = hwcaps()
        from devices.profile import detect
        entry["device_profile"] = detect().to_dict()
    entry["seconds"] = round(time.perf_counter() - started, 2)
    report["jobs"][job["name"]] = entry
with open(args["report"], "w") as handle:
    json.dump(report, handle)
'''

# Run by the host Python: quantize the ONNX detector to int8 QDQ (calibrated on demo
# frames of another seed than the compared ones) and write each output's quantization
# step. Exit 3 with one line when this Python cannot (no onnx).
INT8_MAKER = r'''
import json, os, shutil, sys, tempfile
try:
    import onnx
    from onnx import numpy_helper
    from onnxruntime.quantization import (CalibrationDataReader, CalibrationMethod, QuantFormat, QuantType,
                                          quantize_static)
    from onnxruntime.quantization.shape_inference import quant_pre_process
except ImportError as exc:
    print("the host Python cannot quantize ONNX files (%s; pip install onnx)" % exc)
    sys.exit(3)
from edgecnn.core.preprocess import make_preprocessor
from edgecnn.runtime.backends import open_backend
from edgecnn.runtime.card_options import CardOptions, resolve_card
from edgecnn.runtime.demo import DemoCapture
from edgecnn.tasks import get_task

source, target, steps_path = sys.argv[1:4]
backend = open_backend(source, "onnxruntime")
card = resolve_card(backend.card, CardOptions(), backend.input_shape, os.path.basename(source))
prepare = make_preprocessor(card, get_task(card.task).preprocessing(card))
demo = DemoCapture(384, 1, 30.0)
blobs = [prepare(demo.scene(t)) for t in range(0, 160, 10)]


class Reader(CalibrationDataReader):
    def __init__(self):
        self.items = iter(blobs)

    def get_next(self):
        blob = next(self.items, None)
        return None if blob is None else {backend.input_name: blob}


with tempfile.TemporaryDirectory() as tmp:
    prepared = os.path.join(tmp, "prepared.onnx")
    quant_pre_process(source, prepared)
    staged = os.path.join(tmp, "int8.onnx")
    quantize_static(prepared, staged, Reader(), quant_format=QuantFormat.QDQ, per_channel=True,
                    weight_type=QuantType.QInt8, activation_type=QuantType.QUInt8,
                    calibrate_method=CalibrationMethod.MinMax)
    model = onnx.load(staged)
    producers = {output: node for node in model.graph.node for output in node.output}
    initializers = {i.name: numpy_helper.to_array(i) for i in model.graph.initializer}
    steps = []
    for output in model.graph.output:
        node = producers.get(output.name)
        scale = initializers.get(node.input[1]) if node is not None and node.op_type == "DequantizeLinear" else None
        steps.append(float(scale.reshape(-1)[0]) if scale is not None and scale.size == 1 else None)
    shutil.move(staged, target)
with open(steps_path, "w") as handle:
    json.dump(steps, handle)
'''

# Reads .npz dumps back as plain lists, so the comparison here needs no numpy.
NPZ_TO_JSON = r'''
import json, sys
import numpy as np
with np.load(sys.argv[1]) as data:
    json.dump({k: data[k].ravel().astype(float).tolist() for k in data.files}, sys.stdout)
'''


# ------------------------------------------------------------------ prerequisites

def which(name: str, path: Optional[str]) -> Optional[str]:
    return shutil.which(name, path=path)


def debian_mirror() -> str:
    for source in sorted(glob.glob("/etc/apt/sources.list.d/*.sources")):
        with contextlib.suppress(OSError):
            for line in Path(source).read_text().splitlines():
                if line.startswith("URIs:") and line.split()[1:]:
                    uri = line.split()[1]
                    if "security" not in uri:
                        return uri.rstrip("/")
    with contextlib.suppress(OSError):
        for line in Path("/etc/apt/sources.list").read_text().splitlines():
            parts = line.split()
            if len(parts) >= 3 and parts[0] == "deb" and "security" not in parts[1]:
                return parts[1].rstrip("/")
    return DEFAULT_MIRROR


class Layout:
    """Where things live in --workdir."""

    def __init__(self, workdir: Path) -> None:
        self.workdir = workdir
        self.debs = workdir / "debs"
        self.qemu = workdir / "qemu" / "usr" / "bin" / "qemu-aarch64-static"
        self.mmdebstrap = workdir / "mmdebstrap"
        self.root = workdir / "sysroot"
        self.root_stamp = workdir / "sysroot.done"
        self.venv = workdir / "venv"
        self.site = self.venv / "lib" / "python3.11" / "site-packages"
        self.deps_stamp = workdir / "venv-deps.json"
        self.wheels = workdir / "wheels"
        self.runs = workdir / "runs"

    def sysroot_ready(self) -> bool:
        return self.root_stamp.is_file() and self.root_stamp.read_text() == " ".join(SYSROOT_PACKAGES)


def check_prerequisites(args, layout: Layout) -> Tuple[str, Optional[str]]:
    """Everything a run needs before it starts; each failure is one Missing line.
    Returns (how qemu is obtained, path of qemu-aarch64-static if present)."""
    if platform.system() != "Linux":
        raise Missing(f"the emulated Pi needs a Linux host (qemu-user); this is {platform.system()}")
    tools = args.tools_path
    qemu = str(layout.qemu) if layout.qemu.is_file() else which("qemu-aarch64-static", tools)
    have_apt = which("apt-get", tools) and which("dpkg-deb", tools)
    if not qemu and not have_apt:
        raise Missing("no emulator: qemu-aarch64-static is not on PATH and apt-get/dpkg-deb are not there to "
                      "download it (apt-get download qemu-user-static)")
    need_sysroot = not layout.sysroot_ready()
    if need_sysroot and not have_apt:
        raise Missing("cannot build the arm64 sysroot: apt-get/dpkg-deb are not on PATH (needed to fetch mmdebstrap "
                      "and the Debian packages)")
    if need_sysroot or not qemu:
        mirror = args.mirror
        try:
            with urllib.request.urlopen(f"{mirror}/dists/{SUITE}/Release", timeout=20) as response:
                response.read(64)
        except (urllib.error.URLError, OSError, ValueError) as exc:
            reason = getattr(exc, "reason", None) or exc
            raise Missing(f"no network access to the Debian mirror {mirror} (needed for the arm64 sysroot): "
                          f"{reason}") from None
    free = shutil.disk_usage(_existing_parent(layout.workdir)).free
    if free < NEEDED_FREE_BYTES and not (layout.sysroot_ready() and layout.deps_stamp.is_file()):
        raise Missing(f"not enough disk: {free / 1024 ** 3:.1f} GB free under {layout.workdir}, the emulated Pi needs "
                      f"{NEEDED_FREE_BYTES / 1024 ** 3:.0f} GB")
    return ("cached" if layout.qemu.is_file() else "host" if qemu else "download"), qemu


def check_index(host_python: str, pins: Dict[str, str]) -> None:
    """The package index answers and has aarch64 wheels of the runtime for Python 3.11."""
    name = "ai-edge-litert"
    command = [host_python, "-m", "pip", "index", "versions", "--timeout", "20", "--retries", "1",
               *target_options(), name]
    result = subprocess.run(command, capture_output=True, text=True, timeout=300)
    found = re.search(r"Available versions: (.*)", result.stdout)
    if result.returncode != 0 or not found:
        errors = [line for line in result.stderr.splitlines() if "Error" in line or "error" in line.lower()]
        connection = next((line for line in errors if "connection" in line.lower() or "resolve" in line.lower()), None)
        if connection:
            raise Missing(f"no network access to the package index (pip index versions {name}): "
                          f"{_short(connection)}")
        raise Missing(f"the package index has no aarch64 wheels of {name} for Python 3.11, or cannot be reached "
                      f"(pip index versions: {last_line(result.stderr or result.stdout)})")
    if name in pins and pins[name] not in [v.strip() for v in found.group(1).split(",")]:
        raise Missing(f"no aarch64 wheel of {name}=={pins[name]} for Python 3.11 on the package index (the host has "
                      f"it; aarch64 has {found.group(1).split(',')[0].strip()})")


def _short(line: str) -> str:
    match = re.search(r"(Failed to establish a new connection: [^'\"]*|Name or service not known|"
                      r"Temporary failure in name resolution|Connection refused|timed out)", line)
    return match.group(1) if match else line.strip()[:200]


def _existing_parent(path: Path) -> Path:
    while not path.exists():
        path = path.parent
    return path


def target_options() -> List[str]:
    options = ["--only-binary=:all:", "--python-version", "3.11", "--implementation", "cp", "--abi", "cp311"]
    for name in WHEEL_PLATFORMS:
        options += ["--platform", name]
    return options


def host_versions(host_python: str) -> Dict[str, str]:
    code = ("import json\nfrom importlib.metadata import version, PackageNotFoundError\nout = {}\n"
            f"for n in {list(PINNED)!r}:\n"
            "    try:\n        out[n] = version(n)\n    except PackageNotFoundError:\n        pass\n"
            "import edgecnn, numpy, cv2, onnxruntime\nfrom ai_edge_litert.interpreter import Interpreter\n"
            "print(json.dumps(out))")
    try:
        result = subprocess.run([host_python, "-c", code], capture_output=True, text=True, timeout=300)
    except OSError as exc:
        raise Missing(f"host Python {host_python}: {exc.strerror or exc}") from None
    if result.returncode != 0:
        raise Missing(f"host Python {host_python} cannot import edgecnn's runtime (pip install -e '.[runtime]'): "
                      f"{last_line(result.stderr)}")
    return json.loads(result.stdout)


# ------------------------------------------------------------------ building the emulated Pi

def run_step(command: List[str], what: str, timeout: float, **kwargs) -> subprocess.CompletedProcess:
    try:
        result = subprocess.run(command, capture_output=True, text=True, timeout=timeout, **kwargs)
    except subprocess.TimeoutExpired:
        raise Failed(f"{what}: timed out after {timeout:.0f} s") from None
    except OSError as exc:
        raise Failed(f"{what}: {exc.strerror or exc}") from None
    if result.returncode != 0:
        raise Failed(f"{what} failed ({result.returncode}): {last_line(result.stderr or result.stdout)}")
    return result


def apt_download(package: str, layout: Layout, tools: Optional[str]) -> Path:
    existing = sorted(layout.debs.glob(f"{package}_*.deb"))
    if existing:
        return existing[-1]
    layout.debs.mkdir(parents=True, exist_ok=True)
    result = subprocess.run([which("apt-get", tools), "download", package], cwd=layout.debs, capture_output=True,
                            text=True, timeout=600)
    found = sorted(layout.debs.glob(f"{package}_*.deb"))
    if result.returncode != 0 or not found:
        raise Missing(f"apt-get download {package} failed (no network access to the Debian mirror, or no "
                      f"package index: apt-get update): {last_line(result.stderr)}")
    return found[-1]


def extract_deb(deb: Path, target: Path, tools: Optional[str], member: Optional[str] = None) -> None:
    target.mkdir(parents=True, exist_ok=True)
    if member is None:
        run_step([which("dpkg-deb", tools), "-x", str(deb), str(target)], f"dpkg-deb -x {deb.name}", 300)
        return
    tar = subprocess.Popen([which("dpkg-deb", tools), "--fsys-tarfile", str(deb)], stdout=subprocess.PIPE)
    try:
        run_step(["tar", "-x", "-C", str(target), member], f"unpacking {member} from {deb.name}", 300,
                 stdin=tar.stdout)
    finally:
        tar.stdout.close()
        tar.wait()


def ensure_qemu(layout: Layout, qemu: Optional[str], tools: Optional[str]) -> str:
    if qemu:
        return qemu
    deb = apt_download("qemu-user-static", layout, tools)
    extract_deb(deb, layout.workdir / "qemu", tools, "./usr/bin/qemu-aarch64-static")
    if not layout.qemu.is_file():
        raise Failed(f"{deb.name} has no usr/bin/qemu-aarch64-static")
    return str(layout.qemu)


def ensure_sysroot(layout: Layout, mirror: str, tools: Optional[str]) -> None:
    if layout.sysroot_ready():
        return
    deb = apt_download("mmdebstrap", layout, tools)
    shutil.rmtree(layout.mmdebstrap, ignore_errors=True)
    extract_deb(deb, layout.mmdebstrap, tools)
    staging = layout.workdir / "sysroot.tmp"
    shutil.rmtree(staging, ignore_errors=True)
    shutil.rmtree(layout.root, ignore_errors=True)
    env = {**os.environ, "PATH": f"{layout.mmdebstrap / 'usr' / 'bin'}:{os.path.dirname(which('apt-get', tools))}:"
                                 f"{os.environ.get('PATH', '/usr/bin:/bin')}"}
    log(f"building the arm64 sysroot ({SUITE}, {mirror})")
    run_step(["mmdebstrap", "--quiet", "--arch=arm64", "--variant=extract", "--mode=chrootless",
              f"--include={','.join(SYSROOT_PACKAGES)}", SUITE, str(staging), mirror],
             "mmdebstrap (arm64 sysroot)", 1200, env=env)
    if not (staging / GUEST_PYTHON).exists():
        raise Failed(f"mmdebstrap left no {GUEST_PYTHON} in the sysroot")
    staging.rename(layout.root)
    layout.root_stamp.write_text(" ".join(SYSROOT_PACKAGES))


def write_board_files(layout: Layout, cpu: str) -> None:
    """/proc/cpuinfo and /proc/device-tree/model of the board whose CPU is emulated:
    qemu -L finds them in the sysroot before the host's."""
    model, core, revision = CPUS[cpu]
    proc = layout.root / "proc"
    (proc / "device-tree").mkdir(parents=True, exist_ok=True)
    text = "".join(f"processor\t: {i}\n{core}\n" for i in range(4))
    text += f"Revision\t: {revision}\nSerial\t\t: 0000000000000000\nModel\t\t: {model}\n"
    (proc / "cpuinfo").write_text(text)
    (proc / "device-tree" / "model").write_bytes(model.encode() + b"\0")


def ensure_venv(layout: Layout, qemu: str) -> None:
    """A venv whose python is a shell wrapper around qemu, so that sys.executable is a
    host-executable file and subprocesses of the emulated Python work."""
    wrapper = layout.venv / "bin" / "python3.11"
    if (layout.venv / "pyvenv.cfg").is_file() and wrapper.is_file() and not wrapper.is_symlink():
        content = wrapper.read_text()
        if qemu in content and str(layout.root) in content:
            return
    shutil.rmtree(layout.venv, ignore_errors=True)
    layout.deps_stamp.unlink(missing_ok=True)
    run_step([qemu, "-L", str(layout.root), str(layout.root / GUEST_PYTHON), "-m", "venv", "--without-pip",
              str(layout.venv)], "creating the emulated venv", 600)
    for name in ("python", "python3", "python3.11"):
        (layout.venv / "bin" / name).unlink(missing_ok=True)
    wrapper.write_text(f'#!/bin/sh\nexec "{qemu}" -L "{layout.root}" -cpu "${{QEMU_CPU:-cortex-a76}}" -0 "$0" '
                       f'"{layout.root / GUEST_PYTHON}" "$@"\n')
    wrapper.chmod(0o755)
    for name in ("python", "python3"):
        (layout.venv / "bin" / name).symlink_to("python3.11")
    # The console script pip would write names the host's Python: write the guest's.
    script = layout.venv / "bin" / "edgecnn"
    script.write_text(f"#!{layout.venv / 'bin' / 'python'}\nimport sys\nfrom edgecnn.cli import main\n"
                      "if __name__ == '__main__':\n    sys.exit(main())\n")
    script.chmod(0o755)


def build_wheel(repo: Path, host_python: str, layout: Layout) -> Path:
    """An edgecnn wheel from this checkout, built from a copy so the tree gets no build/."""
    shutil.rmtree(layout.wheels, ignore_errors=True)
    layout.wheels.mkdir(parents=True)
    with tempfile.TemporaryDirectory(prefix="edgecnn-src-") as source:
        for name in ("pyproject.toml", "README.md", "LICENSE", "setup.cfg", "setup.py", "MANIFEST.in"):
            if (repo / name).is_file():
                shutil.copy2(repo / name, source)
        for package in ("edgecnn", "converters", "devices"):
            shutil.copytree(repo / package, Path(source) / package,
                            ignore=shutil.ignore_patterns("__pycache__", "*.pyc", "*.egg-info"))
        # The host's own setuptools when it is recent enough; else pip fetches one.
        isolation = ["--no-build-isolation"] if _has_setuptools(host_python) else []
        run_step([host_python, "-m", "pip", "wheel", "--no-deps", *isolation, "-q", "-w", str(layout.wheels), source],
                 "building the edgecnn wheel", 600)
    wheels = sorted(layout.wheels.glob("edgecnn-*.whl"))
    if not wheels:
        raise Failed("pip wheel wrote no edgecnn wheel")
    return wheels[-1]


def _has_setuptools(host_python: str) -> bool:
    result = subprocess.run([host_python, "-c", "import setuptools, sys; "
                             "sys.exit(int(setuptools.__version__.split('.')[0]) < 68)"], capture_output=True)
    return result.returncode == 0


def install_into_venv(layout: Layout, wheel: Path, host_python: str, pins: Dict[str, str]) -> dict:
    """edgecnn[runtime] from the wheel, with the aarch64 wheels of its dependencies
    resolved by the host pip for the target (no pip runs under emulation), plus pytest.
    Dependencies are installed once per set of pins; the edgecnn wheel every run."""
    wanted = {"pins": pins, "platforms": WHEEL_PLATFORMS, "extra": ["pytest"]}
    current = None
    with contextlib.suppress(OSError, ValueError):
        current = json.loads(layout.deps_stamp.read_text())
    common = [host_python, "-m", "pip", "install", "-q", "--disable-pip-version-check", "--no-compile",
              "--no-warn-script-location", "--target", str(layout.site), *target_options()]
    if current != wanted:
        log("resolving aarch64 wheels on the host: " + ", ".join(f"{k}=={v}" for k, v in sorted(pins.items())))
        shutil.rmtree(layout.site, ignore_errors=True)
        layout.site.mkdir(parents=True)
        pins_file = layout.workdir / "pins.txt"
        pins_file.write_text("".join(f"{name}=={version}\n" for name, version in sorted(pins.items())))
        run_step([*common, "-c", str(pins_file), f"edgecnn[runtime] @ {wheel.as_uri()}", "pytest"],
                 "installing edgecnn[runtime] and pytest (aarch64 wheels)", 1800)
        layout.deps_stamp.write_text(json.dumps(wanted))
    else:
        run_step([*common, "--no-deps", "--upgrade", str(wheel)], "installing the edgecnn wheel", 600)
    for stray in ("bin",):  # console scripts pip wrote for the host's Python
        shutil.rmtree(layout.site / stray, ignore_errors=True)
    return {"wheel": wheel.name}


# ------------------------------------------------------------------ running

@contextlib.contextmanager
def workdir_lock(workdir: Path) -> Iterator[None]:
    workdir.mkdir(parents=True, exist_ok=True)
    with open(workdir / ".lock", "w") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            raise Missing(f"{workdir} is in use by another emulated_pi.py run; wait for it or pass --workdir") from None
        yield


def timed(command: List[str], what: str, timeout: float, **kwargs) -> Tuple[subprocess.CompletedProcess, float]:
    started = time.perf_counter()
    result = run_step(command, what, timeout, **kwargs)
    return result, round(time.perf_counter() - started, 1)


def summary_line(stderr: str) -> Optional[str]:
    return next((line.strip() for line in stderr.splitlines() if line.startswith("summary:")), None)


def run_probe(python: str, jobs: List[dict], report: Path, what: str, timeout: float, env: dict,
              cwd: Path) -> Tuple[dict, float]:
    argument = json.dumps({"demo": DEMO, "jobs": jobs, "report": str(report)})
    _, seconds = timed([python, "-c", GUEST_PROBE, argument], what, timeout, env=env, cwd=cwd)
    return json.loads(report.read_text()), seconds


def read_npz(host_python: str, path: Path) -> Dict[str, List[float]]:
    result = run_step([host_python, "-c", NPZ_TO_JSON, str(path)], f"reading {path.name}", 300)
    return json.loads(result.stdout)


def git_commit(repo: Path) -> Optional[str]:
    with contextlib.suppress(OSError, subprocess.SubprocessError):
        result = subprocess.run(["git", "-C", str(repo), "rev-parse", "--short", "HEAD"], capture_output=True,
                                text=True, timeout=30)
        if result.returncode == 0:
            dirty = subprocess.run(["git", "-C", str(repo), "status", "--porcelain", "--untracked-files=no"],
                                   capture_output=True, text=True, timeout=30).stdout.strip()
            return result.stdout.strip() + ("+changes" if dirty else "")
    return None


def emulate(args) -> dict:
    repo = Path(args.repo).resolve()
    if not (repo / "pyproject.toml").is_file() or not (repo / "edgecnn").is_dir():
        raise Missing(f"{repo}: not an edgecnn checkout (no pyproject.toml and edgecnn/); pass --repo")
    onnx_model = repo / "tests" / "data" / "models" / "shapes_detector.onnx"
    if not onnx_model.is_file():
        raise Missing(f"{onnx_model}: missing (it is committed with the tests)")
    if args.frames < 1 or args.raw_frames < 0:
        raise Missing("--frames must be >= 1 and --raw-frames >= 0")
    layout = Layout(Path(args.workdir).resolve())
    timings: Dict[str, float] = {}
    started = time.perf_counter()
    how, qemu = check_prerequisites(args, layout)
    with workdir_lock(layout.workdir):
        host_python = args.host_python
        pins = host_versions(host_python)
        current = None
        with contextlib.suppress(OSError, ValueError):
            current = json.loads(layout.deps_stamp.read_text())
        if not current or current.get("pins") != pins:
            check_index(host_python, pins)
        qemu = ensure_qemu(layout, qemu, args.tools_path)
        ensure_sysroot(layout, args.mirror, args.tools_path)
        write_board_files(layout, args.cpu)
        ensure_venv(layout, qemu)
        timings["setup_sysroot_venv_s"] = round(time.perf_counter() - started, 1)
        mark = time.perf_counter()
        wheel = build_wheel(repo, host_python, layout)
        installed = install_into_venv(layout, wheel, host_python, pins)
        timings["wheel_build_install_s"] = round(time.perf_counter() - mark, 1)
        return run_checks(args, repo, layout, qemu, how, host_python, onnx_model, installed, timings, started)


def run_checks(args, repo: Path, layout: Layout, qemu: str, how: str, host_python: str, onnx_model: Path,
               installed: dict, timings: Dict[str, float], started: float) -> dict:
    out = layout.runs / args.cpu
    shutil.rmtree(out, ignore_errors=True)
    for side in ("emulated", "host"):
        (out / side).mkdir(parents=True)
    guest_python = str(layout.venv / "bin" / "python")
    # PYTHONSAFEPATH: a working directory inside the checkout must not shadow the wheel.
    guest_env = {**os.environ, "QEMU_CPU": args.cpu, "PYTHONSAFEPATH": "1", "PYTHONDONTWRITEBYTECODE": "1",
                 "PYTHONNOUSERSITE": "1"}
    guest_env.pop("PYTHONPATH", None)
    host_env = {**os.environ, "PYTHONDONTWRITEBYTECODE": "1"}
    per_frame = 60  # seconds an emulated frame may take at most (1-3 s seen)
    raw_frames = list(range(args.raw_frames))
    summary: dict = {"cpu": args.cpu, "board": CPUS[args.cpu][0], "qemu": qemu, "qemu_from": how,
                     "workdir": str(layout.workdir), "commit": git_commit(repo), "frames": args.frames,
                     "raw_frames": raw_frames, "wheel": installed["wheel"], "commands": {}, "runs": {},
                     "timings_s": timings}
    # What is checked. cli: `edgecnn run --source demo` on both sides, detections compared
    # on every frame the emulated run saw; raw: outputs of the first demo frames; gate:
    # counts toward "agree" (the 480-pixel run is for the record: see RESIZED).
    # The bundled files are named, not left to `edgecnn run`'s per-device choice, so both
    # sides run the same file: the int8 default end to end, the fp32 one for raw outputs.
    # Each side runs its own package's copy (the emulated one from the installed wheel).
    from edgecnn.assets import RUNTIME_DEFAULT, RUNTIME_FP32

    def model_on(side: str, spec: dict) -> str:
        if not spec.get("bundled"):
            return spec["model"]
        package = layout.site / "edgecnn" if side == "emulated" else repo / "edgecnn"
        return str(package / "assets" / spec["bundled"])

    specs = [dict(name="litert", backend="litert", bundled=RUNTIME_DEFAULT.name, cli=True,
                  label=f"bundled {RUNTIME_DEFAULT.name}"),
             dict(name="litert-fp32", backend="litert", bundled=RUNTIME_FP32.name, label=f"bundled {RUNTIME_FP32.name}"),
             dict(name="onnxruntime", backend="onnxruntime", model=str(onnx_model), label=onnx_model.name, cli=True)]
    mark = time.perf_counter()
    int8 = make_int8_onnx(host_python, onnx_model, layout, host_env)
    timings["int8_model_s"] = round(time.perf_counter() - mark, 1)
    if int8.get("path"):
        specs.append(dict(name="onnxruntime-int8", backend="onnxruntime", model=int8["path"], label=int8["label"],
                          steps=int8["steps"]))
    else:
        summary["runs"]["onnxruntime-int8"] = {"checked": False, "reason": int8["reason"]}
    if raw_frames:
        specs.append(dict(name=f"litert-demo{RESIZED}", backend="litert", bundled=RUNTIME_FP32.name, gate=False,
                          demo=[RESIZED, DEMO[1], DEMO[2]], predict_raw=True,
                          label=f"bundled {RUNTIME_FP32.name} on {RESIZED}x{RESIZED} demo frames "
                                f"(a non-integer downscale to its 192x192 input)"))

    emulated_records = {}
    for spec in (s for s in specs if s.get("cli")):
        name, backend, model = spec["name"], spec["backend"], model_on("emulated", spec)
        json_out = out / "emulated" / f"{name}.jsonl"
        command = [str(layout.venv / "bin" / "edgecnn"), "run", model, "--source", "demo",
                   "--max-frames", str(args.frames), "--backend", backend, "--json", str(json_out)]
        summary["commands"][f"emulated_{name}"] = " ".join(["QEMU_CPU=" + args.cpu, *command])
        log(f"{args.cpu}: edgecnn run --backend {backend} ({spec['label']}), {args.frames} demo frames, emulated")
        result, seconds = timed(command, f"emulated edgecnn run --backend {backend}", 300 + per_frame * args.frames,
                                env=guest_env, cwd=out / "emulated")
        emulated_records[name] = read_records(str(json_out))
        summary["runs"][name] = {"model": spec["label"], "emulated_wall_s": seconds,
                                 "emulated_summary": summary_line(result.stderr),
                                 "emulated_frames": [r["frame"] for r in emulated_records[name]]}

    def jobs(side: str, predict: Dict[str, List[int]]) -> List[dict]:
        listed = []
        for spec in specs:
            name = spec["name"]
            job = {"name": name, "model": spec.get("model", ""), "bundled": spec.get("bundled"),
                   "backend": spec["backend"], "raw": raw_frames,
                   "raw_out": str(out / side / f"raw-{name}.npz"), "kernels": name in ("litert", "onnxruntime"),
                   "demo": spec.get("demo")}
            frames = predict.get(name) or (raw_frames if spec.get("predict_raw") else [])
            if frames:
                job.update(predict=frames, predict_out=str(out / side / f"reference-{name}.jsonl"))
            listed.append(job)
        return listed

    log(f"{args.cpu}: raw outputs of demo frames {raw_frames} and kernels, emulated")
    guest_report, timings["emulated_probe_s"] = run_probe(
        guest_python, jobs("emulated", {}), out / "emulated" / "probe.json", "emulated raw outputs and kernels",
        600 + 4 * per_frame * len(raw_frames), guest_env, out / "emulated")
    # The host: the same command lines, then the reference on every frame either side's run saw.
    host_records = {}
    for spec in (s for s in specs if s.get("cli")):
        name, backend, model = spec["name"], spec["backend"], model_on("host", spec)
        json_out = out / "host" / f"{name}.jsonl"
        command = [host_python, "-m", "edgecnn", "run", model, "--source", "demo",
                   "--max-frames", str(args.frames), "--backend", backend, "--json", str(json_out)]
        summary["commands"][f"host_{name}"] = " ".join(command)
        result, seconds = timed(command, f"host edgecnn run --backend {backend}", 600, env=host_env, cwd=repo)
        host_records[name] = read_records(str(json_out))
        summary["runs"][name].update(host_wall_s=seconds, host_summary=summary_line(result.stderr))
    predict = {name: sorted({r["frame"] for r in emulated_records[name]} | {r["frame"] for r in host_records[name]})
               for name in emulated_records}
    log("x86 reference on the same frames")
    host_report, timings["host_reference_s"] = run_probe(host_python, jobs("host", predict),
                                                         out / "host" / "probe.json", "host reference", 900,
                                                         host_env, repo)
    agree = True
    for spec in specs:
        name = spec["name"]
        entry = summary["runs"].setdefault(name, {"model": spec["label"]})
        checks = []
        if spec.get("cli"):
            reference = read_records(str(out / "host" / f"reference-{name}.jsonl"))
            entry["emulated_vs_x86"] = compare_records(reference, emulated_records[name])
            entry["x86_cli_vs_x86_reference"] = compare_records(reference, host_records[name])
            checks += [entry["emulated_vs_x86"]["agree"], entry["x86_cli_vs_x86_reference"]["agree"],
                       entry["emulated_vs_x86"]["frames_device_only"] == 0]
        if spec.get("predict_raw") and raw_frames:
            entry["detections_vs_x86"] = compare_records(
                *(read_records(str(out / side / f"reference-{name}.jsonl")) for side in ("host", "emulated")))
        if raw_frames:
            reference_raw = {"arrays": read_npz(host_python, out / "host" / f"raw-{name}.npz"),
                             "steps": spec.get("steps") or host_report["jobs"][name]["steps"],
                             "input_std": host_report["jobs"][name]["input_std"]}
            device_raw = {"arrays": read_npz(host_python, out / "emulated" / f"raw-{name}.npz")}
            entry["raw_outputs"] = {"outputs": host_report["jobs"][name]["outputs"],
                                    "quantization_steps": reference_raw["steps"],
                                    **compare_raw(reference_raw, device_raw)}
            checks.append(entry["raw_outputs"]["agree"])
        if spec.get("gate", True):
            entry["agree"] = all(checks)
            agree = agree and entry["agree"]
        else:
            entry["for_the_record"] = True
    summary["kernels"] = {"emulated": _kernels(guest_report), "x86": _kernels(host_report)}
    summary["versions"] = {"emulated": guest_report.get("versions"), "x86": host_report.get("versions"),
                           "emulated_python": guest_report.get("python"),
                           "emulated_machine": guest_report.get("machine")}
    if not guest_report.get("edgecnn_file", "").startswith(str(layout.site)):
        agree = False
        summary["problem"] = f"the emulated Python imported edgecnn from {guest_report.get('edgecnn_file')}"
    summary["agree"] = agree
    if args.pytest:
        summary["pytest"] = run_pytest(repo, guest_python, guest_env, args)
    timings["total_s"] = round(time.perf_counter() - started, 1)
    return summary


def make_int8_onnx(host_python: str, onnx_model: Path, layout: Layout, env: dict) -> dict:
    """An int8 (QDQ) copy of the ONNX detector made on the host by onnxruntime's static
    quantization, cached by the source's hash; its output quantization steps come from
    the DequantizeLinear nodes that produce the outputs. Needs onnx on the host."""
    digest = hashlib.sha256(onnx_model.read_bytes()).hexdigest()[:12]
    target = layout.workdir / "int8" / f"{onnx_model.stem}-int8-{digest}.onnx"
    steps_file = target.with_suffix(".steps.json")
    label = f"{onnx_model.stem} int8 QDQ (onnxruntime.quantization of {onnx_model.name})"
    if not (target.is_file() and steps_file.is_file()):
        target.parent.mkdir(parents=True, exist_ok=True)
        result = subprocess.run([host_python, "-c", INT8_MAKER, str(onnx_model), str(target), str(steps_file)],
                                capture_output=True, text=True, timeout=900, env=env)
        if result.returncode == 3:
            return {"reason": last_line(result.stdout)}
        if result.returncode != 0:
            raise Failed(f"making the int8 ONNX detector failed: {last_line(result.stderr)}")
    return {"path": str(target), "label": label, "steps": json.loads(steps_file.read_text())}


def _kernels(report: dict) -> dict:
    litert, onnx = report["jobs"].get("litert", {}), report["jobs"].get("onnxruntime", {})
    ops = litert.get("ops_after_invoke", {})
    messages = litert.get("native_messages", [])
    return {"litert_xnnpack": any("XNNPACK" in line for line in messages) or "DELEGATE" in ops,
            "litert_native_messages": messages, "litert_ops_after_invoke": ops,
            "litert_runtime_backend_ops": litert.get("runtime_backend_ops"),
            "onnxruntime_providers_session": onnx.get("providers_session"),
            "onnxruntime_providers_available": onnx.get("providers_available"),
            "cpu_features": litert.get("hwcaps"),
            "device_profile": {k: litert.get("device_profile", {}).get(k) for k in ("kind", "model", "machine",
                                                                                   "isa_flags")}}


def run_pytest(repo: Path, guest_python: str, guest_env: dict, args) -> dict:
    """The torch-free tests of a few files, in the emulated venv against the installed
    wheel (PYTHONSAFEPATH keeps the checkout's edgecnn/ off sys.path)."""
    command = [guest_python, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-m", "runtime",
               "-k", "not command_line", *PYTEST_FILES]
    log(f"{args.cpu}: pytest -m runtime -k 'not command_line' {' '.join(PYTEST_FILES)}, emulated")
    started = time.perf_counter()
    try:
        result = subprocess.run(command, capture_output=True, text=True, timeout=1800, env=guest_env, cwd=repo)
    except subprocess.TimeoutExpired:
        raise Failed("emulated pytest: timed out after 1800 s") from None
    seconds = round(time.perf_counter() - started, 1)
    failures = [line.split(" - ")[0] for line in result.stdout.splitlines() if line.startswith(("FAILED ", "ERROR "))]
    return {"command": "QEMU_CPU=" + args.cpu + " " + " ".join(command), "wall_s": seconds,
            "result": last_line(result.stdout), "failures": failures, "passed": result.returncode == 0}


# ------------------------------------------------------------------ command line

class ArgumentParser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # type: ignore[override]
        raise Missing(message)


def parse_args(argv: Optional[Sequence[str]]) -> argparse.Namespace:
    parser = ArgumentParser(prog="emulated_pi.py", description=__doc__.split("\n\n")[0])
    parser.add_argument("--workdir", default=DEFAULT_WORKDIR, help=f"cache for the sysroot and venv "
                        f"(default {DEFAULT_WORKDIR}; reused when already built)")
    parser.add_argument("--cpu", default="cortex-a76", choices=sorted(CPUS),
                        help="emulated CPU: cortex-a72 (Raspberry Pi 4) or cortex-a76 (Raspberry Pi 5)")
    parser.add_argument("--frames", type=int, default=30, help="demo frames per emulated run (default 30)")
    parser.add_argument("--raw-frames", type=int, default=3,
                        help="first demo frames whose raw model outputs are compared (default 3)")
    parser.add_argument("--pytest", action="store_true",
                        help=f"also run the torch-free tests of {', '.join(PYTEST_FILES)} emulated")
    parser.add_argument("--json", metavar="PATH", help="also write the JSON summary here")
    parser.add_argument("--compare", nargs=2, metavar=("REFERENCE", "DEVICE"),
                        help="only compare two `edgecnn run --json` outputs of the same source "
                             "(e.g. x86 and a real Pi)")
    parser.add_argument("--host-python", default=sys.executable,
                        help="Python with edgecnn[runtime] for the x86 reference (default: this one)")
    parser.add_argument("--repo", default=os.path.dirname(_HERE), help="the edgecnn checkout (default: this one)")
    parser.add_argument("--mirror", default=None, help="Debian mirror for the sysroot (default: the host apt's)")
    parser.add_argument("--tools-path", default=None,
                        help="search these directories (':'-separated) for qemu-aarch64-static, apt-get and "
                             "dpkg-deb instead of $PATH")
    args = parser.parse_args(argv)
    args.mirror = (args.mirror or debian_mirror()).rstrip("/")
    return args


def write_json(path: str, summary: dict) -> None:
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    staging = target.with_name(target.name + ".tmp")
    staging.write_text(json.dumps(summary, indent=2) + "\n")
    staging.replace(target)


def main(argv: Optional[Sequence[str]] = None) -> int:
    try:
        args = parse_args(argv)
        if args.compare:
            reference, device = (read_records(path) for path in args.compare)
            summary = {"reference": args.compare[0], "device": args.compare[1],
                       **compare_records(reference, device)}
        else:
            summary = emulate(args)
    except Missing as exc:
        print(f"emulated_pi.py: {exc}", file=sys.stderr)
        return 2
    except Failed as exc:
        print(f"emulated_pi.py: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("emulated_pi.py: interrupted", file=sys.stderr)
        return 1
    print(json.dumps(summary, indent=2))
    if args.json:
        try:
            write_json(args.json, summary)
        except OSError as exc:
            print(f"emulated_pi.py: {args.json}: cannot write: {exc.strerror or exc}", file=sys.stderr)
            return 2
    return 0 if summary.get("agree") and summary.get("pytest", {}).get("passed", True) else 1


if __name__ == "__main__":
    sys.exit(main())
