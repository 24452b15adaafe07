"""Training loop for classifiers, single process or data-parallel under torchrun.

`torchrun --nproc_per_node N -m edgecnn train ...` starts N processes; each sees
1/N of every epoch (DistributedSampler) and a batch of batch/N, so the global batch
and the learning-rate schedule are those of a single-process run. PyTorch's DDP
averages gradients over gloo (CPU) or NCCL (GPU).

Everything random is seeded from (seed, epoch, index), and checkpoints are written
atomically at the end of each epoch, so a killed run resumed with --resume ends in
the same weights as an uninterrupted one.
"""
from __future__ import annotations

import dataclasses
import math
import os
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Dict, List, Optional

import numpy as np
import torch
import torch.distributed as dist
from torch import nn
from torch.utils.data import DataLoader, Dataset, DistributedSampler, RandomSampler
from tqdm import tqdm

from edgecnn.card import ModelCard
from edgecnn.checkpoint import build_from_card, load_checkpoint, save_checkpoint
from edgecnn.data import ClassificationSet, load_classification
from edgecnn.data.augment import ClassifyAugment
from edgecnn.errors import UserError
from edgecnn.runtime.preprocess import preprocess

NORMALISATION = (127.5, 127.5)  # pixel -> [-1, 1]: symmetric, friendly to int8


@dataclass
class TrainConfig:
    task: str = "classify"
    model: str = "mobilenet_v2"
    width: float = 1.0
    data: str = "digits"
    imgsz: Optional[int] = None
    epochs: int = 30
    batch: int = 64
    lr: float = 3e-3
    weight_decay: float = 0.05
    warmup_epochs: float = 1.0
    label_smoothing: float = 0.1
    augment: bool = True
    out: str = "runs/train"
    seed: int = 0
    workers: int = 0
    max_train_images: Optional[int] = None  # a fixed subset, for quick runs and tests
    ema_decay: float = 0.998  # 0 disables the weight average


def ema_model(model: nn.Module, decay: float) -> torch.optim.swa_utils.AveragedModel:
    """Exponential moving average of weights and BN buffers, the model that is validated
    and saved. The decay ramps up over the first updates so early epochs are not frozen
    at initialisation (as in Ultralytics and timm)."""

    @torch.no_grad()
    def update(averaged, current, updates):
        ramp = decay * (1 - math.exp(-(int(updates) + 1) / 300))
        for mean, value in zip(averaged, current):
            if mean.is_floating_point():
                mean.lerp_(value, 1 - ramp)
            else:  # counters such as BatchNorm's num_batches_tracked
                mean.copy_(value)

    return torch.optim.swa_utils.AveragedModel(model, multi_avg_fn=update, use_buffers=True)


class TorchClassification(Dataset):
    """Wraps a ClassificationSet: augment (seeded per epoch and index), then preprocess."""

    def __init__(self, data: ClassificationSet, card: ModelCard, augment: Optional[ClassifyAugment],
                 seed: int) -> None:
        self.data, self.card, self.augment, self.seed = data, card, augment, seed
        self.epoch = 0

    def __len__(self) -> int:
        return len(self.data)

    def __getitem__(self, index: int):
        image, target = self.data[index]
        if self.augment is not None:
            image = self.augment(image, np.random.default_rng([self.seed, self.epoch, index]))
        return torch.from_numpy(preprocess(image, self.card)[0]), target


