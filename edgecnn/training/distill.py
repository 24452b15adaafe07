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

`--distill features` also matches the last feature maps before the output layers (the
task's `feature_layers`) by attention transfer (Zagoruyko and Komodakis, 2017): each
map's spatial attention, the channel mean of its squared activations, L2-normalised
over the map. It compares maps of any channel count, so a pruned student needs no
adapter layers, and it says where the teacher looks, which the outputs alone say only
at the cells that hold an object.
"""
from __future__ import annotations

import contextlib
from typing import Any, Callable, List, Optional, Sequence

import torch
import torch.nn.functional as F
from torch import nn

from edgecnn.core.card import ModelCard
from edgecnn.core.errors import UserError
from edgecnn.training import DISTILL_MODES

HOOKS = ("outputs", "teacher_outputs", "loss_from_outputs", "distill_loss")
# attention transfer's weight, the paper's beta = 1000 over its mean of squares (halved)
ATTENTION_WEIGHT = 500.0


def check_distill(mode: str, weight: float, modes: Sequence[str] = DISTILL_MODES) -> None:
    if mode not in modes:
        raise UserError(f"--distill must be one of {', '.join(modes)}, got {mode!r}")
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


class FeatureTaps:
    """The outputs of some modules during `recording()` (not in validation or any other
    forward pass of the same model)."""

    def __init__(self, modules: Sequence[nn.Module]) -> None:
        self.maps: List[torch.Tensor] = []
        self.on = False
        for module in modules:  # the hooks live as long as the models (one training run)
            module.register_forward_hook(self.keep)

    def keep(self, module: nn.Module, inputs, output) -> None:
        if self.on:
            self.maps.append(output)

    @contextlib.contextmanager
    def recording(self):
        self.maps, self.on = [], True
        try:
            yield self.maps  # the caller's to keep: the taps let go of it on leaving
        finally:
            self.maps, self.on = [], False


def spatial_attention(feature_map: torch.Tensor) -> torch.Tensor:
    """(N, C, H, W) -> (N, H*W): where a map is active, whatever its channel count."""
    return F.normalize(feature_map.float().pow(2).mean(1).flatten(1), dim=1)


def attention_loss(student: Sequence[torch.Tensor], teacher: Sequence[torch.Tensor]) -> torch.Tensor:
    """Attention transfer summed over the tapped maps (matched in order, same size)."""
    if len(student) != len(teacher) or not student:
        raise UserError(f"feature distillation tapped {len(student)} student and {len(teacher)} teacher maps; "
                        "the two models must have the same feature layers")
    total = student[0].new_zeros(())
    for ours, theirs in zip(student, teacher):
        if ours.shape[0] != theirs.shape[0] or ours.shape[2:] != theirs.shape[2:]:
            raise UserError(f"the teacher's feature map {tuple(theirs.shape)} does not line up with the student's "
                            f"{tuple(ours.shape)}: distil features from a model of the same strides")
        total = total + ATTENTION_WEIGHT * (spatial_attention(ours) - spatial_attention(theirs)).pow(2).mean()
    return total


class Distilled:
    """A task's training object whose loss blends the teacher's in; everything else
    (data, collate, validation, card) is the task's own. With `feature_layers` (a
    model -> modules callable), the tapped maps' attention is matched as well."""

    def __init__(self, task: Any, teacher: nn.Module, weight: float,
                 feature_layers: Optional[Callable[[nn.Module], List[nn.Module]]] = None) -> None:
        require_hooks(task)
        self.task, self.teacher, self.weight = task, teacher, weight
        self.feature_layers = feature_layers
        self.teacher_taps = FeatureTaps(feature_layers(teacher)) if feature_layers else None
        self.student_taps: Optional[FeatureTaps] = None
        self.checked = False

    def __getattr__(self, name: str) -> Any:
        return getattr(self.task, name)

    def loss(self, net: nn.Module, batch) -> torch.Tensor:
        if self.feature_layers is None:
            student, teacher = self.paired_outputs(net, batch)
            return blend(self.task, student, teacher, batch, self.weight)
        if self.student_taps is None:
            self.student_taps = FeatureTaps(self.feature_layers(getattr(net, "module", net)))
        with self.student_taps.recording() as ours, self.teacher_taps.recording() as theirs:
            student, teacher = self.paired_outputs(net, batch)
        loss = blend(self.task, student, teacher, batch, self.weight)
        return loss + self.weight * attention_loss(ours, theirs) if self.weight > 0 else loss

    def paired_outputs(self, net: nn.Module, batch):
        """The student's outputs and the teacher's (without gradients) for one batch."""
        student = self.task.outputs(net, batch)
        with torch.no_grad():
            teacher = self.task.teacher_outputs(self.teacher, batch)
        if not self.checked:
            check_shapes(student, teacher)
            self.checked = True
        return student, teacher


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
