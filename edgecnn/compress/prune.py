"""Structured channel pruning through Torch-Pruning's dependency graph, then
fine-tuning with the ordinary training loop (distilled from the unpruned model), then
the accuracy gate.

Torch-Pruning follows every coupling (residual adds, depthwise groups, concatenations)
so removed channels disappear from all layers that share them and the result is a
smaller dense network, faster on every runtime without sparse kernels.

The pruner removes a further share of the channels at each of its STEPS (the same share
of every layer's, or, ranked across the network, of all of them), so for a given model
the structure after k steps, and what it measures (MACs, latency), depends on k alone.
The target (a fraction of the MACs, or a latency measured as the
file that will run on this device) is therefore turned into a number of steps once, on
copies of the model; then the model reaches it in one round or in several (`steps`),
each followed by its share of the fine-tuning epochs (gradual pruning: the network
adapts between cuts, as in Zhu and Gupta, 2017), so iterating costs no extra epochs.
Fine-tuning distils from the unpruned model (edgecnn.training.distill) by default.
"""
from __future__ import annotations

import copy
import math
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Callable, Dict, List, Optional, Tuple

import torch
from torch import nn

from edgecnn.core.card import ModelCard
from edgecnn.core.errors import GateRefused, UserError
from edgecnn.core.task import get_task
from edgecnn.training import DISTILL_WEIGHT

from edgecnn.compress import IMPORTANCE, OPTIMIZER_DECAY, SCOPES  # noqa: E402  (torch-free: the CLI's choices)
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
    # how channels are ranked: an importance (IMPORTANCE) and a scope, "layer" (within each
    # layer) or "global" (across the network); None: the task's (PRUNE_IMPORTANCE, PRUNE_SCOPE)
    importance: Optional[str] = None
    scope: Optional[str] = None
    data: Optional[str] = None
    epochs: int = 5  # fine-tuning epochs in all, shared among the rounds
    steps: int = 1  # rounds of pruning towards the target, each followed by its share of the epochs
    # the fine-tuning's optimiser ("sgd" or "adamw") and learning rate; None: the task's
    # (its training module's PRUNE_OPTIMIZER and PRUNE_LR, chosen by measurement)
    optimizer: Optional[str] = None
    lr: Optional[float] = None
    weight_decay: Optional[float] = None  # None: 5e-4 with sgd, 0.01 with adamw
    batch: int = 32
    max_drop: float = 1.0
    force: bool = False
    threads: int = 2
    seed: int = 0
    keep_work: bool = False  # keep OUT-finetune/ of a refused run (removed by default: nothing deployable stays)
    distill: str = "logits"  # or "off": fine-tune on the labels alone
    distill_weight: float = DISTILL_WEIGHT
    teacher: Optional[str] = None  # the checkpoint distilled from (default: the unpruned source)
    # latency_ms(model, card, threads): how fast a model runs as the file that will be
    # deployed (the exporters' converters.latency.DeployedLatency, handed down by the
    # command line); its `name` says what it times
    latency_ms: Optional[Callable[[nn.Module, ModelCard, int], float]] = None


def new_pruner(model: nn.Module, card: ModelCard, options: PruneOptions, example: torch.Tensor):
    import torch_pruning as tp

    options = with_task_recipe(options, card)
    return tp.pruner.MetaPruner(model, example, importance=importance(options.importance),
                                pruning_ratio=MAX_PRUNING_RATIO, iterative_steps=STEPS,
                                max_pruning_ratio=MAX_PRUNING_RATIO, ignored_layers=output_layers(model, card),
                                round_to=8, global_pruning=options.scope == "global")


def advance(pruner, model: nn.Module, steps: int, options: PruneOptions, taylor_batch=None) -> None:
    """Take the pruner's steps until `steps` of its STEPS are done."""
    model.train()
    while pruner.current_step < steps:
        if options.importance == "taylor":
            model.zero_grad()
            taylor_batch(model).backward()
        pruner.step()
    model.eval()


def pruned_copy(model: nn.Module, card: ModelCard, options: PruneOptions, example: torch.Tensor, steps: int,
                taylor_batch=None) -> nn.Module:
    pruned = copy.deepcopy(model).train()
    advance(new_pruner(pruned, card, options, example), pruned, steps, options, taylor_batch)
    return pruned


def unreachable(value: float, target: float) -> UserError:
    return UserError(f"the target cannot be reached: after removing up to {int(100 * MAX_PRUNING_RATIO)}% of "
                     f"every layer's channels the model still measures {value:.4g} (target {target:.4g})")


