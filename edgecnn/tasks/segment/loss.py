"""Training loss of the segmenters: per-pixel cross-entropy plus a soft Dice term.

Cross-entropy alone weighs each pixel equally, so background (most of a scene) and
the interiors of large shapes dominate it, while mIoU weighs every label equally and
is lost at the boundaries of small shapes. The soft Dice term (Milletari et al.,
2016), computed per label over the batch, is a differentiable stand-in for each
label's overlap, which keeps small labels and thin boundaries in play. Pixels marked
255 ("ignore") take part in neither term.
"""
from __future__ import annotations

import torch
from torch.nn import functional as F

IGNORE = 255


class SegmentationLoss:
    def __init__(self, num_classes: int, dice_weight: float = 1.0) -> None:
        self.num_classes, self.dice_weight = num_classes, dice_weight

    def __call__(self, logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        """logits (N, C, H, W), target (N, H, W) label indices or 255."""
        loss = F.cross_entropy(logits, target, ignore_index=IGNORE)
        if self.dice_weight:
            loss = loss + self.dice_weight * self.dice(torch.softmax(logits, 1), target)
        return loss

    def dice(self, probabilities: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        valid = (target != IGNORE).unsqueeze(1).to(probabilities.dtype)
        one_hot = F.one_hot(target.clamp(max=self.num_classes - 1), self.num_classes).permute(0, 3, 1, 2)
        one_hot = one_hot.to(probabilities.dtype) * valid
        probabilities = probabilities * valid
        overlap = (probabilities * one_hot).sum((0, 2, 3))
        total = probabilities.sum((0, 2, 3)) + one_hot.sum((0, 2, 3))
        present = one_hot.sum((0, 2, 3)) > 0  # labels absent from the batch would only push their scores to 0
        dice = 1 - (2 * overlap + 1) / (total + 1)
        return dice[present].mean() if present.any() else dice.sum() * 0
