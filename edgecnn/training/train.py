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

import contextlib
import dataclasses
import math
import os
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Dict, List, Optional

import torch
import torch.distributed as dist
from torch import nn
from torch.utils.data import DataLoader
from tqdm import tqdm

from edgecnn.core.card import ModelCard
from edgecnn.training.checkpoint import build_from_card, load_checkpoint, load_model, save_checkpoint
from edgecnn.core.errors import UserError
from edgecnn.core.task import build_train_options, format_metric, get_task
from edgecnn.training import DISTILL_WEIGHT


@dataclass
class TrainConfig:
    task: str = "classify"
    model: str = "mobilenet_v2"
    width: float = 1.0
    data: str = "digits"
    imgsz: Optional[int] = None
    epochs: int = 30
    batch: int = 64
    optimizer: str = "adamw"  # or "sgd" (Nesterov momentum 0.9)
    lr: float = 3e-3
    weight_decay: float = 0.05
    warmup_epochs: float = 1.0
    label_smoothing: float = 0.1
    augment: bool = True
    out: str = "runs/train"
    seed: int = 0
    workers: int = 0
    max_train_images: Optional[int] = None  # a fixed subset, for quick runs and tests
    max_val_images: Optional[int] = None
    ema_decay: float = 0.998  # 0 disables the weight average
    strict: bool = False  # detection data: a bad label or image is an error, not skipped
    init: Optional[str] = None  # start from this checkpoint's weights and structure (fine-tuning)
    # BatchNorm statistics over micro-batches of this many images (gradients still over the whole
    # batch): a single process then trains exactly like N processes each seeing batch/N under DDP
    bn_batch: Optional[int] = None
    val_every: int = 1  # validate every N epochs (and always after the last)
    # the task's own options (its Task.train_options dataclass: a detector's neck, mosaic,
    # progressive resizing...); None: the task's defaults
    task_options: Any = None
    # distillation (edgecnn.training.distill): "logits" blends the teacher checkpoint's
    # outputs into the loss with this weight; "off" trains on the labels alone
    distill: str = "off"
    teacher: Optional[str] = None
    distill_weight: float = DISTILL_WEIGHT

    def __post_init__(self) -> None:
        task = get_task(self.task)
        if isinstance(self.task_options, dict):
            self.task_options = build_train_options(task, self.task_options)
        elif self.task_options is None:
            self.task_options = task.train_option_defaults()

    @classmethod
    def from_dict(cls, saved: Dict[str, Any]) -> "TrainConfig":
        """A saved config (a checkpoint's train_config); options saved flat beside the
        common ones, as older checkpoints hold them, become the task's options."""
        common = {f.name for f in dataclasses.fields(cls)}
        task = get_task(saved.get("task", "classify"))
        own = {f.name: f.default for f in dataclasses.fields(task.train_options)} if task.train_options else {}
        options = dict(saved.get("task_options") or {})
        options.update({k: v for k, v in saved.items() if k not in common and k in own})
        return cls(**{k: v for k, v in saved.items() if k in common and k != "task_options"},
                   task_options=options)


def ema_model(model: nn.Module, decay: float) -> torch.optim.swa_utils.AveragedModel:
    """Exponential moving average of weights and BN buffers, the model that is validated
    and saved. The decay ramps up over the first updates so early epochs are not frozen
    at initialisation (as in Ultralytics and timm)."""

    @torch.no_grad()
    def update(averaged, current, updates):
        ramp = decay * (1 - math.exp(-(int(updates) + 1) / 300))
        floats = [(mean, value) for mean, value in zip(averaged, current) if mean.is_floating_point()]
        if floats:  # one multi-tensor op (update() is called per dtype group)
            torch._foreach_lerp_([m for m, _ in floats], [v for _, v in floats], 1 - ramp)
        for mean, value in zip(averaged, current):
            if not mean.is_floating_point():  # counters such as BatchNorm's num_batches_tracked
                mean.copy_(value)

    return torch.optim.swa_utils.AveragedModel(model, multi_avg_fn=update, use_buffers=True)


