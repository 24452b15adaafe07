"""An int8 (QDQ) copy of an ONNX detector and each output's quantization step.

Run by the host Python (python int8_onnx.py SOURCE TARGET STEPS_JSON): the emulated
onnxruntime is checked on an int8 file as LiteRT is on the bundled int8 .tflite, and
only the host can make one (quantization needs onnx, which the device side never
installs). Calibrated on demo frames of another seed than the compared ones. Exits 3
with one line on stdout when this Python cannot quantize (no onnx).
"""
import json
import os
import shutil
import sys
import tempfile

from edgecnn.core.preprocess import make_preprocessor
from edgecnn.core.task import get_task
from edgecnn.runtime.backends import open_backend
from edgecnn.runtime.card_options import CardOptions, resolve_card
from edgecnn.runtime.demo import DemoCapture

CALIBRATION_DEMO = (384, 1, 30.0)  # size, seed, fps: seed 1, where the checks use seed 0
CALIBRATION_FRAMES = range(0, 160, 10)


def output_steps(model, numpy_helper):
    """The scale of the DequantizeLinear node producing each graph output (None if another node does)."""
    producers = {output: node for node in model.graph.node for output in node.output}
    initializers = {i.name: numpy_helper.to_array(i) for i in model.graph.initializer}
    steps = []
    for output in model.graph.output:
        node = producers.get(output.name)
        scale = initializers.get(node.input[1]) if node is not None and node.op_type == "DequantizeLinear" else None
        steps.append(float(scale.reshape(-1)[0]) if scale is not None and scale.size == 1 else None)
    return steps


def main(source, target, steps_path):
    try:
        import onnx
        from onnx import numpy_helper
        from onnxruntime.quantization import (CalibrationDataReader, CalibrationMethod, QuantFormat, QuantType,
                                              quantize_static)
        from onnxruntime.quantization.shape_inference import quant_pre_process
    except ImportError as exc:
        print("the host Python cannot quantize ONNX files (%s; pip install onnx)" % exc)
        return 3
    backend = open_backend(source, "onnxruntime")
    card = resolve_card(backend.card, CardOptions(), backend.input_shape, os.path.basename(source))
    prepare = make_preprocessor(card, get_task(card.task).preprocessing(card))
    demo = DemoCapture(*CALIBRATION_DEMO)
    blobs = [prepare(demo.scene(t)) for t in CALIBRATION_FRAMES]

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
        steps = output_steps(onnx.load(staged), numpy_helper)
        shutil.move(staged, target)
    with open(steps_path, "w") as handle:
        json.dump(steps, handle)
    return 0


if __name__ == "__main__":
    sys.exit(main(*sys.argv[1:4]))
