"""LeNet-5 (LeCun et al., 1998, "Gradient-Based Learning Applied to Document
Recognition"), with ReLU, max pooling and BatchNorm as in modern re-implementations.

An adaptive pool in front of the classifier lets it take any input size >= 32.
"""
from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F

from edgecnn.models.blocks import init_weights


class LeNet5(nn.Module):
    def __init__(self, num_classes: int = 10, width: float = 1.0, in_channels: int = 1,
                 dropout: float = 0.0) -> None:
        super().__init__()
        c1, c2 = max(1, round(6 * width)), max(1, round(16 * width))
        f1, f2 = max(1, round(120 * width)), max(1, round(84 * width))
        self.features = nn.Sequential(
            nn.Conv2d(in_channels, c1, 5), nn.BatchNorm2d(c1), nn.ReLU(inplace=True), nn.MaxPool2d(2),
            nn.Conv2d(c1, c2, 5), nn.BatchNorm2d(c2), nn.ReLU(inplace=True), nn.MaxPool2d(2),
        )
        self.out_channels = c2
        self.classifier = nn.Sequential(
            nn.Linear(c2 * 25, f1), nn.ReLU(inplace=True), nn.Dropout(dropout),
            nn.Linear(f1, f2), nn.ReLU(inplace=True), nn.Linear(f2, num_classes))
        init_weights(self)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = F.adaptive_avg_pool2d(self.features(x), 5)
        return self.classifier(x.flatten(1))