class Distributed:
    """Rank and world size; a single process is rank 0 of 1."""

    def __init__(self) -> None:
        self.world = int(os.environ.get("WORLD_SIZE", "1"))
        if self.world > 1 and not dist.is_initialized():
            dist.init_process_group("gloo")
        self.rank = dist.get_rank() if self.world > 1 else 0
        local_world = int(os.environ.get("LOCAL_WORLD_SIZE", str(self.world)))
        torch.set_num_threads(max(1, (os.cpu_count() or 1) // local_world))

    @property
    def main(self) -> bool:
        return self.rank == 0

    def sum(self, values: List[float]) -> List[float]:
        tensor = torch.tensor(values, dtype=torch.float64)
        if self.world > 1:
            dist.all_reduce(tensor)
        return tensor.tolist()

    def close(self) -> None:
        if self.world > 1 and dist.is_initialized():
            dist.destroy_process_group()


def make_card(config: TrainConfig, data: ClassificationSet) -> ModelCard:
    imgsz = config.imgsz or data.info.default_imgsz
    if imgsz < 32:
        raise UserError(f"--imgsz must be >= 32, got {imgsz}")
    channels = 1 if data.info.color == "gray" else 3
    mean, std = NORMALISATION
    return ModelCard(task="classify", labels=data.labels, input_size=(imgsz, imgsz), layout="nchw",
                     color=data.info.color, mean=(mean,) * channels, std=(std,) * channels,
                     architecture={"name": config.model, "width": config.width},
                     dataset={"name": config.data, "train_images": len(data)})


def lr_lambda(config: TrainConfig, steps_per_epoch: int):
    """Linear warm-up, then cosine decay to 1% of the peak, per optimiser step."""
    total = max(1, config.epochs * steps_per_epoch)
    warmup = max(1, int(config.warmup_epochs * steps_per_epoch))

    def factor(step: int) -> float:
        if step < warmup:
            return (step + 1) / warmup
        progress = (step - warmup) / max(1, total - warmup)
        return 0.01 + 0.99 * 0.5 * (1 + math.cos(math.pi * min(1.0, progress)))

    return factor


@torch.no_grad()
def validate(model: nn.Module, data: ClassificationSet, card: ModelCard, ctx: Distributed,
             batch: int = 256) -> float:
    """Top-1 accuracy on `data`; each rank scores a shard and the counts are summed."""
    model.eval()
    indices = list(range(ctx.rank, len(data), ctx.world))
    correct = 0
    for start in range(0, len(indices), batch):
        chunk = indices[start:start + batch]
        x = torch.from_numpy(np.concatenate([preprocess(data[i][0], card) for i in chunk]))
        predictions = model(x.to(memory_format=torch.channels_last)).argmax(1).numpy()
        correct += int((predictions == data.targets[chunk]).sum())
    total_correct, total = ctx.sum([correct, len(indices)])
    return total_correct / max(1, total)


def check_config(config: TrainConfig) -> None:
    if config.task != "classify":
        raise UserError(f"--task {config.task} is not supported by this trainer (classify)")
    if config.epochs < 1:
        raise UserError(f"--epochs must be >= 1, got {config.epochs}")
    if config.batch < 1:
        raise UserError(f"--batch must be >= 1, got {config.batch}")
    if not config.width > 0:
        raise UserError(f"--width must be > 0, got {config.width}")
    from edgecnn.models import CLASSIFIERS

    if config.model.lower().replace("-", "_") not in CLASSIFIERS:
        raise UserError(f"unknown model {config.model!r}; choose from {', '.join(sorted(CLASSIFIERS))}")


def train(config: TrainConfig, resume: bool = False, log=print) -> Dict[str, Any]:
    """Train, writing OUT/last.pt every epoch and OUT/best.pt on improvement."""
    out = Path(config.out)
    history: List[Dict[str, float]] = []
    start_epoch, best = 0, -1.0
    resumed: Optional[Dict[str, Any]] = None
    if resume:
        resumed = load_checkpoint(out / "last.pt")
        if "train_config" not in resumed:
            raise UserError(f"{out / 'last.pt'} holds no training state to resume (a stripped model?)")
        config = TrainConfig(**{**resumed["train_config"], "out": config.out})
        start_epoch, best = int(resumed["epoch"]), float(resumed["best_metric"])
        history = list(resumed.get("history", []))
    check_config(config)

    ctx = Distributed()
    try:
        train_set = load_classification(config.data, "train")
        val_set = load_classification(config.data, "val", labels=train_set.labels)
        if config.max_train_images:
            keep = np.random.default_rng(config.seed).permutation(len(train_set))[:config.max_train_images]
            train_set = ClassificationSet(train_set.info, "train", [train_set.images[i] for i in keep],
                                          train_set.targets[keep])
        card = ModelCard.from_dict(resumed["card"]) if resumed else make_card(config, train_set)

        torch.manual_seed(config.seed)
        # channels-last runs the convolutions about 2x faster on CPU (oneDNN)
        model = build_from_card(card).to(memory_format=torch.channels_last)
        augment = ClassifyAugment(hflip=train_set.info.hflip) if config.augment else None
        dataset = TorchClassification(train_set, card, augment, config.seed)
        per_process_batch = max(1, config.batch // ctx.world)
        optimizer = torch.optim.AdamW(model.parameters(), lr=config.lr, weight_decay=config.weight_decay)
        if ctx.world > 1:
            sampler = DistributedSampler(dataset, ctx.world, ctx.rank, shuffle=True, seed=config.seed)
            steps = math.ceil(len(sampler) / per_process_batch)
        else:
            sampler = None
            steps = math.ceil(len(dataset) / per_process_batch)
        scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lr_lambda(config, steps))
        if resumed:
            model.load_state_dict(resumed["raw_model"])
            optimizer.load_state_dict(resumed["optimizer"])
            scheduler.load_state_dict(resumed["scheduler"])
        net: nn.Module = nn.parallel.DistributedDataParallel(model) if ctx.world > 1 else model
        averaged = ema_model(model, config.ema_decay) if config.ema_decay > 0 else None
        if resumed and averaged is not None:
            averaged.load_state_dict(resumed["ema"])
        deployed = averaged.module if averaged is not None else model
        criterion = nn.CrossEntropyLoss(label_smoothing=config.label_smoothing)

        if start_epoch >= config.epochs and ctx.main:
            log(f"training already complete ({start_epoch}/{config.epochs} epochs) in {out}")
        for epoch in range(start_epoch, config.epochs):
            started = time.perf_counter()
            dataset.epoch = epoch
            torch.manual_seed(config.seed * 100003 + epoch)  # dropout, identical on resume
            if sampler is not None:
                sampler.set_epoch(epoch)
                epoch_sampler = sampler
            else:
                generator = torch.Generator().manual_seed(config.seed * 100003 + epoch)
                epoch_sampler = RandomSampler(dataset, generator=generator)
            loader = DataLoader(dataset, batch_size=per_process_batch, sampler=epoch_sampler,
                                num_workers=config.workers, drop_last=False)
            net.train()
            loss_sum, seen = 0.0, 0
            bar = tqdm(loader, desc=f"epoch {epoch + 1}/{config.epochs}", leave=False,
                       disable=None if ctx.main else True, file=sys.stderr, dynamic_ncols=True)
            for x, y in bar:
                loss = criterion(net(x.to(memory_format=torch.channels_last)), y)
                optimizer.zero_grad(set_to_none=True)
                loss.backward()
                optimizer.step()
                scheduler.step()
                if averaged is not None:
                    averaged.update_parameters(model)
                loss_sum += float(loss.detach()) * len(y)
                seen += len(y)
                bar.set_postfix(loss=f"{loss_sum / seen:.4f}", lr=f"{scheduler.get_last_lr()[0]:.2e}")
            bar.close()
            train_loss = ctx.sum([loss_sum, seen])
            accuracy = validate(deployed, val_set, card, ctx)
            improved = accuracy > best
            best = max(best, accuracy)
            seconds = time.perf_counter() - started
            history.append({"epoch": epoch + 1, "train_loss": train_loss[0] / train_loss[1],
                            "val_top1": accuracy, "seconds": seconds})
            if ctx.main:
                metrics = {"top1": accuracy, "split": "val", "dataset": config.data,
                           "images": len(val_set), "epoch": epoch + 1}
                state = dict(train_config=dataclasses.asdict(config), epoch=epoch + 1, best_metric=best,
                             optimizer=optimizer.state_dict(), scheduler=scheduler.state_dict(),
                             history=history, world_size=ctx.world, raw_model=model.state_dict(),
                             ema=averaged.state_dict() if averaged is not None else None)
                save_checkpoint(out / "last.pt", card.replace(metrics=metrics), deployed, **state)
                if improved:
                    save_checkpoint(out / "best.pt", card.replace(metrics=metrics), deployed, **state)
                log(f"epoch {epoch + 1}/{config.epochs}  loss {history[-1]['train_loss']:.4f}  "
                    f"val top1 {100 * accuracy:.2f}%  best {100 * best:.2f}%  {seconds:.1f}s")
        if ctx.world > 1:
            dist.barrier()
        return {"out": str(out), "epochs": config.epochs, "best_top1": best,
                "last_top1": history[-1]["val_top1"] if history else None, "history": history,
                "world_size": ctx.world}
    finally:
        ctx.close()
