"""An anchor-free single-shot detector on a MobileNet backbone.

Backbone features at strides 8, 16 and 32 (or, with tap="expansion", MobileNetV2's
wide 1x1 expansions at strides 8 and 16, as in SSDLite) feed a light FPN (1x1
laterals, nearest upsampling, a depthwise-separable 3x3 per level) and a head per
level, in the spirit of FCOS (Tian et al., 2019) with YOLOv8-style task-aligned
assignment in training.

Outputs, per level, two SEPARATE tensors (so int8 quantization gives each its own
scale and probabilities are never crushed under pixel coordinates):
  boxes_sN:  (N, H*W, 4) distances from each cell centre to the box sides (left, top,
             right, bottom) as fractions of the input size: sigmoid, 0..1
  scores_sN: (N, H*W, classes) class probabilities: sigmoid, 0..1
Decoding to corner boxes and NMS are done outside the graph, by the "ltrb-sigmoid"
head (edgecnn/runtime/heads/ltrb_sigmoid.py), which the evaluator and the device
runtime share.
"""
from __future__ import annotations

from typing import Dict, List, Tuple

import torch
from torch import nn
from torch.nn import functional as F

from edgecnn.models.blocks import ConvBNAct, init_weights, make_divisible
from edgecnn.runtime.heads.ltrb_sigmoid import DEFAULT_STRIDES

STRIDES = DEFAULT_STRIDES
DETECT_IMGSZ = 192  # default input side of a detector
NECK_CHANNELS = 128  # neck and head width at width <= 1 (cards written before it was recorded: 96)
DEFAULT_TAP = "block"  # where the neck taps a MobileNetV2: "block" outputs or SSDLite's "expansion" (--tap)


class DepthwiseSeparable(nn.Sequential):
    def __init__(self, in_channels: int, out_channels: int) -> None:
        super().__init__(ConvBNAct(in_channels, in_channels, 3, groups=in_channels, activation=nn.ReLU),
                         ConvBNAct(in_channels, out_channels, 1, activation=nn.ReLU))


def backbone_stages(features: nn.Sequential, in_channels: int) -> Tuple[List[int], List[int]]:
    """Indices of the last layer at strides 8, 16, 32 and their channel counts, found by
    running a probe image through the backbone (works for any MobileNet variant)."""
    probe = torch.zeros(1, in_channels, 64, 64)
    taps: Dict[int, Tuple[int, int]] = {}
    with torch.no_grad():
        x = probe
        for index, layer in enumerate(features):
            x = layer(x)
            stride = 64 // x.shape[-1]
            if stride in STRIDES:
                taps[stride] = (index, x.shape[1])
    if sorted(taps) != list(STRIDES):
        raise ValueError("backbone does not reach strides 8, 16 and 32")
    return [taps[s][0] for s in STRIDES], [taps[s][1] for s in STRIDES]


def tap_expansions(layers: List[nn.Module], taps: List[int],
                   channels: List[int]) -> Tuple[List[nn.Module], List[int], List[int]]:
    """Move the stride-8 and stride-16 taps from a block's narrow output to the wide 1x1
    expansion of the next, stride-2 block, as SSDLite does on MobileNetV2 (Sandler et al.,
    2018). The expansion is computed anyway; tapping it gives the neck 6x the channels
    (96 instead of 16 at stride 8 for width 0.5) at the cost of wider laterals only.
    A block with a stride-2 depthwise has no skip, so splitting it is exact."""
    from edgecnn.models.mobilenet_v2 import InvertedResidual

    layers, taps, channels = list(layers), list(taps), list(channels)
    for level in range(len(taps) - 1):
        following = layers[taps[level] + 1]
        if not isinstance(following, InvertedResidual) or len(following.conv) != 3:
            continue  # no expansion to tap (other backbones keep block outputs)
        expand, rest = following.conv[0], nn.Sequential(*following.conv[1:])
        layers[taps[level] + 1:taps[level] + 2] = [expand, rest]
        taps[level] += 1
        taps[level + 1:] = [t + 1 for t in taps[level + 1:]]
        channels[level] = expand.out_channels
    return layers, taps, channels


class LevelHead(nn.Module):
    """One level's head: a shared depthwise-separable stem, then class and box convs."""

    def __init__(self, channels: int, num_classes: int) -> None:
        super().__init__()
        self.stem = nn.Sequential(DepthwiseSeparable(channels, channels), DepthwiseSeparable(channels, channels))
        self.classes = nn.Conv2d(channels, num_classes, 1)
        self.box = nn.Conv2d(channels, 4, 1)

    def forward(self, x: torch.Tensor) -> Tuple[torch.Tensor, torch.Tensor]:
        x = self.stem(x)
        return self.box(x), self.classes(x)


