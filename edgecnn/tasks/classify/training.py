"""Classification, the torch side: ImageFolder / digits / shapes data, cross-entropy,
top-1 accuracy, and the hooks the training and compression commands call for this task
(the same names in every task's training module)."""
from __future__ import annotations

from typing import Any, Callable, Dict, List, Optional

import numpy as np
import torch
from torch import nn
from torch.utils.data import Dataset

from edgecnn.core.task import TaskTraining
from edgecnn.core.card import DEFAULT_MEAN, DEFAULT_STD, ModelCard
from edgecnn.data import ClassificationSet, load_classification
from edgecnn.data.base import random_subset
from edgecnn.data.augment import ClassifyAugment
from edgecnn.core.errors import UserError
from edgecnn.core.preprocess import preprocess, preprocess_batch


# quantization-aware training: SGD learning rate, and the batch the bundled model trained with
QAT_LR, QAT_BATCH = 1e-3, 32
# distillation: the softmax temperature of teacher and student (Hinton et al. use 2-20; the
# common choice for small classifiers, not tuned here)
DISTILL_TEMPERATURE = 4.0


class TorchClassification(Dataset):
    """Augment (seeded per epoch and index), then the shared preprocessing."""

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


class ClassifyTraining:
    primary = "top1"

    def __init__(self, config, card: Optional[ModelCard] = None) -> None:
        train_set = random_subset(load_classification(config.data, "train"), config.max_train_images, config.seed)
        self.val_set = random_subset(load_classification(config.data, "val", labels=train_set.labels),
                              config.max_val_images, config.seed)
        self.card = card or self.make_card(config, train_set)
        augment = ClassifyAugment(hflip=train_set.info.hflip) if config.augment else None
        self.train_dataset = TorchClassification(train_set, self.card, augment, config.seed)
        self.collate = None
        self.criterion = nn.CrossEntropyLoss(label_smoothing=config.label_smoothing)

    @staticmethod
    def make_card(config, data: ClassificationSet) -> ModelCard:
        imgsz = config.imgsz or data.info.default_imgsz
        if imgsz < 32:
            raise UserError(f"--imgsz must be >= 32, got {imgsz}")
        channels = 1 if data.info.color == "gray" else 3
        return ModelCard(task="classify", labels=data.labels, input_size=(imgsz, imgsz), layout="nchw",
                         color=data.info.color, mean=(DEFAULT_MEAN,) * channels, std=(DEFAULT_STD,) * channels,
                         architecture={"name": config.model, "width": config.width},
                         dataset={"name": config.data, "train_images": len(data)})

    def loss(self, net: nn.Module, batch) -> torch.Tensor:
        return self.loss_from_outputs(self.outputs(net, batch), batch)

    def outputs(self, net: nn.Module, batch) -> torch.Tensor:
        """The logits (N, classes) of a model in training mode."""
        return net(batch[0].to(memory_format=torch.channels_last))

    def teacher_outputs(self, model: nn.Module, batch) -> torch.Tensor:
        """The logits of a model in eval mode (a classifier's are the same in both modes)."""
        return self.outputs(model, batch)

    def loss_from_outputs(self, logits: torch.Tensor, batch) -> torch.Tensor:
        return self.criterion(logits, batch[1])

    def from_deployed(self, outputs) -> torch.Tensor:
        """The deployed graph's outputs (logits) in training form."""
        return outputs[0] if isinstance(outputs, (list, tuple)) else outputs

    def deployed_loss(self, outputs, batch) -> torch.Tensor:
        """The training loss on the deployed graph's outputs (logits): what QAT minimises."""
        return self.loss_from_outputs(self.from_deployed(outputs), batch)

    def distill_loss(self, student: torch.Tensor, teacher: torch.Tensor, batch) -> torch.Tensor:
        """KL(teacher || student) of the class distributions softened by DISTILL_TEMPERATURE,
        times its square so that the gradients keep the label loss's scale (Hinton et al.)."""
        return softened_kl(student, teacher, DISTILL_TEMPERATURE, dim=1)

    @torch.no_grad()
    def validate(self, model: nn.Module, ctx, batch: int = 256) -> Dict[str, float]:
        """Top-1 on the val split; each rank scores a shard and the counts are summed."""
        model.eval()
        shard = self.val_set.take(range(ctx.rank, len(self.val_set), ctx.world))

        def predict(x: np.ndarray) -> np.ndarray:
            return model(torch.from_numpy(x).to(memory_format=torch.channels_last)).numpy()

        correct = int((predict_dataset(predict, shard, self.card, batch) == shard.targets).sum())
        total_correct, total = ctx.sum([correct, len(shard)])
        return {"top1": total_correct / max(1, total), "images": int(total)}


def softened_kl(student: torch.Tensor, teacher: torch.Tensor, temperature: float, dim: int) -> torch.Tensor:
    """KL(softmax(teacher / T) || softmax(student / T)) * T^2 along `dim`, averaged over
    every other position (images; pixels of a class map)."""
    log_student = torch.log_softmax(student / temperature, dim)
    log_teacher = torch.log_softmax(teacher / temperature, dim)
    per_position = (log_teacher.exp() * (log_teacher - log_student)).sum(dim)
    return per_position.mean() * temperature ** 2


