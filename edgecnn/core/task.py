"""The task seam: what every task (classify, detect, segment, ...) supplies, and the
registry that finds them. A task is one package under edgecnn/tasks/ (its `task.py`
exposes `TASK`); nothing else in edgecnn branches on a task's name. The runtime, the
converters, the schema, the CLI and the training side ask the task instead:

- card defaults and checks, and what a model without a card must be told;
- how outputs are checked and interpreted into its result type;
- its capabilities (`trackable`, `has_masks`, `has_keypoints`);
- its metrics, their names and how they print;
- its fragment of the result schema and the options its records take;
- its training options, as a group of its own, and its torch side (`training()`),
  which implements `TaskTraining`.

This module sits in the bottom layer: the registry names task packages by string, so
the layers above ask for a task without importing it.
"""
from __future__ import annotations

import dataclasses
import importlib
from dataclasses import dataclass
from typing import Any, Dict, List, Optional, Sequence, Tuple

import numpy as np

from edgecnn.core.registry import Registry

_TASKS = Registry("edgecnn.tasks", "TASK", "task", submodule="task")


def task_names() -> List[str]:
    return _TASKS.names()


def get_task(name: str) -> "Task":
    return _TASKS.get(name)


def all_tasks() -> List["Task"]:
    return _TASKS.all()


@dataclass(frozen=True)
class Metric:
    """One metric a task reports: how people name it, and whether it is a fraction shown
    in percent."""

    label: str
    percent: bool = True

    def format(self, value: float) -> str:
        return f"{100 * value:.2f}%" if self.percent else f"{value:.4g}"


def metric(key: str) -> Optional[Metric]:
    """The metric a key names in any task (metrics carry their key in cards and reports)."""
    for task in all_tasks():
        if key in task.metrics:
            return task.metrics[key]
    return None


def format_metric(key: str, value: Any) -> str:
    """'top1 98.50%' for a known metric, 'key value' otherwise."""
    spec = metric(key)
    if spec is None or not isinstance(value, (int, float)):
        return f"{key} {value}"
    return f"{key} {spec.format(float(value))}"


def record_option_specs() -> Dict[str, Dict[str, Any]]:
    """Every task's record options (`edgecnn run` adds them as flags): name -> argparse
    keyword arguments."""
    return {name: spec for task in all_tasks() for name, spec in task.record_options.items()}


def primary_metrics() -> List[str]:
    """Every task's gate metric, in task order: what a card's accuracy is read as."""
    return [task.primary_metric for task in all_tasks()]


class Task:
    """What the rest of edgecnn asks of a task (subclass per task package)."""

    name = ""
    people_name = ""  # what its models are called in messages: "detectors"
    primary_metric = ""  # the report key the accuracy gate compares, a fraction 0..1
    metric_label = ""  # how people name it
    metrics: Dict[str, Metric] = {}  # every metric it reports, primary first
    default_data = ""  # dataset when --data is not given
    default_width = 1.0  # width multiplier when --width is not given
    agreement_kind = ""  # what `agreement` measures, for parity reports
    # capabilities: what the runtime may do with its results
    trackable = False  # results have boxes a tracker can follow
    has_masks = False  # results carry per-pixel labels
    has_keypoints = False  # results carry keypoints
    # the options its records take (argparse keyword arguments by option name, on `run`)
    record_options: Dict[str, Dict[str, Any]] = {}
    # its training options: a dataclass whose fields (with argparse settings in each
    # field's metadata) are the `train` command's options for this task
    train_options: Optional[type] = None

    def card_defaults(self) -> Dict[str, Any]:
        """Card fields a model of this task gets when nothing says otherwise."""
        return {}

    def labels_from_outputs(self, shapes: Sequence[Tuple[int, ...]]) -> Optional[List[str]]:
        """Labels read off a model's output shapes when none are given (None: cannot)."""
        return None

    def recognises_outputs(self, shapes: Sequence[Tuple[int, ...]]) -> bool:
        """Whether a file without a card whose outputs no head claims is of this task
        judging by its output shapes alone (a classifier's one score vector)."""
        return False

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

    def schema_fields(self) -> Dict[str, Any]:
        """JSON Schema properties its frame records add to the common ones."""
        return {}

    def format_metrics(self, metrics: Dict[str, Any]) -> str:
        """Its reported metrics as one line, primary first."""
        return ", ".join(format_metric(key, metrics[key]) for key in self.metrics if key in metrics)

    def train_option_defaults(self) -> Any:
        """Its training options at their defaults (None: it has none)."""
        return self.train_options() if self.train_options is not None else None

    def training(self) -> "TaskTraining":
        """The task's torch side (edgecnn.tasks.<name>.training's TRAINING), imported on
        first use and checked against the TaskTraining interface."""
        module = importlib.import_module(f"edgecnn.tasks.{self.name}.training")
        training = getattr(module, "TRAINING", None)
        missing = missing_members(training)
        if missing:
            raise TypeError(f"edgecnn.tasks.{self.name}.training.TRAINING lacks {', '.join(missing)}")
        return training