class Distributed:
    """Rank and world size; a single process is rank 0 of 1."""

    def __init__(self) -> None:
        self.world = int(os.environ.get("WORLD_SIZE", "1"))
        if self.world > 1 and not dist.is_initialized():
            dist.init_process_group("gloo")
        self.rank = dist.get_rank() if self.world > 1 else 0
        local_world = int(os.environ.get("LOCAL_WORLD_SIZE", str(self.world)))
        threads = max(1, (os.cpu_count() or 1) // local_world)  # the cores shared among this machine's ranks
        limit = os.environ.get("OMP_NUM_THREADS", "")
        torch.set_num_threads(min(threads, int(limit)) if limit.isdigit() and int(limit) > 0 else threads)

    @property
    def main(self) -> bool:
        return self.rank == 0

    def sum(self, values: List[float]) -> List[float]:
        tensor = torch.tensor(values, dtype=torch.float64)
        if self.world > 1:
            dist.all_reduce(tensor)
        return tensor.tolist()

    def gather(self, mapping: Dict[Any, Any]) -> Dict[Any, Any]:
        """Merge a dict from every rank (results of each rank's validation shard)."""
        if self.world == 1:
            return mapping
        parts: List[Any] = [None] * self.world
        dist.all_gather_object(parts, mapping)
        return {k: v for part in parts for k, v in part.items()}

    def close(self) -> None:
        if self.world > 1 and dist.is_initialized():
            dist.destroy_process_group()


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


def epoch_order(size: int, config: TrainConfig, epoch: int, world: int, rank: int) -> List[int]:
    """The sample indices this process trains on in `epoch`, in order.

    Every process draws the same permutation a single-process run draws and takes its
    share of each global batch, so under torchrun the union of the ranks' batches is
    exactly the single-process batch, step by step. The last global batch is padded by
    wrapping around so that every rank takes the same number of steps (DDP needs it).
    """
    generator = torch.Generator().manual_seed(config.seed * 100003 + epoch)
    order = torch.randperm(size, generator=generator).tolist()
    if world == 1:
        return order
    mine: List[int] = []
    for start in range(0, size, config.batch):
        batch = order[start:start + config.batch]
        while len(batch) % world:
            batch.append(order[len(batch) % size])
        mine.extend(batch[rank::world])
    return mine


def backward_in_micro_batches(task, net: nn.Module, batch, micro: Optional[int]) -> torch.Tensor:
    """loss.backward() over the batch, its forward passes (and so its BatchNorm statistics)
    taken `micro` images at a time; returns the batch's mean loss."""
    size = len(batch[0])
    if not micro or micro >= size:
        loss = task.loss(net, batch)
        loss.backward()
        return loss
    total = torch.zeros(())
    starts = list(range(0, size, micro))
    for index, start in enumerate(starts):
        part = tuple(t[start:start + micro] for t in batch)
        sync = index == len(starts) - 1 or not hasattr(net, "no_sync")
        with (contextlib.nullcontext() if sync else net.no_sync()):
            loss = task.loss(net, part) * (len(part[0]) / size)
            loss.backward()
        total = total + loss.detach()
    return total


def make_optimizer(config: TrainConfig, model: nn.Module) -> torch.optim.Optimizer:
    """Weight decay on conv/linear weights only, never on BatchNorm or biases."""
    decay = [p for p in model.parameters() if p.ndim > 1]
    no_decay = [p for p in model.parameters() if p.ndim <= 1]
    groups = [{"params": decay, "weight_decay": config.weight_decay}, {"params": no_decay, "weight_decay": 0.0}]
    # PyTorch steps CPU parameters one tensor at a time unless asked otherwise; the fused
    # AdamW kernel takes a detector's step from 7.2 to 1.4 ms (benchmarks/investigations/optimizer_step.py)
    if config.optimizer == "sgd":
        return torch.optim.SGD(groups, lr=config.lr, momentum=0.9, nesterov=True, foreach=True)
    return torch.optim.AdamW(groups, lr=config.lr, fused=True)


def check_config(config: TrainConfig) -> None:
    get_task(config.task)  # an unknown task: one line listing the known ones
    if config.optimizer not in ("adamw", "sgd"):
        raise UserError(f"--optimizer must be adamw or sgd, got {config.optimizer!r}")
    if config.epochs < 1:
        raise UserError(f"--epochs must be >= 1, got {config.epochs}")
    if config.batch < 1:
        raise UserError(f"--batch must be >= 1, got {config.batch}")
    if config.bn_batch is not None and config.bn_batch < 2:
        raise UserError(f"--bn-batch must be >= 2, got {config.bn_batch}")
    if not config.width > 0:
        raise UserError(f"--width must be > 0, got {config.width}")
    from edgecnn.models import resolve_name

    resolve_name(config.model)  # fail before loading any data
    if config.val_every < 1:
        raise UserError(f"--val-every must be >= 1, got {config.val_every}")
    from edgecnn.training.distill import check_distill

    check_distill(config.distill, config.distill_weight)
    if config.distill != "off" and not config.teacher:
        raise UserError(f"--distill {config.distill} needs a teacher checkpoint")
    get_task(config.task).training().check_config(config)


def train(config: TrainConfig, resume: bool = False, log=None) -> Dict[str, Any]:
    """Train, writing OUT/last.pt every epoch and OUT/best.pt on improvement."""
    log = log or (lambda message: print(message, flush=True))
    out = Path(config.out)
    history: List[Dict[str, Any]] = []
    start_epoch, best = 0, -1.0
    resumed: Optional[Dict[str, Any]] = None
    if resume:
        resumed = load_checkpoint(out / "last.pt")
        if "train_config" not in resumed:
            raise UserError(f"{out / 'last.pt'} holds no training state to resume (a stripped model?)")
        config = TrainConfig.from_dict({**resumed["train_config"], "out": config.out})
        start_epoch, best = int(resumed["epoch"]), float(resumed["best_metric"])
        history = list(resumed.get("history", []))
    check_config(config)

    ctx = Distributed()
    try:
        initial = load_model(config.init) if config.init else None
        task = get_task(config.task).training().make_training(config, ModelCard.from_dict(resumed["card"]) if resumed else
                         (initial[1] if initial else None))
        card, dataset = task.card, task.train_dataset
        if ctx.main:
            for line in getattr(task, "summaries", []):
                log(line)
        torch.manual_seed(config.seed)
        if initial:
            model = initial[0].train()
        elif card.architecture.get("pruned"):  # a pruned structure cannot be rebuilt from the card alone
            model = load_model(out / "last.pt")[0].train()
        else:
            model = build_from_card(card)
        # channels-last runs the convolutions about 2x faster on CPU (oneDNN)
        model = model.to(memory_format=torch.channels_last)
        objective = task
        if config.distill != "off":
            from edgecnn.training.distill import Distilled, load_teacher

            feature_layers = get_task(card.task).training().feature_layers if config.distill == "features" else None
            objective = Distilled(task, load_teacher(config.teacher, card), config.distill_weight, feature_layers)
            if ctx.main:
                log(f"distilling from {config.teacher} (weight {config.distill_weight:g}; "
                    f"{'outputs and feature attention' if feature_layers else 'outputs'})")
        per_process_batch = max(1, config.batch // ctx.world)
        optimizer = make_optimizer(config, model)
        steps = math.ceil(len(epoch_order(len(dataset), config, 0, ctx.world, ctx.rank)) / per_process_batch)
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

        if start_epoch >= config.epochs and ctx.main:
            log(f"training already complete ({start_epoch}/{config.epochs} epochs) in {out}")
        for epoch in range(start_epoch, config.epochs):
            started = time.perf_counter()
            dataset.epoch = epoch
            torch.manual_seed(config.seed * 100003 + epoch)  # dropout, identical on resume
            order = epoch_order(len(dataset), config, epoch, ctx.world, ctx.rank)
            loader = DataLoader(dataset, batch_size=per_process_batch, sampler=order,
                                num_workers=config.workers, collate_fn=task.collate, drop_last=False)
            net.train()
            loss_sum, seen = 0.0, 0
            bar = tqdm(loader, desc=f"epoch {epoch + 1}/{config.epochs}", leave=False,
                       disable=None if ctx.main else True, file=sys.stderr, dynamic_ncols=True)
            for batch in bar:
                optimizer.zero_grad(set_to_none=True)
                loss = backward_in_micro_batches(objective, net, batch, config.bn_batch)
                optimizer.step()
                scheduler.step()
                if averaged is not None:
                    averaged.update_parameters(model)
                size = len(batch[0])
                loss_sum += float(loss.detach()) * size
                seen += size
                bar.set_postfix(loss=f"{loss_sum / seen:.4f}", lr=f"{scheduler.get_last_lr()[0]:.2e}")
            bar.close()
            train_loss = ctx.sum([loss_sum, seen])
            validated = (epoch + 1) % config.val_every == 0 or epoch + 1 == config.epochs
            metrics = task.validate(deployed, ctx) if validated else {}
            improved = validated and metrics[task.primary] > best
            best = max(best, metrics[task.primary]) if validated else best
            seconds = time.perf_counter() - started
            history.append({"epoch": epoch + 1, "train_loss": train_loss[0] / train_loss[1],
                            **{f"val_{k}": v for k, v in metrics.items() if k != "images"}, "seconds": seconds})
            if ctx.main:
                # a card states only what was measured on these very weights
                card_metrics = {**metrics, "split": "val", "dataset": config.data, "epoch": epoch + 1} if validated else {}
                state = dict(train_config=dataclasses.asdict(config), epoch=epoch + 1, best_metric=best,
                             optimizer=optimizer.state_dict(), scheduler=scheduler.state_dict(),
                             history=history, world_size=ctx.world, raw_model=model.state_dict(),
                             ema=averaged.state_dict() if averaged is not None else None)
                save_checkpoint(out / "last.pt", card.replace(metrics=card_metrics), deployed, **state)
                if improved:
                    save_checkpoint(out / "best.pt", card.replace(metrics=card_metrics), deployed, **state)
                if validated:
                    values = "  ".join(format_metric(k, v) for k, v in metrics.items() if k != "images")
                    shown = f"val {values}  best {format_metric(task.primary, best)}"
                else:
                    shown = "(not validated)"
                log(f"epoch {epoch + 1}/{config.epochs}  loss {history[-1]['train_loss']:.4f}  {shown}  {seconds:.1f}s")
        if ctx.world > 1:
            dist.barrier()
        last = {k[4:]: v for k, v in history[-1].items() if k.startswith("val_")} if history else {}
        return {"out": str(out), "task": config.task, "epochs": config.epochs, "primary": task.primary,
                "best": best, "last": last, "history": history, "world_size": ctx.world}
    finally:
        ctx.close()
