"""MobileNetV3 Small and Large (Howard et al., 2019, "Searching for MobileNetV3"):
inverted residuals with squeeze-excitation and hard-swish, configured per Tables 1-2.

The minimalistic variants (the TensorFlow model garden's MobileNetV3 "minimalistic"
models) keep the same channels and strides but use 3x3 depthwise kernels, no
squeeze-excitation and ReLU throughout. They exist for integer accelerators: LiteRT's
XNNPACK delegate does not take int8 HARD_SWISH, so a full-int8 MobileNetV3 file runs
as 18 delegate partitions with LiteRT's own kernels between them, where a minimalistic
one is a single partition."""
from __future__ import annotations

from typing import List, NamedTuple, Type

import torch
from torch import nn

from edgecnn.models.blocks import (ConvBNAct, SqueezeExcitation, global_pool, init_weights,
                                   make_divisible)


class BlockConfig(NamedTuple):
    kernel: int
    expanded: int
    out: int
    use_se: bool
    activation: str  # "RE" (ReLU) or "HS" (hard-swish)
    stride: int


SMALL = [BlockConfig(3, 16, 16, True, "RE", 2), BlockConfig(3, 72, 24, False, "RE", 2),
         BlockConfig(3, 88, 24, False, "RE", 1), BlockConfig(5, 96, 40, True, "HS", 2),
         BlockConfig(5, 240, 40, True, "HS", 1), BlockConfig(5, 240, 40, True, "HS", 1),
         BlockConfig(5, 120, 48, True, "HS", 1), BlockConfig(5, 144, 48, True, "HS", 1),
         BlockConfig(5, 288, 96, True, "HS", 2), BlockConfig(5, 576, 96, True, "HS", 1),
         BlockConfig(5, 576, 96, True, "HS", 1)]
LARGE = [BlockConfig(3, 16, 16, False, "RE", 1), BlockConfig(3, 64, 24, False, "RE", 2),
         BlockConfig(3, 72, 24, False, "RE", 1), BlockConfig(5, 72, 40, True, "RE", 2),
         BlockConfig(5, 120, 40, True, "RE", 1), BlockConfig(5, 120, 40, True, "RE", 1),
         BlockConfig(3, 240, 80, False, "HS", 2), BlockConfig(3, 200, 80, False, "HS", 1),
         BlockConfig(3, 184, 80, False, "HS", 1), BlockConfig(3, 184, 80, False, "HS", 1),
         BlockConfig(3, 480, 112, True, "HS", 1), BlockConfig(3, 672, 112, True, "HS", 1),
         BlockConfig(5, 672, 160, True, "HS", 2), BlockConfig(5, 960, 160, True, "HS", 1),
         BlockConfig(5, 960, 160, True, "HS", 1)]


class InvertedResidualSE(nn.Module):
    """Expand -> depthwise -> (squeeze-excitation) -> project, with a skip when shapes match."""

    def __init__(self, in_channels: int, config: BlockConfig, width: float) -> None:
        super().__init__()
        expanded = make_divisible(config.expanded * width)
        out_channels = make_divisible(config.out * width)
        activation = nn.Hardswish if config.activation == "HS" else nn.ReLU
        self.use_residual = config.stride == 1 and in_channels == out_channels
        layers: List[nn.Module] = []
        if expanded != in_channels:
            layers.append(ConvBNAct(in_channels, expanded, 1, activation=activation))
        layers.append(ConvBNAct(expanded, expanded, config.kernel, config.stride, groups=expanded,
                                activation=activation))
        if config.use_se:
            layers.append(SqueezeExcitation(expanded, make_divisible(expanded // 4)))
        layers.append(ConvBNAct(expanded, out_channels, 1, activation=None))
        self.block = nn.Sequential(*layers)
        self.out_channels = out_channels

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.block(x) if self.use_residual else self.block(x)


def minimalistic(configs: List[BlockConfig]) -> List[BlockConfig]:
    """3x3 depthwise kernels, no squeeze-excitation, ReLU: the minimalistic blocks."""
    return [config._replace(kernel=3, use_se=False, activation="RE") for config in configs]


class MobileNetV3(nn.Module):
    def __init__(self, configs: List[BlockConfig], last_channels: int, num_classes: int = 1000,
                 width: float = 1.0, in_channels: int = 3, dropout: float = 0.2,
                 activation: Type[nn.Module] = nn.Hardswish) -> None:
        """`activation`: of the stem, the last 1x1 conv and the classifier (ReLU in the
        minimalistic variants)."""
        super().__init__()
        channels = make_divisible(16 * width)
        layers: List[nn.Module] = [ConvBNAct(in_channels, channels, 3, 2, activation=activation)]
        for config in configs:
            block = InvertedResidualSE(channels, config, width)
            layers.append(block)
            channels = block.out_channels
        last_conv = 6 * channels
        layers.append(ConvBNAct(channels, last_conv, 1, activation=activation))
        self.features = nn.Sequential(*layers)
        self.out_channels = last_conv
        hidden = make_divisible(last_channels * width)
        self.classifier = nn.Sequential(
            nn.Linear(last_conv, hidden), activation(inplace=True), nn.Dropout(dropout),
            nn.Linear(hidden, num_classes))
        init_weights(self)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(global_pool(self.features(x)))


def mobilenet_v3_small(num_classes: int = 1000, width: float = 1.0, in_channels: int = 3,
                       dropout: float = 0.2) -> MobileNetV3:
    return MobileNetV3(SMALL, 1024, num_classes, width, in_channels, dropout)


def mobilenet_v3_large(num_classes: int = 1000, width: float = 1.0, in_channels: int = 3,
                       dropout: float = 0.2) -> MobileNetV3:
    return MobileNetV3(LARGE, 1280, num_classes, width, in_channels, dropout)


def mobilenet_v3_small_minimal(num_classes: int = 1000, width: float = 1.0, in_channels: int = 3,
                               dropout: float = 0.2) -> MobileNetV3:
    return MobileNetV3(minimalistic(SMALL), 1024, num_classes, width, in_channels, dropout, nn.ReLU)


def mobilenet_v3_large_minimal(num_classes: int = 1000, width: float = 1.0, in_channels: int = 3,
                               dropout: float = 0.2) -> MobileNetV3:
    return MobileNetV3(minimalistic(LARGE), 1280, num_classes, width, in_channels, dropout, nn.ReLU)
