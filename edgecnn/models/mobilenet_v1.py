"""MobileNetV1 (Howard et al., 2017, "MobileNets: Efficient Convolutional Neural
Networks for Mobile Vision Applications"): a stem conv and 13 depthwise-separable blocks."""
from __future__ import annotations

from torch import nn

from edgecnn.models.blocks import ConvBNAct, PooledClassifier, make_divisible

# (output channels, stride) of each depthwise-separable block, as in Table 1 of the paper.
BLOCKS = [(64, 1), (128, 2), (128, 1), (256, 2), (256, 1), (512, 2),
          (512, 1), (512, 1), (512, 1), (512, 1), (512, 1), (1024, 2), (1024, 1)]


class DepthwiseSeparable(nn.Sequential):
    """3x3 depthwise conv then 1x1 pointwise conv, each with BN and ReLU."""

    def __init__(self, in_channels: int, out_channels: int, stride: int) -> None:
        super().__init__(
            ConvBNAct(in_channels, in_channels, 3, stride, groups=in_channels, activation=nn.ReLU),
            ConvBNAct(in_channels, out_channels, 1, activation=nn.ReLU),
        )


class MobileNetV1(PooledClassifier):
    def __init__(self, num_classes: int = 1000, width: float = 1.0, in_channels: int = 3,
                 dropout: float = 0.2) -> None:
        super().__init__()
        channels = make_divisible(32 * width)
        layers = [ConvBNAct(in_channels, channels, 3, 2, activation=nn.ReLU)]
        for out_channels, stride in BLOCKS:
            out_channels = make_divisible(out_channels * width)
            layers.append(DepthwiseSeparable(channels, out_channels, stride))
            channels = out_channels
        self.finish(layers, channels, num_classes, dropout)
