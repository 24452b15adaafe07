"""How much coarser litert-torch's own quantizer makes the output of each conv + ReLU6
pair than edgecnn's annotation (one quantization after the ReLU6): the ratio of the two
int8 scales per pair, on one checkpoint and its calibration images.

    python benchmarks/investigations/relu6_scales.py edgecnn/assets/shapes_detector.pt shapes
    python benchmarks/investigations/relu6_scales.py edgecnn/assets/digits_mobilenet_v2.pt digits
"""
from __future__ import annotations

import argparse
from unittest import mock

import numpy as np

from edgecnn.compress.quantize import calibration, ptq
from edgecnn.training.checkpoint import load_model


def relu6_output_scales(model, card, images) -> np.ndarray:
    graph = ptq.quantize_model(model, card, images).module.graph
    return np.array([float(next(iter(node.users)).args[1]) for node in graph.nodes if "hardtanh" in str(node.target)])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("checkpoint")
    parser.add_argument("calib", help="calibration images, as `edgecnn quantize --calib`")
    parser.add_argument("--calib-images", type=int, default=64)
    args = parser.parse_args()
    model, card, _ = load_model(args.checkpoint)
    model.eval()
    images = calibration.load_images(args.calib, card, args.calib_images)
    fused = relu6_output_scales(model, card, images)
    with mock.patch.object(ptq, "annotate_conv_relu6", lambda *a, **k: None):  # litert-torch's annotation
        shared = relu6_output_scales(model, card, images)
    ratio = shared / fused
    print(f"{len(ratio)} conv + ReLU6 pairs: litert-torch's steps are {np.median(ratio):.2f}x coarser "
          f"(median; {ratio.min():.2f}-{ratio.max():.2f})")


if __name__ == "__main__":
    main()
