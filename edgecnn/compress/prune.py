"""Structured channel pruning through Torch-Pruning's dependency graph, then
fine-tuning with the ordinary training loop, then the accuracy gate.

Torch-Pruning follows every coupling (residual adds, depthwise groups, concatenations)
so removed channels disappear from all layers that share them and the result is a
smaller dense network, faster on every runtime without sparse kernels. Channels are
removed in small steps until the target (a fraction of the MACs, or a latency
measured with onnxruntime on this device) is met.
"""
from __future__ import annotations

import copy
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Dict, List, Optional

import torch
from torch import nn

from edgecnn.core.card import ModelCard
from edgecnn.core.errors import GateRefused, UserError
from edgecnn.core.task import get_task

from edgecnn.compress import IMPORTANCE  # noqa: E402  (the criteria offered, torch-free)
MAX_PRUNING_RATIO = 0.9  # no layer loses more than 90% of its channels
STEPS = 40  # granularity of the search for the target


def importance(name: str):
    import torch_pruning as tp

    if name == "magnitude":
        return tp.importance.GroupMagnitudeImportance(p=2)
    if name == "taylor":
        return tp.importance.GroupTaylorImportance()
    if name == "bn-scale":
        return tp.importance.BNScaleImportance()
    if name == "lamp":
        return tp.importance.LAMPImportance(p=2)
    if name == "random":
        return tp.importance.RandomImportance()
    raise UserError(f"unknown importance {name!r}; choose from {', '.join(IMPORTANCE)}")


def output_layers(model: nn.Module, card: ModelCard) -> List[nn.Module]:
    """Layers whose output channels are the model's outputs (classes, box sides)."""
    return get_task(card.task).training().output_layers(model)


@dataclass
class PruneOptions:
    target_macs: Optional[float] = None  # fraction of MACs kept
    target_latency_ms: Optional[float] = None
    importance: str = "magnitude"
    data: Optional[str] = None
    epochs: int = 5
    lr: float = 0.01
    batch: int = 32
    max_drop: float = 1.0
    force: bool = False
    threads: int = 2
    seed: int = 0
    keep_work: bool = False  # keep OUT-finetune/ of a refused run (removed by default: nothing deployable stays)
    # latency_ms(model, card, threads): how fast a model runs where it is deployed (the
    # exporters' converters.latency.onnx_latency_ms, handed down by the command line)
    latency_ms: Optional[Callable[[nn.Module, ModelCard, int], float]] = None


def prune_to_target(model: nn.Module, card: ModelCard, options: PruneOptions, measure: Callable[[nn.Module], float],
                    target: float, example: torch.Tensor, taylor_batch=None, log=print) -> float:
    """Remove channels step by step until measure(model) <= target; returns the measure."""
    import torch_pruning as tp

    pruner = tp.pruner.MetaPruner(model, example, importance=importance(options.importance),
                                  pruning_ratio=MAX_PRUNING_RATIO, iterative_steps=STEPS,
                                  max_pruning_ratio=MAX_PRUNING_RATIO, ignored_layers=output_layers(model, card),
                                  round_to=8, global_pruning=False)
    value = measure(model)
    for step in range(STEPS):
        if value <= target:
            return value
        if options.importance == "taylor":
            model.zero_grad()
            taylor_batch(model).backward()
        pruner.step()
        value = measure(model)
        log(f"  step {step + 1}: {value:.4g}")
    if value > target:
        raise UserError(f"the target cannot be reached: after removing up to {int(100 * MAX_PRUNING_RATIO)}% of "
                        f"every layer's channels the model still measures {value:.4g} (target {target:.4g})")
    return value


