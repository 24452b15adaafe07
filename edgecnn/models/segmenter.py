"""Semantic segmentation on a MobileNet backbone, with one of two decoders.

- "lraspp": Lite Reduced Atrous Spatial Pyramid Pooling, the head of the MobileNetV3
  paper (Howard et al., 2019, section 6.4): the deepest features, kept at stride 16
  (the last stride-2 layer runs at stride 1, as the paper does with atrous
  convolution), pass a 1x1 conv whose output is gated per channel by a
  squeeze-excitation-like branch (global average pooling, 1x1 conv, sigmoid); the
  result, upsampled to stride 8, and the stride-8 features each give class scores,
  which are added.
- "unet": a small U-Net-style decoder (Ronneberger et al., 2015): from stride 16 down
  to stride 4, the coarser map is upsampled and concatenated with the 1x1-reduced
  skip features, then mixed by a depthwise-separable 3x3; class scores at stride 4.

Class scores are upsampled bilinearly to the input size. Any input size >= 64 works
(feature maps are resized to the skip's size, not by a fixed factor). The output in
eval mode is (N, H, W, classes) logits: channel-last, so a channel-last TFLite graph
ends without a TRANSPOSE. There is no softmax in the graph: the int8 quantizer leaves
a softmax float (a DEQUANTIZE and a float SOFTMAX at the end of the file), and the
label of a pixel is the argmax of its logits anyway; the runtime computes
probabilities only when a confidence is asked for. In training mode the output is
(N, classes, H, W), which the cross-entropy takes.
"""
from __future__ import annotations

from typing import Dict, List, Tuple

import torch
from torch import nn
from torch.nn import functional as F

from edgecnn.models.blocks import ConvBNAct, init_weights, make_divisible

DECODERS = ("lraspp", "unet")
DEFAULT_DECODER = "lraspp"
SEGMENT_IMGSZ = 192  # default input side of a segmenter
HEAD_CHANNELS = 128  # LR-ASPP's inner width in the paper; the U-Net decoder's widest level
MIN_INPUT = 64