def predict_dataset(predict: Callable[[np.ndarray], np.ndarray], data: ClassificationSet,
                    card: ModelCard, batch: int = 256) -> np.ndarray:
    """Class index per image; `predict` maps a preprocessed batch to scores (N, classes)."""
    predictions = []
    for start in range(0, len(data), batch):
        images = data.images[start:start + batch]
        scores = predict(preprocess_batch(images, card))
        if isinstance(scores, (list, tuple)):  # a predictor that gives every output (model files): the one
            scores = scores[0]
        predictions.append(np.asarray(scores).argmax(1))
    return np.concatenate(predictions) if predictions else np.zeros(0, np.int64)


# ---- the hooks edgecnn.training and edgecnn.compress call (same names in every task)

def make_training(config, card: Optional[ModelCard] = None) -> ClassifyTraining:
    return ClassifyTraining(config, card)


def check_config(config) -> None:
    """A classifier takes no options of its own: the common checks are all."""


def build_model(card: ModelCard) -> nn.Module:
    from edgecnn.models import build_model as build

    return build(card.architecture["name"], num_classes=card.num_classes,
                 width=float(card.architecture.get("width", 1.0)), in_channels=card.channels)


def output_layers(model: nn.Module) -> List[nn.Module]:
    """Layers whose output channels are the model's outputs (pruning keeps them whole)."""
    return [[m for m in model.modules() if isinstance(m, (nn.Linear, nn.Conv2d))][-1]]


def feature_layers(model: nn.Module) -> List[nn.Module]:
    """The feature stack whose last map the classifier pools (a classifier without one
    has no spatial features to match)."""
    features = getattr(model, "features", None)
    if not isinstance(features, nn.Module):
        raise UserError(f"{type(model).__name__} has no feature stack to distil from; use --distill logits")
    return [features]


def load_images(data_spec: str, split: str) -> list:
    return load_classification(data_spec, split).images


def evaluate(predict, card: ModelCard, data_spec: str, split: str = "val", plot: Optional[str] = None,
             model_path: str = "model", strict: bool = False) -> Dict[str, Any]:
    """Top-1 with a per-class table; a confusion-matrix PNG unless plot == ''."""
    from pathlib import Path

    from edgecnn.tasks.classify.metrics import classification_report

    data = load_classification(data_spec, split, labels=card.labels)
    if data.labels != card.labels:
        raise ValueError("dataset labels differ from the model's")
    report = classification_report(data.targets, predict_dataset(predict, data, card), card.labels)
    report.update(dataset=data_spec, split=data.split)
    if plot != "":
        from edgecnn.core.plots import save_confusion_png

        plot_path = Path(plot) if plot else Path(model_path).with_name(
            f"{Path(model_path).stem}-{report['split']}-confusion.png")
        save_confusion_png(np.array(report["confusion"]), card.labels, plot_path,
                           f"{Path(model_path).name} on {data_spec}/{report['split']}: "
                           f"top-1 {100 * report['top1']:.2f}%")
        report["confusion_png"] = str(plot_path)
    return report


def format_report(report: Dict[str, Any]) -> str:
    from edgecnn.tasks.classify.metrics import format_report as table

    lines = [table(report)]
    if report.get("confusion_png"):
        lines.append(f"confusion matrix: {report['confusion_png']}")
    return "\n".join(lines)


def taylor_loss(card: ModelCard, data_spec: str):
    """One labelled training batch's loss, which Taylor importance needs gradients of."""
    data = load_classification(data_spec, "train").take(range(64))
    x = torch.from_numpy(preprocess_batch(data.images, card))
    y = torch.as_tensor(data.targets)
    return lambda model: nn.functional.cross_entropy(model(x), y)


def write_shapes(out: str, split: str, seed: int, imgsz: Optional[int], count: Optional[int],
                 min_visible: Optional[float] = None) -> int:
    """`edgecnn shapes --task classify`: the synthetic set as an ImageFolder."""
    from edgecnn.data.folder import write_folder
    from edgecnn.data.shapes import load_shapes

    if min_visible is not None:
        raise UserError("--min-visible is a fraction in (0, 1] for --task detect")
    data = load_shapes(split, seed, imgsz or 64, count)
    write_folder(data, out)
    return len(data)


class ClassifyTaskTraining(TaskTraining):
    """The classify task's torch side, as edgecnn.core.task.TaskTraining asks for it."""

    QAT_LR, QAT_BATCH = QAT_LR, QAT_BATCH
    make_training = staticmethod(make_training)
    check_config = staticmethod(check_config)
    build_model = staticmethod(build_model)
    load_images = staticmethod(load_images)
    evaluate = staticmethod(evaluate)
    format_report = staticmethod(format_report)
    output_layers = staticmethod(output_layers)
    feature_layers = staticmethod(feature_layers)
    taylor_loss = staticmethod(taylor_loss)
    write_shapes = staticmethod(write_shapes)


TRAINING = ClassifyTaskTraining()