def prune_checkpoint(source: str, out: str, options: PruneOptions, log=print) -> Dict[str, Any]:
    """Prune, fine-tune, gate, write a checkpoint (its card marks it pruned)."""
    import torch_pruning  # noqa: F401  (fail early with ImportError -> the train extra)

    from edgecnn.core.files import file_hash
    from edgecnn.training.checkpoint import load_for_compression, load_model, save_checkpoint
    from edgecnn.training.evaluate import evaluate_predictor, torch_predictor
    from edgecnn.compress.gate import compare, enforce
    from edgecnn.models.complexity import complexity
    from edgecnn.training.train import TrainConfig, train

    if (options.target_macs is None) == (options.target_latency_ms is None):
        raise UserError("give exactly one of --target-macs F or --target-latency-ms X")
    if options.target_macs is not None and not 0 < options.target_macs < 1:
        raise UserError(f"--target-macs is the fraction of MACs kept, between 0 and 1; got {options.target_macs}")
    if options.target_latency_ms is not None and options.target_latency_ms <= 0:
        raise UserError("--target-latency-ms must be > 0")
    if options.epochs < 0:
        raise UserError("--epochs must be >= 0")
    importance(options.importance)
    if options.latency_ms is None:
        raise UserError("pruning needs a latency meter (PruneOptions.latency_ms), e.g. "
                        "converters.latency.onnx_latency_ms")
    latency_ms = options.latency_ms
    model, card, data_spec = load_for_compression(source, options.data, "prune")
    taylor_batch = _taylor_loss(card, data_spec) if options.importance == "taylor" else None
    shape = (1, card.channels, *card.input_size)
    before = {**complexity(model, shape), "latency_ms": latency_ms(model, card, options.threads)}
    log(f"before: {before['parameters']:,} parameters, {before['macs'] / 1e6:.2f}M MACs, "
        f"{before['latency_ms']:.3f} ms (onnxruntime fp32, {options.threads} threads)")
    unpruned = copy.deepcopy(model)  # measured once the target is known to be reachable

    torch.manual_seed(options.seed)
    example = torch.zeros(shape)
    if options.target_macs is not None:
        target = options.target_macs * before["macs"]
        measure = lambda m: float(complexity(m, shape)["macs"])  # noqa: E731
        log(f"pruning ({options.importance}) to {100 * options.target_macs:.0f}% of the MACs")
    else:
        target = options.target_latency_ms
        measure = lambda m: latency_ms(m, card, options.threads)  # noqa: E731
        log(f"pruning ({options.importance}) to {target} ms")
    model.train()
    prune_to_target(model, card, options, measure, target, example, taylor_batch, log=lambda message: None)
    model.eval()
    baseline = evaluate_predictor(torch_predictor(unpruned.eval()), card, data_spec)
    del unpruned
    pruned_card = card.replace(architecture={**card.architecture, "pruned": True})

    run_dir = Path(out).with_suffix("").as_posix() + "-finetune"
    work_is_new = not Path(run_dir).exists()
    Path(run_dir).mkdir(parents=True, exist_ok=True)
    start_path = Path(run_dir) / "pruned.pt"
    save_checkpoint(start_path, pruned_card, model)
    if options.epochs:
        config = TrainConfig(task=card.task, model=card.architecture.get("backbone", card.architecture["name"]),
                             width=float(card.architecture.get("width", 1.0)), data=data_spec,
                             imgsz=card.input_size[0], epochs=options.epochs, batch=options.batch, optimizer="sgd",
                             lr=options.lr, weight_decay=5e-4, warmup_epochs=0.0, out=run_dir, seed=options.seed,
                             init=str(start_path))
        log(f"fine-tuning {options.epochs} epochs (checkpoints in {run_dir})")
        train(config, log=log)
        model, _, _ = load_model(Path(run_dir) / "last.pt")
    after = {**complexity(model, shape), "latency_ms": latency_ms(model, card, options.threads)}
    measured = evaluate_predictor(torch_predictor(model), pruned_card, data_spec)
    gate = compare(card.task, baseline, measured, options.max_drop)
    summary = {"source": str(source), "out": str(out), "before": before, "after": after, "gate": gate.to_dict(),
               "macs_ratio": after["macs"] / before["macs"], "speedup": before["latency_ms"] / after["latency_ms"],
               "importance": options.importance, "epochs": options.epochs}
    log(f"after: {after['parameters']:,} parameters, {after['macs'] / 1e6:.2f}M MACs "
        f"({100 * summary['macs_ratio']:.1f}%), {after['latency_ms']:.3f} ms ({summary['speedup']:.2f}x faster)")
    log(gate.describe())
    try:
        enforce(gate, options.force, what=str(out))
    except GateRefused:
        if not options.keep_work:
            remove_work(Path(run_dir), work_is_new)
        raise
    metric = gate.metric
    final_card = pruned_card.replace(source_hash=file_hash(source), metrics={
        metric: measured[metric], f"unpruned_{metric}": baseline[metric], "drop_points": gate.drop,
        "split": measured.get("split", "val"), "dataset": data_spec, "images": measured.get("images"),
        "macs": after["macs"], "parameters": after["parameters"]})
    save_checkpoint(out, final_card, model)
    return summary


def remove_work(run_dir: Path, whole: bool) -> None:
    """A refused run's fine-tuning directory: removed whole when this run made it, else
    the checkpoints this run wrote there, so no refused weights stay behind."""
    import shutil

    if whole:
        shutil.rmtree(run_dir, ignore_errors=True)
        return
    for name in ("pruned.pt", "last.pt", "best.pt"):
        (run_dir / name).unlink(missing_ok=True)


def _taylor_loss(card: ModelCard, data_spec: str):
    """One labelled training batch's loss, which Taylor importance needs gradients of."""
    return get_task(card.task).training().taylor_loss(card, data_spec)
