"""Writes tests/data/models/float16_conv.tflite: a TFLite file laid out as TensorFlow's
float16 post-training quantization writes them (MediaPipe's and Ultralytics'
`*_float16.tflite`): every weight and bias is a FLOAT16 constant that a DEQUANTIZE op
turns into float32 before the float32 CONV_2D and FULLY_CONNECTED that use it. Written
with the TFLite schema ai-edge-litert ships (no TensorFlow, no torch):

    python tests/make_float16_tflite.py

    image float32 (1, 16, 16, 3) -> CONV_2D 3x3 x8 + ReLU -> MEAN over h, w -> FULLY_CONNECTED -> (1, 4)

`float16_reference()` computes the same network with numpy from the float16 weights.
"""
from __future__ import annotations

import sys
from pathlib import Path
from typing import Dict

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from foreign_models import _Graph, _tflite_builder  # noqa: E402

OUT = Path(__file__).resolve().parent / "data" / "models" / "float16_conv.tflite"
INPUT_SHAPE = (1, 16, 16, 3)


def float16_weights() -> Dict[str, np.ndarray]:
    rng = np.random.default_rng(16)
    return {"conv": rng.normal(0, 0.3, (8, 3, 3, 3)).astype(np.float16),  # OHWI
            "conv_bias": rng.normal(0, 0.1, 8).astype(np.float16),
            "dense": rng.normal(0, 0.5, (4, 8)).astype(np.float16),
            "dense_bias": rng.normal(0, 0.1, 4).astype(np.float16)}


def float16_reference(image: np.ndarray) -> np.ndarray:
    """The network in numpy on a (1, 16, 16, 3) float32 image (SAME padding, stride 1)."""
    weights = {k: v.astype(np.float32) for k, v in float16_weights().items()}
    padded = np.pad(image[0], ((1, 1), (1, 1), (0, 0)))
    height, width = image.shape[1:3]
    patches = np.stack([padded[y:y + 3, x:x + 3] for y in range(height) for x in range(width)])
    conv = np.einsum("phwc,ohwc->po", patches, weights["conv"]) + weights["conv_bias"]
    pooled = np.maximum(conv, 0).mean(axis=0)
    return (weights["dense"] @ pooled + weights["dense_bias"])[None].astype(np.float32)


def write(out: Path = OUT) -> Path:
    _, s = _tflite_builder()
    graph = _Graph(s)
    weights = float16_weights()

    def half_constant(name: str) -> int:
        stored = graph.tensor(weights[name].shape, s.TensorType.FLOAT16, weights[name], name=f"{name}_fp16")
        full = graph.tensor(weights[name].shape, name=name)
        graph.op(s.BuiltinOperator.DEQUANTIZE, [stored], [full])
        return full

    image = graph.tensor(INPUT_SHAPE, name="image")
    conv_options = s.Conv2DOptionsT()
    conv_options.padding, conv_options.strideH, conv_options.strideW = s.Padding.SAME, 1, 1
    conv_options.fusedActivationFunction = s.ActivationFunctionType.RELU
    features = graph.tensor((1, 16, 16, 8), name="features")
    graph.op(s.BuiltinOperator.CONV_2D, [image, half_constant("conv"), half_constant("conv_bias")], [features],
             s.BuiltinOptions.Conv2DOptions, conv_options)
    axes = graph.tensor([2], s.TensorType.INT32, np.array([1, 2], np.int32), name="axes")
    pooled = graph.tensor((1, 8), name="pooled")
    reducer = s.ReducerOptionsT()
    reducer.keepDims = False
    graph.op(s.BuiltinOperator.MEAN, [features, axes], [pooled], s.BuiltinOptions.ReducerOptions, reducer)
    logits = graph.tensor((1, 4), name="logits")
    graph.op(s.BuiltinOperator.FULLY_CONNECTED, [pooled, half_constant("dense"), half_constant("dense_bias")],
             [logits], s.BuiltinOptions.FullyConnectedOptions, s.FullyConnectedOptionsT())
    return graph.write(out, [image], [logits])


if __name__ == "__main__":
    written = write(Path(sys.argv[1]) if len(sys.argv) > 1 else OUT)
    print(f"wrote {written} ({written.stat().st_size} bytes)")
