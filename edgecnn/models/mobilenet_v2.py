"""MobileNetV2 (Sandler et al., 2018, "MobileNetV2: Inverted Residuals and Linear
Bottlenecks"): inverted residual blocks with linear bottlenecks."""
from __future__ import annotations

import torch
from torch import nn

from edgecnn.models.blocks import ConvBNAct, PooledClassifier, make_divisible

# expansion t, output channels c, repeats n, first stride s (Table 2 of the paper)
STAGES = [(1, 16, 1, 1), (6, 24, 2, 2), (6, 32, 3, 2), (6, 64, 4, 2),
          (6, 96, 3, 1), (6, 160, 3, 2), (6, 320, 1, 1)]


class InvertedResidual(nn.Module):
    """1x1 expand -> 3x3 depthwise -> 1x1 linear project, with a skip when shapes match."""

    def __init__(self, in_channels: int, out_channels: int, stride: int, expand_ratio: int) -> None:
        super().__init__()
        hidden = int(round(in_channels * expand_ratio))
        self.use_residual = stride == 1 and in_channels == out_channels
        layers = []
        if expand_ratio != 1:
            layers.append(ConvBNAct(in_channels, hidden, 1))
        layers += [
            ConvBNAct(hidden, hidden, 3, stride, groups=hidden),
            ConvBNAct(hidden, out_channels, 1, activation=None),
        ]
        self.conv = nn.Sequential(*layers)
        self.out_channels = out_channels

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.conv(x) if self.use_residual else self.conv(x)


class MobileNetV2(PooledClassifier):
    def __init__(self, num_classes: int = 1000, width: float = 1.0, in_channels: int = 3,
                 dropout: float = 0.2) -> None:
        super().__init__()
        channels = make_divisible(32 * width)
        last_channels = make_divisible(1280 * max(1.0, width))
        layers = [ConvBNAct(in_channels, channels, 3, 2)]
        for expand, out_channels, repeats, stride in STAGES:
            out_channels = make_divisible(out_channels * width)
            for i in range(repeats):
                layers.append(InvertedResidual(channels, out_channels, stride if i == 0 else 1, expand))
                channels = out_channels
        layers.append(ConvBNAct(channels, last_channels, 1))
        self.finish(layers, last_channels, num_classes, dropout)
