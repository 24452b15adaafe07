"""Is a model converted by edgecnn as fast as a hand-made conversion of the same model?

MobileNetV2-1.0 at 224x224 is converted twice per format and precision:
- by edgecnn (`converters.convert.convert`, the code behind `edgecnn convert`), and
- by hand, with the library calls a practitioner would write: litert-torch with
  `to_channel_last_io` (fp32) and the PT2E recipe with a strict export (int8);
  `torch.onnx.export` (fp32) and onnxruntime `quantize_static` QDQ per-channel (int8).
Both files of a pair run on the same raw runtime (ai-edge-litert Interpreter or an
onnxruntime InferenceSession, 2 threads) in alternating rounds; the figure is the
median of per-round ratios edgecnn / reference (1.0 = as fast; the goal is <= 1.1).

The weights are random (the ratio is about the graph, not the accuracy), so the
edgecnn side runs with force=True: its parity report is still made, its gate is not
enforced.

    python benchmarks/convert_reference.py [--rounds 7] [--runs 200] [--threads 2]
"""
from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

FACTORY = """
from edgecnn.models import build_model


def make():
    return build_model("mobilenet_v2", num_classes=1000, width=1.0)
"""


def calibration_images(count: int):
    """Real images (digit tiles, resized by the preprocessing) for int8 calibration."""
    from edgecnn.data import load_classification

    return load_classification("digits", "train").take(range(0, 4000, 4000 // count)).images[:count]


def edgecnn_files(tmp: Path, images_dir: Path) -> dict:
    from converters.sources import CardFlags
    from converters.convert import ConvertOptions, convert

    factory = tmp / "mnv2.py"
    factory.write_text(FACTORY)
    reports = convert(f"{factory}:make", ConvertOptions(
        to="all", precision="both", out=str(tmp / "edgecnn"), data=str(images_dir), calib_images=64,
        parity_images=16, force=True, max_drop=100.0, flags=CardFlags(input_size="224")), log=lambda m: None)
    return {(r["format"], r["precision"]): r["file"] for r in reports}


def reference_files(tmp: Path, images) -> dict:
    """The same model converted by hand, following the libraries' documented recipes."""
    import litert_torch
    import torch
    from litert_torch.quantize import pt2e_quantizer
    from litert_torch.quantize.quant_config import QuantConfig
    from onnxruntime.quantization import CalibrationDataReader, QuantFormat, QuantType, quantize_static
    from onnxruntime.quantization.shape_inference import quant_pre_process
    from torchao.quantization.pt2e import move_exported_model_to_eval
    from torchao.quantization.pt2e.quantize_pt2e import convert_pt2e, prepare_pt2e

    from edgecnn.core.card import ModelCard
    from edgecnn.models import build_model
    from edgecnn.core.preprocess import preprocess_batch

    torch.manual_seed(0)
    model = build_model("mobilenet_v2", num_classes=1000, width=1.0).eval()
    card = ModelCard(task="classify", labels=[str(i) for i in range(1000)], input_size=(224, 224))
    nchw = preprocess_batch(images, card)
    nhwc = preprocess_batch(images, card.replace(layout="nhwc"))
    out = tmp / "reference"
    out.mkdir()
    files = {}

    files["onnx", "fp32"] = str(out / "fp32.onnx")
    torch.onnx.export(model, (torch.from_numpy(nchw[:1]),), files["onnx", "fp32"], dynamo=False, opset_version=17)
    pre = str(out / "pre.onnx")
    quant_pre_process(files["onnx", "fp32"], pre)

    class Reader(CalibrationDataReader):
        def __init__(self, input_name):
            self.items = iter([{input_name: nchw[i:i + 1]} for i in range(len(nchw))])

        def get_next(self):
            return next(self.items, None)

    import onnx

    reader = Reader(onnx.load(pre).graph.input[0].name)
    files["onnx", "int8"] = str(out / "int8.onnx")
    quantize_static(pre, files["onnx", "int8"], reader, quant_format=QuantFormat.QDQ, per_channel=True,
                    weight_type=QuantType.QInt8, activation_type=QuantType.QUInt8)

    channel_last = litert_torch.to_channel_last_io(model, args=[0])
    sample = (torch.from_numpy(nhwc[:1]),)
    files["tflite", "fp32"] = str(out / "fp32.tflite")
    litert_torch.convert(channel_last, sample).export(files["tflite", "fp32"])
    quantizer = pt2e_quantizer.PT2EQuantizer().set_global(
        pt2e_quantizer.get_symmetric_quantization_config(is_per_channel=True, is_dynamic=False))
    graph = torch.export.export(channel_last, sample, strict=True).module()
    prepared = prepare_pt2e(graph, quantizer)
    with torch.no_grad():
        for i in range(len(nhwc)):
            prepared(torch.from_numpy(nhwc[i:i + 1]))
    quantized = convert_pt2e(prepared, fold_quantize=False)
    move_exported_model_to_eval(quantized)
    files["tflite", "int8"] = str(out / "int8.tflite")
    litert_torch.convert(quantized, sample, quant_config=QuantConfig(pt2e_quantizer=quantizer)).export(
        files["tflite", "int8"])
    return files


class RawRunner:
    """The bare runtime, no edgecnn code: one input tensor of the file's own type."""

    def __init__(self, path: str, threads: int) -> None:
        if path.endswith(".tflite"):
            from ai_edge_litert.interpreter import Interpreter

            self.interpreter = Interpreter(model_path=path, num_threads=threads)
            self.interpreter.allocate_tensors()
            detail = self.interpreter.get_input_details()[0]
            self.index, self.x = detail["index"], np.zeros(detail["shape"], detail["dtype"])
            self.run = self._tflite
        else:
            import onnxruntime

            options = onnxruntime.SessionOptions()
            options.intra_op_num_threads = threads
            self.session = onnxruntime.InferenceSession(path, options, providers=["CPUExecutionProvider"])
            spec = self.session.get_inputs()[0]
            self.feed = {spec.name: np.zeros([1 if not isinstance(d, int) else d for d in spec.shape], np.float32)}
            self.run = self._onnx

    def _tflite(self):
        self.interpreter.set_tensor(self.index, self.x)
        self.interpreter.invoke()

    def _onnx(self):
        self.session.run(None, self.feed)

    def median_ms(self, runs: int) -> float:
        times = []
        for _ in range(runs):
            start = time.perf_counter()
            self.run()
            times.append(time.perf_counter() - start)
        return 1000 * statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--runs", type=int, default=200)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()

    import cv2

    from converters.parity import onnx_structure, tflite_structure
    from edgecnn.core.descriptors import quiet

    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        images = calibration_images(64)
        images_dir = tmp / "images"
        images_dir.mkdir()
        for i, image in enumerate(images):
            cv2.imwrite(str(images_dir / f"{i:03d}.png"), image)
        print("converting with edgecnn ...", flush=True)
        ours = edgecnn_files(tmp, images_dir)
        print("converting by hand ...", flush=True)
        with quiet():
            theirs = reference_files(tmp, images)
        print(f"\nMobileNetV2-1.0 224x224, {args.threads} threads, median of {args.runs} runs per round, "
              f"{args.rounds} alternating rounds\n")
        print("| runtime | precision | edgecnn ms | reference ms | ratio (median of rounds) | edgecnn ops | "
              "reference ops |")
        print("|---|---|---|---|---|---|---|")
        for fmt, precision in [("tflite", "fp32"), ("tflite", "int8"), ("onnx", "fp32"), ("onnx", "int8")]:
            runners = [RawRunner(ours[fmt, precision], args.threads), RawRunner(theirs[fmt, precision], args.threads)]
            for runner in runners:
                runner.median_ms(30)
            ratios, mine, ref = [], [], []
            for round_index in range(args.rounds):
                order = runners if round_index % 2 == 0 else runners[::-1]
                times = {id(r): r.median_ms(args.runs) for r in order}
                mine.append(times[id(runners[0])])
                ref.append(times[id(runners[1])])
                ratios.append(mine[-1] / ref[-1])
            structure = tflite_structure if fmt == "tflite" else onnx_structure
            ops = [sum(structure(path)[0].values()) for path in (ours[fmt, precision], theirs[fmt, precision])]
            runtime = "ai-edge-litert (NHWC)" if fmt == "tflite" else "onnxruntime"
            print(f"| {runtime} | {precision} | {statistics.median(mine):.2f} | {statistics.median(ref):.2f} | "
                  f"{statistics.median(ratios):.3f} | {ops[0]} | {ops[1]} |", flush=True)


if __name__ == "__main__":
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    main()