class MobileNetDetector(nn.Module):
    def __init__(self, num_classes: int, backbone: str = "mobilenet_v2", width: float = 0.5,
                 in_channels: int = 3, neck_channels: int = NECK_CHANNELS, tap: str = DEFAULT_TAP) -> None:
        super().__init__()
        from edgecnn.models import WIDE_LAST_CONV, build_model, resolve_name

        classifier = build_model(backbone, num_classes=1, width=width, in_channels=in_channels)
        layers = list(classifier.features.children())
        if resolve_name(backbone) in WIDE_LAST_CONV:
            layers = layers[:-1]  # drop the wide final 1x1 conv that only feeds the classifier
        taps, channels = backbone_stages(nn.Sequential(*layers), in_channels)
        if tap == "expansion":
            layers, taps, channels = tap_expansions(layers, taps, channels)
        elif tap != "block":
            raise ValueError(f"unknown detector tap {tap!r}")
        self.stages = nn.ModuleList()
        start = 0
        for last in taps:  # each stage ends at its tap
            self.stages.append(nn.Sequential(*layers[start:last + 1]))
            start = last + 1
        neck = make_divisible(neck_channels * max(width, 1.0))
        self.laterals = nn.ModuleList(ConvBNAct(c, neck, 1, activation=nn.ReLU) for c in channels)
        self.smooth = nn.ModuleList(DepthwiseSeparable(neck, neck) for _ in STRIDES)
        self.heads = nn.ModuleList(LevelHead(neck, num_classes) for _ in STRIDES)
        self.num_classes = num_classes
        self.strides = STRIDES
        init_weights(self)
        for head, stride in zip(self.heads, STRIDES):
            for conv in (head.classes, head.box):  # small outputs at start, as in RetinaNet/FCOS
                nn.init.normal_(conv.weight, std=0.01)
            nn.init.constant_(head.classes.bias, -4.6)  # start with low scores: most cells are background
            # start with boxes about 4 cells wide (distances of 2 strides at a 192 input)
            nn.init.constant_(head.box.bias, float(torch.logit(torch.tensor(2.0 * stride / 192))))

    def forward(self, x: torch.Tensor):
        """Eval mode (export, inference): (boxes_s8, boxes_s16, boxes_s32, scores_s8,
        scores_s16, scores_s32). Training mode: the pre-sigmoid (box, class) logits per
        level, which the loss needs for numerical stability."""
        if self.training:
            return self.logits(x)
        box_maps, class_maps = self.level_maps(x)
        # sigmoid before the reshape, so an int8 graph computes it in int8 and its outputs stay int8
        return (*[flatten_cells(torch.sigmoid(m)) for m in box_maps],
                *[flatten_cells(torch.sigmoid(m)) for m in class_maps])

    def logits(self, x: torch.Tensor) -> Tuple[List[torch.Tensor], List[torch.Tensor]]:
        """Per level, the pre-sigmoid (N, cells, 4) box and (N, cells, classes) class logits,
        in either mode (a teacher in eval mode gives them for distillation)."""
        box_maps, class_maps = self.level_maps(x)
        return [flatten_cells(m) for m in box_maps], [flatten_cells(m) for m in class_maps]

    def level_maps(self, x: torch.Tensor) -> Tuple[List[torch.Tensor], List[torch.Tensor]]:
        """Pre-sigmoid (N, 4, H, W) box and (N, classes, H, W) class maps per level."""
        features = []
        for stage in self.stages:
            x = stage(x)
            features.append(x)
        laterals = [lateral(f) for lateral, f in zip(self.laterals, features)]
        for i in range(len(laterals) - 2, -1, -1):  # top-down: coarse context into fine levels
            laterals[i] = laterals[i] + F.interpolate(laterals[i + 1], size=laterals[i].shape[-2:], mode="nearest")
        boxes, scores = [], []
        for smooth, head, feature in zip(self.smooth, self.heads, laterals):
            box, cls = head(smooth(feature))
            boxes.append(box)
            scores.append(cls)
        return boxes, scores


def flatten_cells(maps: torch.Tensor) -> torch.Tensor:
    """(N, C, H, W) -> (N, H*W, C), written as permute+flatten: channel-last backends make
    it a plain reshape (flatten(2).transpose(1, 2) left two TRANSPOSE ops per output)."""
    return maps.permute(0, 2, 3, 1).flatten(1, 2)