def steps_to_target(model: nn.Module, card: ModelCard, options: PruneOptions, measure: Callable[[nn.Module], float],
                    target: float, example: torch.Tensor, taylor_batch=None, unpruned: Optional[float] = None,
                    log=print) -> Tuple[int, float]:
    """The fewest pruner steps after which measure(model) <= target, and that measure,
    found on copies of the model (which is left as it is). Given `unpruned` (the
    model's measure, known: an expensive meter such as a latency), the steps are
    bisected, about log2(STEPS) measurements; otherwise every step is measured in turn."""
    if unpruned is None:
        walked = copy.deepcopy(model).train()
        pruner = new_pruner(walked, card, options, example)
        for step in range(STEPS + 1):
            advance(pruner, walked, step, options, taylor_batch)
            value = measure(walked)
            if value <= target:
                return step, value
        raise unreachable(value, target)
    if unpruned <= target:
        return 0, unpruned
    measured = {STEPS: measure(pruned_copy(model, card, options, example, STEPS, taylor_batch))}
    log(f"  {STEPS} steps: {measured[STEPS]:.4g}")
    if measured[STEPS] > target:
        raise unreachable(measured[STEPS], target)
    low, high = 0, STEPS  # measure(low) > target >= measure(high)
    while high - low > 1:
        middle = (low + high) // 2
        measured[middle] = measure(pruned_copy(model, card, options, example, middle, taylor_batch))
        log(f"  {middle} steps: {measured[middle]:.4g}")
        low, high = (low, middle) if measured[middle] <= target else (middle, high)
    return high, measured[high]


def round_epochs(epochs: int, steps: int) -> List[int]:
    """The fine-tuning epochs after each of `steps` rounds: the budget shared as evenly
    as it goes, the later rounds (nearer the target) taking the remainder."""
    if steps < 1:
        raise UserError(f"--steps must be >= 1, got {steps}")
    if steps > 1 and epochs < steps:
        raise UserError(f"--steps {steps} needs at least {steps} fine-tuning epochs (one after each round), "
                        f"got --epochs {epochs}")
    share, extra = divmod(epochs, steps)
    return [share + (1 if index >= steps - extra else 0) for index in range(steps)]


def round_targets(total_steps: int, rounds: int) -> List[int]:
    """The pruner step each round ends at: equal shares of the way to the target."""
    return [math.ceil(total_steps * index / rounds) for index in range(1, rounds + 1)]


def check_options(options: PruneOptions) -> List[int]:
    """Everything a user can get wrong, before any model is loaded; the epochs per round."""
    from edgecnn.training.distill import check_distill

    if (options.target_macs is None) == (options.target_latency_ms is None):
        raise UserError("give exactly one of --target-macs F or --target-latency-ms X")
    if options.target_macs is not None and not 0 < options.target_macs < 1:
        raise UserError(f"--target-macs is the fraction of MACs kept, between 0 and 1; got {options.target_macs}")
    if options.target_latency_ms is not None and options.target_latency_ms <= 0:
        raise UserError("--target-latency-ms must be > 0")
    if options.epochs < 0:
        raise UserError("--epochs must be >= 0")
    if options.optimizer is not None and options.optimizer not in OPTIMIZER_DECAY:
        raise UserError(f"--optimizer must be one of {', '.join(OPTIMIZER_DECAY)}, got {options.optimizer!r}")
    if options.weight_decay is not None and options.weight_decay < 0:
        raise UserError(f"--weight-decay must be >= 0, got {options.weight_decay}")
    if options.scope is not None and options.scope not in SCOPES:
        raise UserError(f"--scope must be one of {', '.join(SCOPES)}, got {options.scope!r}")
    if options.lr is not None and options.lr <= 0:
        raise UserError(f"--lr must be > 0, got {options.lr}")
    epochs = round_epochs(options.epochs, options.steps)
    check_distill(options.distill, options.distill_weight)
    if options.teacher and options.distill == "off":
        raise UserError("--teacher is for distillation: drop it or drop --distill off")
    if options.importance is not None:
        importance(options.importance)
    if options.latency_ms is None:
        raise UserError("pruning needs a latency meter (PruneOptions.latency_ms), e.g. "
                        "converters.latency.DeployedLatency")
    return epochs


