"""Knowledge distillation: a model fine-tuned against a teacher's outputs as well as
the labels (Hinton et al., 2015).

Pruning fine-tunes the pruned model against the unpruned one and quantization-aware
training fine-tunes the int8 graph against the float model: the teacher's soft outputs
say what the labels do not (which classes look alike, how sure a cell is that it holds
an object, where a box's edges lie), so the same epochs recover more of what pruning or
int8 took away. Teacher and student see the same batch; the loss is

    (1 - weight) * label loss + weight * distillation loss

Each task's training object supplies its side, so a new task brings its own:
`outputs(net, batch)` (the student's training-mode outputs), `teacher_outputs(model,
batch)` (the same form from a model in eval mode), `loss_from_outputs(outputs, batch)`
(the label loss) and `distill_loss(student, teacher, batch)`.
"""
from __future__ import annotations

from typing import Any

import torch
from torch import nn

from edgecnn.core.card import ModelCard
from edgecnn.core.errors import UserError
from edgecnn.training import DISTILL_MODES

HOOKS = ("outputs", "teacher_outputs", "loss_from_outputs", "distill_loss")


def check_distill(mode: str, weight: float) -> None:
    if mode not in DISTILL_MODES:
        raise UserError(f"--distill must be one of {', '.join(DISTILL_MODES)}, got {mode!r}")
    if not 0 <= weight <= 1:
        raise UserError(f"--distill-weight blends the teacher's loss with the labels' and is in 0..1, got {weight}")


def check_teacher(teacher: ModelCard, student: ModelCard, teacher_path: str) -> None:
    """The teacher must be a model of the student's task and labels that reads the
    student's batch as it was trained to (input size, colour, normalisation): one line
    naming the first difference."""
    differences = [("task", teacher.task, student.task), ("labels", teacher.labels, student.labels),
                   ("input size", list(teacher.input_size), list(student.input_size)),
                   ("colour", teacher.color, student.color),
                   ("normalisation", (list(teacher.mean), list(teacher.std)), (list(student.mean), list(student.std)))]
    for what, theirs, ours in differences:
        if theirs != ours:
            if what == "labels":
                raise UserError(f"teacher {teacher_path} does not match the student: its labels are "
                                f"{', '.join(theirs)}, the student's {', '.join(ours)}")
            raise UserError(f"teacher {teacher_path} does not match the student: its {what} is {theirs}, "
                            f"the student's {ours}")


def read_teacher_card(path: str) -> ModelCard:
    """The card of a teacher checkpoint, read without building its model."""
    from edgecnn.training.checkpoint import load_checkpoint

    if str(path).endswith(".pt2"):
        raise UserError(f"teacher {path} is an int8 program; a teacher is an fp32 checkpoint")
    return ModelCard.from_dict(load_checkpoint(path)["card"])


def load_teacher(path: str, student: ModelCard) -> nn.Module:
    """A checkpoint as a frozen teacher for `student` (eval mode, no gradients)."""
    from edgecnn.training.checkpoint import load_model

    check_teacher(read_teacher_card(path), student, str(path))
    return frozen(load_model(path)[0])


def frozen(model: nn.Module) -> nn.Module:
    """The model in eval mode (BatchNorm running statistics, no dropout), without gradients."""
    model = model.eval().to(memory_format=torch.channels_last)
    for parameter in model.parameters():
        parameter.requires_grad_(False)
    return model


def require_hooks(task: Any) -> None:
    """A task's training object must define the distillation hooks (HOOKS) to distil."""
    missing = [hook for hook in HOOKS if not callable(getattr(task, hook, None))]
    if missing:
        raise UserError(f"this task's training offers no distillation (it lacks {', '.join(missing)}); "
                        "pass --distill off")


class Distilled:
    """A task's training object whose loss blends the teacher's in; everything else
    (data, collate, validation, card) is the task's own."""

    def __init__(self, task: Any, teacher: nn.Module, weight: float) -> None:
        require_hooks(task)
        self.task, self.teacher, self.weight = task, teacher, weight
        self.checked = False

    def __getattr__(self, name: str) -> Any:
        return getattr(self.task, name)

    def loss(self, net: nn.Module, batch) -> torch.Tensor:
        student = self.task.outputs(net, batch)
        with torch.no_grad():
            teacher = self.task.teacher_outputs(self.teacher, batch)
        if not self.checked:
            check_shapes(student, teacher)
            self.checked = True
        return blend(self.task, student, teacher, batch, self.weight)


def blend(task: Any, student, teacher, batch, weight: float) -> torch.Tensor:
    """(1 - weight) * the label loss + weight * the distillation loss."""
    label = task.loss_from_outputs(student, batch) if weight < 1 else None
    distilled = task.distill_loss(student, teacher, batch) if weight > 0 else None
    if distilled is None:
        return label
    return distilled * weight if label is None else (1 - weight) * label + weight * distilled


def shapes_of(outputs) -> list:
    if isinstance(outputs, torch.Tensor):
        return [tuple(outputs.shape)]
    return [shape for item in outputs for shape in shapes_of(item)]


def check_shapes(student, teacher) -> None:
    """The teacher's outputs must line up with the student's (cells, classes, pixels)."""
    ours, theirs = shapes_of(student), shapes_of(teacher)
    if ours != theirs:
        raise UserError(f"the teacher's outputs {theirs} do not line up with the student's {ours}: "
                        "distill from a model of the same output layout")
