"""The task seam: each task (classify, detect, ...) is one package here.

A task package holds:
- `task.py`: a `TASK` object (a `Task` subclass, torch-free): its card checks, what a
  model without a card must be told, how its outputs are checked and turned into its
  result type, how two models' outputs are compared for parity, and its metric names.
  The runtime, the converters and the CLI look tasks up here instead of branching on
  the task's name.
- `result.py`: the result type a robot program gets (iterable per object, JSON form,
  drawing).
- `training.py` (torch): datasets, loss, validation, evaluation, the model builder;
  imported only by the training and compression side (`Task.training()`).

`get_task(name)` finds a task; an unknown name is one line listing the known ones.
"""
from __future__ import annotations

from typing import Any, Dict, List, Optional, Sequence, Tuple

import numpy as np

from edgecnn.core.registry import Registry

_TASKS = Registry("edgecnn.tasks", "TASK", "task", submodule="task")


def task_names() -> List[str]:
    return _TASKS.names()


def get_task(name: str) -> "Task":
    return _TASKS.get(name)


class Task:
    """What the rest of edgecnn asks of a task (subclass per task package)."""

    name = ""
    primary_metric = ""  # the report key the accuracy gate compares, a fraction 0..1
    metric_label = ""  # how people name it
    default_data = ""  # dataset when --data is not given
    default_width = 1.0  # width multiplier when --width is not given
    agreement_kind = ""  # what `agreement` measures, for parity reports

    def card_defaults(self) -> Dict[str, Any]:
        """Card fields a model of this task gets when nothing says otherwise."""
        return {}

    def labels_from_outputs(self, shapes: Sequence[Tuple[int, ...]]) -> Optional[List[str]]:
        """Labels read off a model's output shapes when none are given (None: cannot)."""
        return None

    def check_card(self, card) -> List[str]:
        """Problems with task-specific card fields (empty: fine)."""
        return []

    def missing_flags(self, given: Dict[str, Any]) -> List[str]:
        """Flags a model without a card must get for this task beyond the common ones."""
        return []

    def preprocessing(self, card) -> str:
        """'resize' (the whole frame stretched to the input) or 'letterbox'."""
        return "resize"

    def check_outputs(self, card, shapes: Sequence[Tuple[int, ...]], model_name: str) -> None:
        """Raise UserError when the model's output shapes do not fit the card."""
        raise NotImplementedError

    def interpret(self, card, outputs: Sequence[np.ndarray], image_size: Tuple[int, int], *,
                  conf: float, iou: float, max_results: int = 100):
        """Outputs of ONE image (batch dimension kept) -> the task's result, in frame pixels."""
        raise NotImplementedError

    def agreement(self, card, reference: Sequence[np.ndarray], converted: Sequence[np.ndarray],
                  image_sizes: Sequence[Tuple[int, int]]) -> float:
        """Share (0..1) of answers two models' batched outputs agree on (parity reports)."""
        raise NotImplementedError

    def output_names(self, card, count: int) -> List[str]:
        """Names of the model's outputs in exported files."""
        return ["scores"] if count == 1 else [f"output{i}" for i in range(count)]

    def training(self):
        """The task's torch side (edgecnn.tasks.<name>.training), imported on first use."""
        import importlib

        return importlib.import_module(f"edgecnn.tasks.{self.name}.training")
