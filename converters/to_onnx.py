"""PyTorch -> ONNX: fp32 through torch.onnx.export (TorchScript exporter, opset 17:
exact to 1e-6 and seconds, where the dynamo exporter takes 15-20 s), and int8 QDQ
through onnxruntime's static quantization (per-channel int8 weights, uint8
activations, calibrated on real images through the card's preprocessing)."""
from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Optional, Sequence

import numpy as np
import torch

from converters.card_embed import embed_onnx
from converters.errors import conversion_error
from edgecnn.core.descriptors import quiet
from edgecnn.core.atomic import atomic_path
from edgecnn.core.card import ModelCard
from edgecnn.core.preprocess import preprocess

OPSET = 17


def output_names(card: ModelCard, count: int) -> list:
    from edgecnn.core.task import get_task

    return get_task(card.task).output_names(card, count)


def export_fp32(model: torch.nn.Module, card: ModelCard, path: str, dynamic_batch: bool = False) -> None:
    """torch.onnx.export to `path` (NCHW as the card says; batch 1, or any batch with
    dynamic_batch: several cameras' frames then go through in one call)."""
    nchw = card.replace(layout="nchw")
    sample = torch.zeros(1, nchw.channels, *nchw.input_size)
    with torch.no_grad():
        out = model(sample)
    count = len(out) if isinstance(out, (tuple, list)) else 1
    try:
        with quiet():
            names = output_names(card, count)
            axes = {name: {0: "batch"} for name in ["input", *names]} if dynamic_batch else None
            torch.onnx.export(model, (sample,), path, dynamo=False, opset_version=OPSET,
                              input_names=["input"], output_names=names, dynamic_axes=axes)
    except Exception as exc:  # the exporter raises many types
        raise conversion_error("ONNX", exc, model, sample) from None


def module_of_node(name: str) -> str:
    """The module path of a node named by the TorchScript exporter's scopes:
    '/stages.0/stages.0.1/conv/conv.0/conv.0.0/Conv' -> 'stages.0.1.conv.0.0' (a scope
    inside a container repeats its parent's scope with the index appended)."""
    parts, previous = [], None
    for scope in name.strip("/").split("/")[:-1]:
        parts.append(scope[len(previous) + 1:] if previous is not None and scope.startswith(previous + ".") else scope)
        previous = scope
    return ".".join(parts)


# ops that only pass a float layer's output on: left float with it, so that a float
# layer feeding a model output (a detector's box conv, then its sigmoid and reshape)
# keeps that output float instead of rounding it to 8 bits
PASS_THROUGH = {"Sigmoid", "Relu", "Clip", "Reshape", "Transpose", "Flatten", "Squeeze", "Unsqueeze", "Identity"}


def nodes_of_layers(path: str, layers: Sequence[str]) -> list:
    """Names of the nodes of an exported model that belong to the given modules, and of
    the pass-through ops that follow them."""
    import onnx

    from edgecnn.compress.quantize.ptq import in_layers

    nodes = onnx.load(path, load_external_data=False).graph.node
    chosen = {node.name for node in nodes if in_layers(module_of_node(node.name), layers)}
    float_tensors = {output for node in nodes if node.name in chosen for output in node.output}
    for node in nodes:  # exported graphs are topologically sorted
        if node.op_type in PASS_THROUGH and node.input and node.input[0] in float_tensors:
            chosen.add(node.name)
            float_tensors.update(node.output)
    return [node.name for node in nodes if node.name in chosen]


# onnxruntime's histogram calibrators hold every activation of the images they are given
# at once (about 25 MB per 192x192 detector image), so they are fed this many at a time
CALIBRATION_CHUNK = 50