def prune_checkpoint(source: str, out: str, options: PruneOptions, log=print) -> Dict[str, Any]:
    """Prune (in one round or several, each fine-tuned), gate, write a checkpoint (its
    card marks it pruned)."""
    import torch_pruning  # noqa: F401  (fail early with ImportError -> the train extra)

    from edgecnn.core.files import file_hash
    from edgecnn.training.checkpoint import load_for_compression, save_checkpoint
    from edgecnn.training.distill import check_teacher, read_teacher_card
    from edgecnn.training.evaluate import evaluate_predictor, torch_predictor
    from edgecnn.compress.gate import compare, enforce
    from edgecnn.models.complexity import complexity

    epochs_per_round = check_options(options)
    latency_ms = options.latency_ms
    timed_as = getattr(latency_ms, "name", "latency")
    model, card, data_spec = load_for_compression(source, options.data, "prune")
    options = with_task_recipe(options, card)
    teacher = None
    if options.distill != "off" and options.epochs:
        teacher = str(options.teacher or source)
        if options.teacher:
            check_teacher(read_teacher_card(teacher), card, teacher)
    taylor_batch = _taylor_loss(card, data_spec) if options.importance == "taylor" else None
    shape = (1, card.channels, *card.input_size)
    torch.manual_seed(options.seed)
    example = torch.zeros(shape)
    before = complexity(model, shape)
    if options.target_macs is not None:  # the steps first: an unreachable target is refused before any timing
        total_steps, _ = steps_to_target(model, card, options, lambda m: float(complexity(m, shape)["macs"]),
                                         options.target_macs * before["macs"], example, taylor_batch)
    before["latency_ms"] = latency_ms(model, card, options.threads)
    log(f"before: {before['parameters']:,} parameters, {before['macs'] / 1e6:.2f}M MACs, "
        f"{before['latency_ms']:.3f} ms ({timed_as}, {options.threads} thread{'s' if options.threads > 1 else ''})")
    if options.target_macs is not None:
        log(f"pruning ({options.importance}, ranked {SCOPES[options.scope]}) to {100 * options.target_macs:.0f}% of "
            f"the MACs: {total_steps} of the pruner's {STEPS} steps")
    else:
        target = options.target_latency_ms
        log(f"pruning ({options.importance}, ranked {SCOPES[options.scope]}) to {target} ms ({timed_as}): "
            f"searching the pruner's {STEPS} steps")
        total_steps, searched_ms = steps_to_target(model, card, options,
                                                   lambda m: latency_ms(m, card, options.threads), target, example,
                                                   taylor_batch, unpruned=before["latency_ms"], log=log)
    baseline = evaluate_predictor(torch_predictor(model.eval()), card, data_spec)
    pruned_card = card.replace(architecture={**card.architecture, "pruned": True})

    run_dir = Path(Path(out).with_suffix("").as_posix() + "-finetune")
    work_is_new = not run_dir.exists()
    run_dir.mkdir(parents=True, exist_ok=True)
    pruner = new_pruner(model.train(), card, options, example)
    rounds = []
    for index, (step, epochs) in enumerate(zip(round_targets(total_steps, options.steps), epochs_per_round), 1):
        advance(pruner, model, step, options, taylor_batch)
        macs = complexity(model, shape)["macs"]
        where = run_dir if options.steps == 1 else run_dir / f"round-{index}"
        log(f"round {index}/{options.steps}: {step}/{STEPS} pruner steps, {macs / 1e6:.2f}M MACs "
            f"({100 * macs / before['macs']:.1f}%)" + (f", fine-tuning {epochs} epoch{'' if epochs == 1 else 's'} "
                                                      f"{'distilled from ' + teacher if teacher else 'on the labels'} "
                                                      f"(checkpoints in {where})" if epochs else ""))
        fine_tune(model, pruned_card, data_spec, options, epochs, where, teacher, options.seed + index - 1, log)
        rounds.append({"pruner_steps": step, "macs": macs, "epochs": epochs})
    after = {**complexity(model, shape), "latency_ms": latency_ms(model, card, options.threads)}
    measured = evaluate_predictor(torch_predictor(model), pruned_card, data_spec)
    gate = compare(card.task, baseline, measured, options.max_drop)
    summary = {"source": str(source), "out": str(out), "before": before, "after": after, "gate": gate.to_dict(),
               "macs_ratio": after["macs"] / before["macs"], "speedup": before["latency_ms"] / after["latency_ms"],
               "latency_on": timed_as, "importance": options.importance, "scope": options.scope,
               "epochs": options.epochs, "steps": options.steps, "rounds": rounds, "optimizer": options.optimizer,
               "lr": options.lr, "weight_decay": fine_tuning_decay(options),
               "distill": options.distill if teacher else "off",
               "distill_weight": options.distill_weight if teacher else None, "teacher": teacher}
    if options.target_latency_ms is not None:
        summary["target_latency_met"] = after["latency_ms"] <= options.target_latency_ms
        summary["searched_latency_ms"] = searched_ms
    log(f"after: {after['parameters']:,} parameters, {after['macs'] / 1e6:.2f}M MACs "
        f"({100 * summary['macs_ratio']:.1f}%), {after['latency_ms']:.3f} ms ({timed_as}: "
        f"{summary['speedup']:.2f}x faster)")
    if summary.get("target_latency_met") is False:
        log(f"the target is not met: the fine-tuned model measures {after['latency_ms']:.3f} ms against "
            f"{options.target_latency_ms} ms (its structure measured {searched_ms:.3f} ms in the search)")
    log(gate.describe())
    try:
        enforce(gate, options.force, what=str(out))
    except GateRefused:
        if not options.keep_work:
            remove_work(run_dir, work_is_new)
        raise
    metric = gate.metric
    final_card = pruned_card.replace(source_hash=file_hash(source), metrics={
        metric: measured[metric], f"unpruned_{metric}": baseline[metric], "drop_points": gate.drop,
        "max_drop_points": gate.max_drop, "split": measured.get("split", "val"), "dataset": data_spec, "images": measured.get("images"),
        "macs": after["macs"], "parameters": after["parameters"]})
    save_checkpoint(out, final_card, model)
    return summary


