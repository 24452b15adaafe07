"""Time one AdamW step over the bundled detector's parameters: PyTorch's default CPU
path (one tensor at a time) against the fused kernel that `edgecnn train` uses.

    python benchmarks/investigations/optimizer_step.py [--steps 200]
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))


def step_ms(fused: bool, steps: int) -> float:
    import torch

    from edgecnn.models.detector import MobileNetDetector

    model = MobileNetDetector(3).to(memory_format=torch.channels_last)
    for parameter in model.parameters():
        parameter.grad = torch.randn_like(parameter)
    optimizer = torch.optim.AdamW(model.parameters(), 1e-3, **({"fused": True} if fused else {}))
    for _ in range(10):  # warm-up
        optimizer.step()
    started = time.perf_counter()
    for _ in range(steps):
        optimizer.step()
    return (time.perf_counter() - started) / steps * 1000


def main() -> None:
    import torch

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--steps", type=int, default=200)
    args = parser.parse_args()
    torch.set_num_threads(2)
    default, fused = step_ms(False, args.steps), step_ms(True, args.steps)
    print(f"AdamW step, detector parameters, 2 threads: default {default:.2f} ms, fused {fused:.2f} ms "
          f"({default / fused:.1f}x)")


if __name__ == "__main__":
    main()
