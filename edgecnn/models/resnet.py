"""A small ResNet with the ResNet-18 layout (He et al., 2016, "Deep Residual Learning
for Image Recognition"): four stages of two basic blocks, with a width multiplier."""
from __future__ import annotations

import torch
from torch import nn

from edgecnn.models.blocks import ConvBNAct, PooledClassifier, make_divisible


class BasicBlock(nn.Module):
    """Two 3x3 convs with an identity (or 1x1 projection) shortcut."""

    def __init__(self, in_channels: int, out_channels: int, stride: int) -> None:
        super().__init__()
        self.conv1 = ConvBNAct(in_channels, out_channels, 3, stride, activation=nn.ReLU)
        self.conv2 = ConvBNAct(out_channels, out_channels, 3, activation=None)
        self.shortcut = (nn.Identity() if stride == 1 and in_channels == out_channels
                         else ConvBNAct(in_channels, out_channels, 1, stride, activation=None))
        self.relu = nn.ReLU(inplace=True)
        self.out_channels = out_channels

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.relu(self.conv2(self.conv1(x)) + self.shortcut(x))


class ResNet(PooledClassifier):
    def __init__(self, num_classes: int = 1000, width: float = 1.0, in_channels: int = 3,
                 dropout: float = 0.0, blocks_per_stage=(2, 2, 2, 2)) -> None:
        super().__init__()
        channels = make_divisible(64 * width)
        layers = [ConvBNAct(in_channels, channels, 7, 2, activation=nn.ReLU),
                  nn.MaxPool2d(3, 2, 1)]
        for stage, repeats in enumerate(blocks_per_stage):
            out_channels = make_divisible(64 * (2 ** stage) * width)
            for i in range(repeats):
                layers.append(BasicBlock(channels, out_channels, 2 if (i == 0 and stage > 0) else 1))
                channels = out_channels
        self.finish(layers, channels, num_classes, dropout)


def resnet18(num_classes: int = 1000, width: float = 1.0, in_channels: int = 3,
             dropout: float = 0.0) -> ResNet:
    return ResNet(num_classes, width, in_channels, dropout, (2, 2, 2, 2))
