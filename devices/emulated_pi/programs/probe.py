"""Raw model outputs, reference detections and the kernels that load, in one process.

Run with one JSON argument by the emulated Python and by the host Python, so that both
sides compute the same things with the same code: the emulated one against the
installed wheel, the host one against the checkout. It uses the runtime only (numpy,
OpenCV, LiteRT, onnxruntime; no torch). The argument: {"demo": [size, seed, fps],
"report": PATH, "jobs": [...]}; each job names a model (or a bundled file of this
side's package) and a backend, and asks for any of:

- "predict": frame indices whose records are written, one JSON line each, to "predict_out";
- "raw": frame indices whose preprocessed inputs and raw outputs go to the .npz "raw_out";
- "kernels": the execution providers, LiteRT's native messages and ops, the CPU's
  features and edgecnn's device profile.
"""
import collections
import ctypes
import json
import os
import platform
import sys
import tempfile
import time

import numpy as np

import edgecnn
from edgecnn.assets import ASSETS
from edgecnn.core.preprocess import make_preprocessor
from edgecnn.core.task import get_task
from edgecnn.runtime.backends import open_backend
from edgecnn.runtime.card_options import CardOptions, resolve_card
from edgecnn.runtime.demo import DemoCapture

HWCAP_NAMES = ("fp asimd evtstrm aes pmull sha1 sha2 crc32 atomics fphp asimdhp cpuid asimdrdm jscvt fcma lrcpc "
               "dcpop sha3 sm3 sm4 asimddp sha512 sve asimdfhm dit uscat ilrcpc flagm ssbs sb paca pacg").split()
HWCAP2_NAMES = {0: "dcpodp", 1: "sve2", 13: "i8mm", 14: "bf16", 15: "dgh", 16: "rng", 17: "bti"}
AT_HWCAP, AT_HWCAP2 = 16, 26


def hwcaps():
    """aarch64 AT_HWCAP/AT_HWCAP2 feature names: what the (emulated) CPU offers."""
    if platform.machine() != "aarch64":
        return None
    libc = ctypes.CDLL(None)
    libc.getauxval.restype = ctypes.c_ulong
    libc.getauxval.argtypes = [ctypes.c_ulong]
    first, second = libc.getauxval(AT_HWCAP), libc.getauxval(AT_HWCAP2)
    return ([name for bit, name in enumerate(HWCAP_NAMES) if first >> bit & 1]
            + [name for bit, name in HWCAP2_NAMES.items() if second >> bit & 1])


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
        return value, [line for line in sink.read().decode(errors="replace").splitlines() if line.strip()]


def library_versions():
    try:
        from importlib.metadata import version
        return {name: version(name) for name in ("numpy", "opencv-python", "onnxruntime", "ai-edge-litert")}
    except Exception as exc:
        return {"error": str(exc)}


def write_records(job, scenes):
    model = edgecnn.load(job["model"], backend=job["backend"])
    with open(job["predict_out"], "w") as handle:
        for t in job["predict"]:
            handle.write(json.dumps(model.predict(scenes.scene(t), frame_index=t).to_dict()) + "\n")


def dump_raw(job, scenes, entry):
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


def describe_kernels(job, entry):
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


def main(argument):
    args = json.loads(argument)
    demo = DemoCapture(int(args["demo"][0]), int(args["demo"][1]), float(args["demo"][2]))
    report = {"machine": platform.machine(), "python": platform.python_version(),
              "edgecnn_file": edgecnn.__file__, "jobs": {}, "versions": library_versions()}
    for job in args["jobs"]:
        started, entry = time.perf_counter(), {}
        job["model"] = job["model"] or str(ASSETS / job["bundled"])  # a bundled file of this side's package
        scenes = DemoCapture(*job["demo"]) if job.get("demo") else demo
        if job.get("predict"):
            write_records(job, scenes)
        if job.get("raw"):
            dump_raw(job, scenes, entry)
        if job.get("kernels"):
            describe_kernels(job, entry)
        entry["seconds"] = round(time.perf_counter() - started, 2)
        report["jobs"][job["name"]] = entry
    with open(args["report"], "w") as handle:
        json.dump(report, handle)


if __name__ == "__main__":
    main(sys.argv[1])
