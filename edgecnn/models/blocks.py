"""Small named building blocks shared by the architectures in this package.

They are written so that every op quantizes to int8 end to end after export:
the squeeze-excitation gate is a sigmoid (a hard-sigmoid decomposes into a float
island in TFLite), and global pooling is adaptive_avg_pool2d (a `mean` over H, W
adds a TRANSPOSE in a channel-last graph).
"""
from __future__ import annotations

from typing import Optional, Type

import torch
from torch import nn
from torch.nn import functional as F


def make_divisible(value: float, divisor: int = 8, min_value: Optional[int] = None) -> int:
    """Round a channel count to a multiple of `divisor`, never dropping below 90% of it.

    From the TensorFlow MobileNet reference code; keeps widths hardware friendly.
    """
    min_value = min_value or divisor
    rounded = max(min_value, int(value + divisor / 2) // divisor * divisor)
    if rounded < 0.9 * value:
        rounded += divisor
    return rounded


class ConvBNAct(nn.Sequential):
    """Conv2d (no bias) -> BatchNorm -> activation, with 'same' padding."""

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int = 3, stride: int = 1,
                 groups: int = 1, activation: Optional[Type[nn.Module]] = nn.ReLU6) -> None:
        layers = [
            nn.Conv2d(in_channels, out_channels, kernel_size, stride, (kernel_size - 1) // 2,
                      groups=groups, bias=False),
            nn.BatchNorm2d(out_channels),
        ]
        if activation is not None:
            layers.append(activation(inplace=True))
        super().__init__(*layers)
        self.out_channels = out_channels


class SqueezeExcitation(nn.Module):
    """Channel attention (Hu et al., 2018) as used in MobileNetV3, with a sigmoid gate."""

    def __init__(self, channels: int, squeeze_channels: int) -> None:
        super().__init__()
        self.fc1 = nn.Conv2d(channels, squeeze_channels, 1)
        self.fc2 = nn.Conv2d(squeeze_channels, channels, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        scale = F.adaptive_avg_pool2d(x, 1)
        scale = torch.sigmoid(self.fc2(F.relu(self.fc1(scale))))
        return x * scale


def global_pool(x: torch.Tensor) -> torch.Tensor:
    """Global average pooling to (N, C), written to stay channel-last friendly."""
    return F.adaptive_avg_pool2d(x, 1).flatten(1)


def init_weights(model: nn.Module) -> None:
    """The initialisation of the reference implementations (He for convs)."""
    for module in model.modules():
        if isinstance(module, nn.Conv2d):
            nn.init.kaiming_normal_(module.weight, mode="fan_out")
            if module.bias is not None:
                nn.init.zeros_(module.bias)
        elif isinstance(module, (nn.BatchNorm2d, nn.GroupNorm)):
            nn.init.ones_(module.weight)
            nn.init.zeros_(module.bias)
        elif isinstance(module, nn.Linear):
            nn.init.normal_(module.weight, 0, 0.01)
            nn.init.zeros_(module.bias)


class PooledClassifier(nn.Module):
    """The common tail of the classification families: feature layers, global average
    pooling, dropout, one linear layer. A family builds its layers, then calls finish()."""

    def finish(self, layers, channels: int, num_classes: int, dropout: float) -> None:
        self.features = nn.Sequential(*layers)
        self.out_channels = channels
        self.classifier = nn.Sequential(nn.Dropout(dropout), nn.Linear(channels, num_classes))
        init_weights(self)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(global_pool(self.features(x)))