def stride_taps(layers: List[nn.Module], in_channels: int) -> Dict[int, Tuple[int, int]]:
    """{stride: (index of the last layer at that stride, its channels)}, found by running
    a probe image through the layers (any MobileNet variant)."""
    taps: Dict[int, Tuple[int, int]] = {}
    with torch.no_grad():
        x = torch.zeros(1, in_channels, 64, 64)
        for index, layer in enumerate(layers):
            x = layer.eval()(x)
            taps[64 // x.shape[-1]] = (index, x.shape[1])
    return taps


def run_at_stride_one(layer: nn.Module) -> None:
    """Make a layer's stride-2 convolution stride 1 (same padding keeps the size): the
    deepest features stay at stride 16 instead of 32, as in DeepLab and LR-ASPP."""
    for module in layer.modules():
        if isinstance(module, nn.Conv2d) and module.stride == (2, 2):
            module.stride = (1, 1)
            return


def resize_to(x: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
    return F.interpolate(x, size=like.shape[-2:], mode="bilinear", align_corners=False)


class DepthwiseSeparable(nn.Sequential):
    def __init__(self, in_channels: int, out_channels: int) -> None:
        super().__init__(ConvBNAct(in_channels, in_channels, 3, groups=in_channels, activation=nn.ReLU),
                         ConvBNAct(in_channels, out_channels, 1, activation=nn.ReLU))


class LRASPP(nn.Module):
    """Figure 10 of the MobileNetV3 paper, with global pooling for the gate (any input size)."""

    def __init__(self, low_channels: int, high_channels: int, num_classes: int, inner: int) -> None:
        super().__init__()
        self.features = ConvBNAct(high_channels, inner, 1, activation=nn.ReLU)
        self.gate = nn.Conv2d(high_channels, inner, 1)
        self.high_classifier = nn.Conv2d(inner, num_classes, 1)
        self.low_classifier = nn.Conv2d(low_channels, num_classes, 1)

    def output_layers(self) -> List[nn.Module]:
        return [self.high_classifier, self.low_classifier]

    def feature_layers(self) -> List[nn.Module]:
        """The high branch's map (the low branch is the encoder's own stride-8 output)."""
        return [self.features]

    def forward(self, features: Dict[int, torch.Tensor]) -> torch.Tensor:
        low, high = features[8], features[16]
        x = self.features(high) * torch.sigmoid(self.gate(F.adaptive_avg_pool2d(high, 1)))
        return self.low_classifier(low) + resize_to(self.high_classifier(x), low)


class UNetDecoder(nn.Module):
    """Stride 16 -> 8 -> 4: upsample, concatenate the reduced skip, depthwise-separable mix."""

    def __init__(self, channels: Dict[int, int], num_classes: int, inner: int) -> None:
        super().__init__()
        widths = {16: inner, 8: make_divisible(inner / 2), 4: make_divisible(inner / 4)}
        self.top = ConvBNAct(channels[16], widths[16], 1, activation=nn.ReLU)
        self.skips = nn.ModuleDict({str(s): ConvBNAct(channels[s], widths[s], 1, activation=nn.ReLU) for s in (8, 4)})
        self.mix = nn.ModuleDict({str(s): DepthwiseSeparable(widths[s * 2] + widths[s], widths[s]) for s in (8, 4)})
        self.classifier = nn.Conv2d(widths[4], num_classes, 1)

    def output_layers(self) -> List[nn.Module]:
        return [self.classifier]

    def feature_layers(self) -> List[nn.Module]:
        return [self.mix["4"]]

    def forward(self, features: Dict[int, torch.Tensor]) -> torch.Tensor:
        x = self.top(features[16])
        for stride in (8, 4):
            skip = self.skips[str(stride)](features[stride])
            x = self.mix[str(stride)](torch.cat([resize_to(x, skip), skip], 1))
        return self.classifier(x)


class MobileNetSegmenter(nn.Module):
    def __init__(self, num_classes: int, backbone: str = "mobilenet_v3_small", width: float = 1.0,
                 in_channels: int = 3, decoder: str = DEFAULT_DECODER, head_channels: int = HEAD_CHANNELS) -> None:
        super().__init__()
        from edgecnn.models import WIDE_LAST_CONV, build_model, resolve_name

        if decoder not in DECODERS:
            raise ValueError(f"unknown decoder {decoder!r}; known: {', '.join(DECODERS)}")
        classifier = build_model(backbone, num_classes=1, width=width, in_channels=in_channels)
        layers = list(classifier.features.children())
        if resolve_name(backbone) in WIDE_LAST_CONV:
            layers = layers[:-1]  # the wide final 1x1 conv only feeds the classifier
        taps = stride_taps(layers, in_channels)
        if not {4, 8, 16, 32} <= set(taps):
            raise ValueError(f"backbone {backbone} does not reach strides 4 to 32")
        for layer in layers[taps[16][0] + 1:]:  # the stride-32 stage runs at stride 16
            run_at_stride_one(layer)
        wanted = (8, 16) if decoder == "lraspp" else (4, 8, 16)
        ends = [taps[s][0] for s in wanted[:-1]] + [len(layers) - 1]
        channels = {s: taps[s][1] for s in wanted[:-1]}
        channels[16] = stride_taps(layers, in_channels)[16][1]  # the deepest layer's, now at stride 16
        self.strides = wanted
        self.stages = nn.ModuleList()
        start = 0
        for end in ends:
            self.stages.append(nn.Sequential(*layers[start:end + 1]))
            start = end + 1
        inner = make_divisible(head_channels * max(width, 1.0))
        self.decoder = (LRASPP(channels[8], channels[16], num_classes, inner) if decoder == "lraspp"
                        else UNetDecoder(channels, num_classes, inner))
        self.num_classes = num_classes
        init_weights(self)

    def output_layers(self) -> List[nn.Module]:
        """The convolutions whose output channels are the classes (pruning keeps them whole)."""
        return self.decoder.output_layers()

    def feature_layers(self) -> List[nn.Module]:
        """The decoder's last maps before its class convolutions (feature distillation)."""
        return self.decoder.feature_layers()

    def logits(self, x: torch.Tensor) -> torch.Tensor:
        """(N, classes, H, W) class scores at the input's size."""
        features = {}
        y = x
        for stride, stage in zip(self.strides, self.stages):
            y = stage(y)
            features[stride] = y
        return F.interpolate(self.decoder(features), size=x.shape[-2:], mode="bilinear", align_corners=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        scores = self.logits(x)
        return scores if self.training else scores.permute(0, 2, 3, 1)