def fine_tune(model: nn.Module, card: ModelCard, data_spec: str, options: PruneOptions, epochs: int, run_dir: Path,
              teacher: Optional[str], seed: int, log) -> None:
    """Fine-tune `model` in place for `epochs` with the training loop (its checkpoints in
    run_dir), distilled from `teacher` when one is given. The trained weights are copied
    back into the same modules, which the pruner holds for the next round."""
    from edgecnn.training.checkpoint import load_model, save_checkpoint
    from edgecnn.training.train import TrainConfig, train

    run_dir.mkdir(parents=True, exist_ok=True)
    start_path = run_dir / "pruned.pt"
    save_checkpoint(start_path, card, model)
    if not epochs:
        return
    config = TrainConfig(task=card.task, model=card.architecture.get("backbone", card.architecture["name"]),
                         width=float(card.architecture.get("width", 1.0)), data=data_spec,
                         imgsz=card.input_size[0], epochs=epochs, batch=options.batch, optimizer=options.optimizer,
                         lr=options.lr, weight_decay=fine_tuning_decay(options), warmup_epochs=0.0,
                         out=str(run_dir), seed=seed,
                         init=str(start_path), distill=options.distill if teacher else "off", teacher=teacher,
                         distill_weight=options.distill_weight)
    train(config, log=log)
    trained, _, _ = load_model(run_dir / "last.pt")
    model.load_state_dict(trained.state_dict())
    model.eval()


def with_task_recipe(options: PruneOptions, card: ModelCard) -> PruneOptions:
    """The options with the task's channel ranking and fine-tuning optimiser and learning
    rate where the user named none."""
    recipe = get_task(card.task).training()
    return replace(options, optimizer=options.optimizer or recipe.PRUNE_OPTIMIZER,
                   lr=options.lr if options.lr is not None else recipe.PRUNE_LR,
                   importance=options.importance or recipe.PRUNE_IMPORTANCE,
                   scope=options.scope or recipe.PRUNE_SCOPE)


def fine_tuning_decay(options: PruneOptions) -> float:
    if options.weight_decay is not None:
        return options.weight_decay
    return OPTIMIZER_DECAY[options.optimizer]


def remove_work(run_dir: Path, whole: bool) -> None:
    """A refused run's fine-tuning directory: removed whole when this run made it, else
    the checkpoints this run wrote there, so no refused weights stay behind."""
    import shutil

    if whole:
        shutil.rmtree(run_dir, ignore_errors=True)
        return
    for folder in (run_dir, *sorted(run_dir.glob("round-*"))):
        for name in ("pruned.pt", "last.pt", "best.pt"):
            (folder / name).unlink(missing_ok=True)


def _taylor_loss(card: ModelCard, data_spec: str):
    """One labelled training batch's loss, which Taylor importance needs gradients of."""
    return get_task(card.task).training().taylor_loss(card, data_spec)