class TaskTraining:
    """The torch side of a task, what training, evaluation, pruning, quantization and
    `edgecnn shapes` call. Each task's training module defines a subclass and exposes an
    instance as TRAINING; every method here must be implemented."""

    QAT_LR: float = 0.0  # quantization-aware training: learning rate
    QAT_BATCH: int = 0  # and batch size
    # edgecnn prune without --importance/--scope/--optimizer/--lr: how channels are
    # ranked, and the fine-tuning's optimiser and learning rate
    PRUNE_IMPORTANCE: str = "magnitude"
    PRUNE_SCOPE: str = "layer"
    PRUNE_OPTIMIZER: str = "sgd"
    PRUNE_LR: float = 0.01

    def make_training(self, config, card=None):
        """The training object for a TrainConfig (its card: a new one, or a resumed one)."""
        raise NotImplementedError

    def check_config(self, config) -> None:
        """Raise UserError for TrainConfig values (common or this task's options) that cannot work."""
        raise NotImplementedError

    def build_model(self, card):
        """An untrained model of the card's architecture."""
        raise NotImplementedError

    def load_images(self, data_spec: str, split: str) -> list:
        """A dataset split's images (calibration and checks)."""
        raise NotImplementedError

    def evaluate(self, predict, card, data_spec: str, split: str = "val", plot: Optional[str] = None,
                 model_path: str = "model", strict: bool = False) -> Dict[str, Any]:
        """The task's metrics of `predict` on a dataset split (a report dict)."""
        raise NotImplementedError

    def format_report(self, report: Dict[str, Any]) -> str:
        """An evaluation report as text for people."""
        raise NotImplementedError

    def output_layers(self, model) -> list:
        """Layers whose output channels are the model's outputs (pruning keeps them whole)."""
        raise NotImplementedError

    def feature_layers(self, model) -> list:
        """The modules whose outputs are the model's last feature maps before its output
        layers: what `--distill features` matches between student and teacher."""
        raise NotImplementedError

    def taylor_loss(self, card, data_spec: str):
        """The loss Taylor importance is computed from."""
        raise NotImplementedError

    def write_shapes(self, out: str, split: str, seed: int, imgsz: Optional[int], count: Optional[int],
                     min_visible: Optional[float]) -> int:
        """Write the synthetic shapes set of this task; the number of images written."""
        raise NotImplementedError


def missing_members(training: Any) -> List[str]:
    """TaskTraining members `training` does not implement (its class must override each)."""
    if training is None:
        return ["TRAINING"]
    missing = []
    for name, value in vars(TaskTraining).items():
        if name.startswith("_"):
            continue
        if callable(value) and getattr(type(training), name, value) is value:
            missing.append(name)
        elif not callable(value) and not getattr(training, name, 0):
            missing.append(name)
    return missing


def train_option_fields() -> Dict[str, List[Tuple["Task", dataclasses.Field]]]:
    """Every task's training options by name: the tasks that take each, with its field."""
    found: Dict[str, List[Tuple[Task, dataclasses.Field]]] = {}
    for task in all_tasks():
        if task.train_options is not None:
            for option in dataclasses.fields(task.train_options):
                found.setdefault(option.name, []).append((task, option))
    return found


def build_train_options(task: "Task", given: Dict[str, Any]) -> Any:
    """The task's training options from the values given (None: not given); an option
    of other tasks only is one line naming the tasks that take it."""
    from edgecnn.core.errors import UserError

    fields = train_option_fields()
    mine = {option.name for option in dataclasses.fields(task.train_options)} if task.train_options else set()
    for name, value in given.items():
        if value is None or name in mine:
            continue
        takers = [owner for owner, _ in fields.get(name, [])]
        if not takers:
            raise UserError(f"unknown training option {name!r}")
        people = " and ".join(owner.people_name or owner.name for owner in takers)
        raise UserError(f"--{name.replace('_', '-')} is for {people} (--task {'|'.join(t.name for t in takers)})")
    if task.train_options is None:
        return None
    return task.train_options(**{k: v for k, v in given.items() if v is not None})


def task_options_of(config) -> Dict[str, Any]:
    """A TrainConfig's task options as a dict (empty when the task has none)."""
    options = getattr(config, "task_options", None)
    return dataclasses.asdict(options) if dataclasses.is_dataclass(options) else {}
