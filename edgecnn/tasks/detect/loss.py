"""Training loss of the anchor-free detector.

Assignment is task-aligned (TOOD, Feng et al., 2021; as in YOLOv8): for each object,
the cells whose centre lies inside its box are ranked by score^alpha * IoU^beta of
their current prediction and the top k become positives. The class target of a
positive is the IoU of its predicted box with the object (an IoU-aware soft label,
as in VarifocalNet and RTMDet), so the score ranks boxes by localisation quality,
which is what mAP@0.5:0.95 rewards. Box loss: GIoU, averaged over the positives with
equal weight. Weighting it by the IoU as well (as the class target is) gives the least
gradient to the worst boxes, which here are mostly of occluded objects: on synthetic
shapes the equal weight scored 98.43 mAP@0.5 against 97.76 (30 epochs; benchmarks/RESULTS.md).
"""
from __future__ import annotations

from typing import List, Tuple

import torch
from torch.nn import functional as F


def pairwise_iou(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """(..., n, 4) x (..., m, 4) corner boxes -> (..., n, m) IoU."""
    top_left = torch.maximum(a[..., :, None, :2], b[..., None, :, :2])
    bottom_right = torch.minimum(a[..., :, None, 2:], b[..., None, :, 2:])
    inter = (bottom_right - top_left).clamp(min=0).prod(-1)
    area_a = (a[..., 2:] - a[..., :2]).clamp(min=0).prod(-1)
    area_b = (b[..., 2:] - b[..., :2]).clamp(min=0).prod(-1)
    return inter / (area_a[..., :, None] + area_b[..., None, :] - inter + 1e-9)


def giou(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Element-wise generalised IoU of matching boxes (n, 4)."""
    top_left = torch.maximum(a[:, :2], b[:, :2])
    bottom_right = torch.minimum(a[:, 2:], b[:, 2:])
    inter = (bottom_right - top_left).clamp(min=0).prod(-1)
    union = (a[:, 2:] - a[:, :2]).prod(-1) + (b[:, 2:] - b[:, :2]).prod(-1) - inter + 1e-9
    hull = (torch.maximum(a[:, 2:], b[:, 2:]) - torch.minimum(a[:, :2], b[:, :2])).prod(-1) + 1e-9
    return inter / union - (hull - union) / hull


def decode_boxes(box_logits: torch.Tensor, centres: torch.Tensor, input_size: Tuple[int, int]) -> torch.Tensor:
    """(B, A, 4) box logits -> (B, A, 4) corner boxes in input pixels: the sides are
    sigmoid fractions of the input's width and height away from the cell centre."""
    height, width = input_size
    scale = torch.tensor([width, height, width, height], dtype=box_logits.dtype)
    distances = torch.sigmoid(box_logits) * scale
    return torch.cat([centres - distances[..., :2], centres + distances[..., 2:]], -1)


class DetectionLoss:
    def __init__(self, num_classes: int, topk: int = 10, alpha: float = 1.0, beta: float = 6.0,
                 box_weight: float = 5.0, class_weight: float = 1.0) -> None:
        self.num_classes, self.topk, self.alpha, self.beta = num_classes, topk, alpha, beta
        self.box_weight, self.class_weight = box_weight, class_weight

    @torch.no_grad()
    def assign(self, scores: torch.Tensor, boxes: torch.Tensor, centres: torch.Tensor, gt_boxes: torch.Tensor,
               gt_classes: torch.Tensor, gt_valid: torch.Tensor) -> Tuple[torch.Tensor, torch.Tensor]:
        """scores (B, A, C) probabilities, boxes (B, A, 4) px, centres (A, 2), gt (B, G, 4/-/-).
        Returns soft class targets (B, A, C) and the assigned gt box per cell (B, A, 4)."""
        batch, cells, _ = scores.shape
        targets = torch.zeros_like(scores)
        assigned = torch.zeros_like(boxes)
        if gt_boxes.shape[1] == 0:
            return targets, assigned
        x, y = centres[None, :, None, 0], centres[None, :, None, 1]
        inside = ((x > gt_boxes[:, None, :, 0]) & (x < gt_boxes[:, None, :, 2]) &
                  (y > gt_boxes[:, None, :, 1]) & (y < gt_boxes[:, None, :, 3]) & gt_valid[:, None, :])
        # an object too small to hold any cell centre takes its nearest cell
        gt_centres = (gt_boxes[..., :2] + gt_boxes[..., 2:]) / 2
        nearest = torch.cdist(gt_centres, centres[None].expand(batch, -1, -1)).argmin(-1)  # (B, G)
        empty = (inside.sum(1) == 0) & gt_valid
        inside.scatter_(1, nearest[:, None, :], inside.gather(1, nearest[:, None, :]) | empty[:, None, :])
        ious = pairwise_iou(boxes, gt_boxes).clamp(min=0)  # (B, A, G)
        class_scores = scores.gather(2, gt_classes[:, None, :].expand(-1, cells, -1).clamp(min=0))
        align = class_scores.pow(self.alpha) * ious.pow(self.beta) * inside
        k = min(self.topk, cells)
        top = align.topk(k, dim=1).indices  # (B, k, G)
        chosen = torch.zeros_like(inside).scatter_(1, top, True) & inside
        # a cell claimed by several objects goes to the one it overlaps most
        overlap = torch.where(chosen, ious, torch.full_like(ious, -1.0))
        best_gt = overlap.argmax(-1)  # (B, A)
        positive = chosen.any(-1)
        owner = F.one_hot(best_gt, gt_boxes.shape[1]).bool() & positive[..., None]
        quality = (ious * owner).amax(-1)  # (B, A): the IoU of the box with its object
        cls = gt_classes.gather(1, best_gt).clamp(min=0)
        targets.scatter_(2, cls[..., None], quality[..., None])
        targets *= positive[..., None]
        assigned = gt_boxes.gather(1, best_gt[..., None].expand(-1, -1, 4))
        return targets, assigned

    def __call__(self, box_logits: List[torch.Tensor], class_logits: List[torch.Tensor], centres: torch.Tensor,
                 input_size: Tuple[int, int], gt_boxes: torch.Tensor, gt_classes: torch.Tensor,
                 gt_valid: torch.Tensor) -> Tuple[torch.Tensor, dict]:
        logits = torch.cat(class_logits, 1)
        boxes = decode_boxes(torch.cat(box_logits, 1), centres, input_size)
        targets, assigned = self.assign(torch.sigmoid(logits).detach(), boxes.detach(), centres, gt_boxes,
                                        gt_classes, gt_valid)
        total = targets.sum().clamp(min=1.0)
        class_loss = F.binary_cross_entropy_with_logits(logits, targets, reduction="sum") / total
        positive = targets.sum(-1) > 0
        if positive.any():
            box_loss = (1 - giou(boxes[positive], assigned[positive])).mean()
        else:
            box_loss = boxes.sum() * 0.0
        loss = self.class_weight * class_loss + self.box_weight * box_loss
        return loss, {"cls": float(class_loss.detach()), "box": float(box_loss.detach())}
