"""Time the bundled detector recipe's training step (batch 16 at 192x192, forward, loss,
backward, AdamW and the weight average) three ways: eager as `edgecnn train` runs it,
under torch.compile, and with bfloat16 autocast. More epochs in the 15-minute budget
would need a faster step; this shows whether either route gives one on this CPU.

    python benchmarks/investigations/train_step.py [--steps 24]
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))


def step_ms(mode: str, steps: int) -> dict:
    """Median milliseconds of each part of a step, after warm-up (compilation included there)."""
    import torch

    from edgecnn.training.checkpoint import build_from_card
    from edgecnn.tasks.detect.training import DetectTraining
    from edgecnn.training.train import TrainConfig, ema_model, make_optimizer

    config = TrainConfig(task="detect", model="mobilenet_v2", width=0.5, data="shapes", imgsz=192, batch=16,
                         lr=0.012, epochs=40, max_train_images=16 * 8, max_val_images=8)
    task = DetectTraining(config)
    data = task.train_dataset
    data.epoch = config.epochs - 1  # the last, 192x192 stage
    batches = [task.collate([data[i] for i in range(b * 16, b * 16 + 16)]) for b in range(8)]
    torch.manual_seed(0)
    model = build_from_card(task.card).to(memory_format=torch.channels_last).train()
    optimizer = make_optimizer(config, model)
    averaged = ema_model(model, config.ema_decay)
    net = torch.compile(model) if mode == "compile" else model
    parts = []

    def step(batch) -> None:
        started = time.perf_counter()
        optimizer.zero_grad(set_to_none=True)
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=mode == "bf16 autocast"):
            box_logits, class_logits = net(batch[0].to(memory_format=torch.channels_last))
        box_logits, class_logits = [b.float() for b in box_logits], [c.float() for c in class_logits]
        forward = time.perf_counter()
        loss = task.loss_from_logits(box_logits, class_logits, batch)
        loss.backward()
        backward = time.perf_counter()
        optimizer.step()
        averaged.update_parameters(model)
        parts.append([forward - started, backward - forward, time.perf_counter() - backward])

    for batch in batches[:3]:
        step(batch)
    parts.clear()
    for index in range(steps):
        step(batches[index % len(batches)])
    forward, backward, update = np.median(np.array(parts), 0) * 1000
    return {"forward": forward, "loss and backward": backward, "optimizer and average": update,
            "step": forward + backward + update}


def main() -> None:
    import torch

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--steps", type=int, default=24)
    args = parser.parse_args()
    torch.set_num_threads(2)
    print("| step | forward ms | loss and backward ms | optimizer and average ms | whole step ms |")
    print("|---|---|---|---|---|")
    for mode in ("eager", "compile", "bf16 autocast"):
        ms = step_ms(mode, args.steps)
        print(f"| {mode} | {ms['forward']:.1f} | {ms['loss and backward']:.1f} | "
              f"{ms['optimizer and average']:.1f} | {ms['step']:.1f} |", flush=True)


if __name__ == "__main__":
    main()