class ImageReader:
    """onnxruntime's CalibrationDataReader over real images, preprocessed as they are read
    and as the model's task and head expect (letterbox for YOLOs); set_range lets the
    calibrator take them a chunk at a time. Used for edgecnn's own ONNX files and for
    other toolkits' (converters.quantize_onnx)."""

    def __init__(self, images: Sequence[np.ndarray], card: ModelCard, input_name: str) -> None:
        from edgecnn.core.task import get_task

        self.images, self.card, self.input_name = list(images), card, input_name
        self.fit = get_task(card.task).preprocessing(card)
        self.set_range(0, len(self.images))

    def __len__(self) -> int:
        return len(self.images)

    def set_range(self, start_index: int, end_index: int) -> None:
        self.next_index, self.end_index = start_index, end_index

    def get_next(self):
        if self.next_index >= self.end_index:
            return None
        self.next_index += 1
        return {self.input_name: preprocess(self.images[self.next_index - 1], self.card, self.fit)}


def calibration_chunk(count: int) -> int:
    """The largest chunk of at most CALIBRATION_CHUNK images that divides `count`
    (onnxruntime's chunked calibration needs equal chunks)."""
    return max(size for size in range(1, min(count, CALIBRATION_CHUNK) + 1) if count % size == 0)


def quantize_int8(fp32_path: str, out_path: str, card: ModelCard, images: Sequence[np.ndarray],
                  per_channel: bool = True, float_layers: Sequence[str] = ()) -> None:
    """onnxruntime static QDQ; the nodes of `float_layers` (module names) stay float.
    Activation ranges span the central 99.999% of each activation's values over the
    calibration images (onnxruntime's percentile calibration cuts 0.0005% from each end),
    not their min/max: one outlier then cannot stretch a range that thousands of values
    share (the PT2E path's histogram observer is likewise outlier-robust). On the
    shapes detectors this cut onnxruntime's int8 drop (benchmarks/RESULTS.md)."""
    from onnxruntime.quantization import (CalibrationDataReader, CalibrationMethod, QuantFormat, QuantType,
                                          quantize_static)
    from onnxruntime.quantization.shape_inference import quant_pre_process

    CalibrationDataReader.register(ImageReader)
    with tempfile.TemporaryDirectory() as tmp, quiet():
        prepared = os.path.join(tmp, "prepared.onnx")
        quant_pre_process(fp32_path, prepared)
        excluded = nodes_of_layers(prepared, float_layers)
        quantize_static(prepared, out_path, ImageReader(images, card, "input"), quant_format=QuantFormat.QDQ,
                        per_channel=per_channel, weight_type=QuantType.QInt8, activation_type=QuantType.QUInt8,
                        nodes_to_exclude=excluded, calibrate_method=CalibrationMethod.Percentile,
                        # despite its name, the option feeds any calibrator a chunk at a time
                        extra_options={"CalibStridedMinMax": calibration_chunk(len(images))})


def convert(model: torch.nn.Module, card: ModelCard, out_path: str, precision: str = "fp32",
            calibration_images: Optional[Sequence[np.ndarray]] = None, per_channel: bool = True,
            float_layers: Sequence[str] = (), dynamic_batch: bool = False) -> ModelCard:
    """Write `out_path` atomically with the card embedded; returns that card."""
    import onnx

    card = card.replace(layout="nchw", precision=precision)
    with tempfile.TemporaryDirectory() as tmp:
        fp32_path = os.path.join(tmp, "fp32.onnx")
        model.eval()
        export_fp32(model, card, fp32_path, dynamic_batch)
        path = fp32_path
        if precision == "int8":
            path = os.path.join(tmp, "int8.onnx")
            quantize_int8(fp32_path, path, card, calibration_images, per_channel, float_layers)
            card = card.replace(quantization={"scheme": "onnxruntime-static-qdq", "weights":
                                              "per-channel int8" if per_channel else "per-tensor int8",
                                              "activations": "uint8, 99.999th-percentile ranges",
                                              "calibration_images": len(calibration_images),
                                              "float_layers": list(float_layers)})
        proto = onnx.load(path)
        embed_onnx(proto, card)
        with atomic_path(Path(out_path)) as target:
            onnx.save(proto, str(target))
    return card
