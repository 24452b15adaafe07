"""Is an int8 ONNX file faster than its fp32 source on this CPU, and which int8 form is?
onnxruntime inference alone (preprocessed blobs of real images), one session per
variant, alternating rounds, median round:
- fp32: the source file;
- qdq-exact: `edgecnn quantize`'s file (QDQ, per-channel int8 weights, uint8
  activations, the decode tail float) with the exact x64 kernel that edgecnn's sessions
  ask for on CPUs without VNNI (session.x64quantprecision=1);
- qdq-default: the same file on onnxruntime's default u8s8 kernel (VPMADDUBSW; can
  saturate its 16-bit pair sums without VNNI);
- qdq-7bit: quantized with reduce_range (7-bit weights: a pair sum is at most
  2 x 255 x 64 = 32640, so the default kernel cannot saturate) on the default kernel,
  and qdq-7bit-exact, the same file on the exact kernel (their outputs should match);
- qdq-u8u8: uint8 weights (onnxruntime's u8u8 kernel widens to 16 bits before
  multiplying, so it cannot saturate either) on the default kernel.
Each int8 variant's outputs are compared with fp32's on the same blobs (mean and max
absolute difference of the score rows, i.e. everything after the four box rows).

    python benchmarks/investigations/ort_int8_speed.py MODEL.onnx --calib DIR [--threads 2]
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("model")
    parser.add_argument("--calib", required=True, help="folder of calibration images")
    parser.add_argument("--images", type=int, default=64, help="calibration and timing images")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()

    import onnx
    import onnxruntime
    from onnxruntime.quantization import (CalibrationDataReader, CalibrationMethod, QuantFormat, QuantType,
                                          quantize_static)

    import edgecnn
    from converters.to_onnx import ImageReader, calibration_chunk
    from edgecnn.core.descriptors import quiet
    from edgecnn.compress.quantize.calibration import load_images
    from converters.quantize_onnx import decode_tail, prepare
    from edgecnn.core.preprocess import preprocess
    from edgecnn.core.task import get_task

    model = edgecnn.load(args.model, log=None)
    card = model.card
    images = load_images(args.calib, card, args.images, 0)
    fit = get_task(card.task).preprocessing(card)
    blobs = [preprocess(image, card, fit) for image in images]
    CalibrationDataReader.register(ImageReader)
    work = Path(tempfile.mkdtemp(prefix="int8-speed-"))
    prepared = str(work / "prepared.onnx")
    prepare(args.model, prepared)
    tail = decode_tail(onnx.load(prepared))
    files = {}
    for name, reduce_range, weight_type in (("qdq", False, QuantType.QInt8), ("qdq-7bit", True, QuantType.QInt8),
                                            ("qdq-u8u8", False, QuantType.QUInt8)):
        files[name] = str(work / f"{name}.onnx")
        with quiet():
            quantize_static(prepared, files[name], ImageReader(images, card, model.backend.input_name),
                            quant_format=QuantFormat.QDQ, per_channel=True, reduce_range=reduce_range,
                            weight_type=weight_type, activation_type=QuantType.QUInt8, nodes_to_exclude=tail,
                            calibrate_method=CalibrationMethod.Percentile,
                            extra_options={"CalibStridedMinMax": calibration_chunk(len(images))})

    def session(path: str, exact: bool):
        options = onnxruntime.SessionOptions()
        options.intra_op_num_threads = args.threads
        options.inter_op_num_threads = 1
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")  # idle sessions leave the cores alone
        if exact:
            options.add_session_config_entry("session.x64quantprecision", "1")
        return onnxruntime.InferenceSession(path, options, providers=["CPUExecutionProvider"])

    sessions = {"fp32": session(args.model, False), "qdq-exact": session(files["qdq"], True),
                "qdq-default": session(files["qdq"], False), "qdq-7bit": session(files["qdq-7bit"], False),
                "qdq-7bit-exact": session(files["qdq-7bit"], True), "qdq-u8u8": session(files["qdq-u8u8"], False)}
    input_name = model.backend.input_name
    outputs = {name: [s.run(None, {input_name: b})[0] for b in blobs] for name, s in sessions.items()}
    rounds = {name: [] for name in sessions}
    for _ in range(args.rounds):
        for name, s in sessions.items():
            started = time.perf_counter()
            for b in blobs:
                s.run(None, {input_name: b})
            rounds[name].append(1000 * (time.perf_counter() - started) / len(blobs))
    fp32_ms = float(np.median(rounds["fp32"]))
    report = {"model": os.path.basename(args.model), "threads": args.threads, "images": len(blobs),
              "onnxruntime": onnxruntime.__version__, "variants": {}}
    for name in sessions:
        ms = float(np.median(rounds[name]))
        row = {"ms": round(ms, 3), "speedup_vs_fp32": round(fp32_ms / ms, 3), "rounds_ms": [round(r, 3) for r in rounds[name]]}
        if name != "fp32":
            diff = np.abs(np.concatenate([(a - b).ravel() for a, b in
                                          zip(_scores(outputs[name]), _scores(outputs["fp32"]))]))
            row.update(score_mean_abs_diff=float(diff.mean()), score_max_abs_diff=float(diff.max()))
        report["variants"][name] = row
    for fast, exact in (("qdq-default", "qdq-exact"), ("qdq-7bit", "qdq-7bit-exact")):  # does the fast kernel saturate?
        report[f"{fast}_vs_exact_kernel_max_abs_diff"] = float(max(np.abs(a - b).max() for a, b in
                                                                zip(outputs[fast], outputs[exact])))
    print(json.dumps(report, indent=1))


def _scores(rows):
    """Everything after the four box rows of a YOLO table [1, 4 + nc, A] (or the whole output)."""
    return [r[:, 4:] if r.ndim == 3 and r.shape[1] < r.shape[2] else r for r in rows]


if __name__ == "__main__":
    main()
