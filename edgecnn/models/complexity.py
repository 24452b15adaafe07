"""Parameter and multiply-accumulate counts, measured by PyTorch's own FLOP counter
(torch.utils.flop_counter) on a real forward pass; MACs = FLOPs / 2."""
from __future__ import annotations

from typing import Dict, Tuple

import torch
from torch import nn
from torch.utils.flop_counter import FlopCounterMode


def count_parameters(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


@torch.no_grad()
def count_macs(model: nn.Module, input_shape: Tuple[int, int, int, int]) -> int:
    """MACs of one forward pass at `input_shape` (N, C, H, W), counted per op."""
    was_training = model.training
    model.eval()
    try:
        with FlopCounterMode(display=False) as counter:
            model(torch.zeros(input_shape))
    finally:
        model.train(was_training)
    return counter.get_total_flops() // 2


def complexity(model: nn.Module, input_shape: Tuple[int, int, int, int]) -> Dict[str, int]:
    return {"parameters": count_parameters(model), "macs": count_macs(model, input_shape)}
