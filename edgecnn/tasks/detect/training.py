"""Detection, the torch side: YOLO-txt / COCO-json / synthetic shapes, task-aligned loss,
COCO mAP, and the hooks the training and compression commands call for this task (the
same names in every task's training module)."""
from __future__ import annotations

from typing import Any, Dict, List, Optional, Sequence, Tuple

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F
from torch.utils.data import Dataset

from edgecnn.core.task import TaskTraining
from edgecnn.core.card import DEFAULT_MEAN, DEFAULT_STD, ModelCard
from edgecnn.data.augment import DetectAugment, mosaic
from edgecnn.data.base import random_subset
from edgecnn.data.detection import DetectionSet, ShapesImages, load_detection
from edgecnn.tasks.detect.metrics import coco_map
from edgecnn.core.errors import UserError
from edgecnn.models.detector import DEFAULT_TAP, DETECT_IMGSZ, NECK_CHANNELS
from edgecnn.runtime.heads import head_of
from edgecnn.tasks.detect.task import detect
from edgecnn.runtime.heads.ltrb_sigmoid import HEAD as EDGECNN_HEAD, cell_centres
from edgecnn.runtime.nms import NMS_IOU
from edgecnn.core.preprocess import preprocess, preprocess_batch
from edgecnn.tasks.detect.loss import DetectionLoss, decode_boxes, giou

# quantization-aware training: SGD learning rate (on the shapes detector with expansion taps,
# one epoch at 1e-3 left a 1.96-point drop, at 1e-4 0.96: benchmarks/RESULTS.md), and the
# batch the bundled model trained with
QAT_LR, QAT_BATCH = 1e-4, 16
# pruning's fine-tuning: the optimiser the detector trains with, at half its peak rate. On
# the shapes detector at 47% of its MACs in 5 epochs: mAP drop 2.94 points, against 6.21
# with SGD at 0.01 (benchmarks/RESULTS.md, "The shapes detector at 50% of its MACs")
PRUNE_OPTIMIZER, PRUNE_LR = "adamw", 0.006
# and its channels ranked by LAMP across the network: drop 1.77 and 1.99 points (seeds 0
# and 1) against 2.94 and 2.74 per layer by magnitude (the same RESULTS section)
PRUNE_IMPORTANCE, PRUNE_SCOPE = "lamp", "global"
# the usual COCO evaluation settings, with the NMS the runtime uses (as Ultralytics validates)
EVAL_CONF, EVAL_IOU, EVAL_MAX = 0.001, NMS_IOU, 100
PROBABILITY_EPS = 1e-4  # below half a step of an int8 probability (1/256)
# distillation: the teacher's boxes are targets where its best class probability reaches
# this (its scores are IoU-aware, so a well-placed box scores about its IoU)
DISTILL_CONFIDENCE = 0.5


def training_sizes(final: int, start: Optional[int], epochs: int) -> List[int]:
    """Input side per epoch: `final` throughout, or (progressive resizing, as in
    EfficientNetV2) one equal stage of epochs per size from `start` up to `final` in
    steps of 32; low-resolution epochs cost less, the last stage matches deployment."""
    if start is None or start >= final:
        return [final] * epochs
    stages = list(range(start, final + 1, 32))
    return [stages[epoch * len(stages) // epochs] for epoch in range(epochs)]


class TorchDetection(Dataset):
    """Augment (seeded per epoch and index), preprocess, and scale boxes to the input.
    `sizes` gives the input side per epoch (default: the card's input size). With
    probability `mosaic`, an image before epoch `mosaic_until` is a mosaic of four."""

    def __init__(self, data: DetectionSet, card: ModelCard, augment: Optional[DetectAugment], seed: int,
                 sizes: Optional[List[int]] = None, mosaic: float = 0.0, mosaic_until: int = 0) -> None:
        self.data, self.card, self.augment, self.seed, self.sizes = data, card, augment, seed, sizes
        self.mosaic, self.mosaic_until = mosaic, mosaic_until
        self.epoch = 0

    def __len__(self) -> int:
        return len(self.data)

    def input_size(self) -> Tuple[int, int]:
        if not self.sizes:
            return tuple(self.card.input_size)
        side = self.sizes[min(self.epoch, len(self.sizes) - 1)]
        return side, side

    def __getitem__(self, index: int):
        image, boxes, classes = self.data[index]
        if self.augment is not None:
            rng = np.random.default_rng([self.seed, self.epoch, index])
            if self.epoch < self.mosaic_until and rng.random() < self.mosaic:
                others = [self.data[int(i)] for i in rng.integers(len(self.data), size=3)]
                image, boxes, classes = mosaic([(image, boxes, classes), *others], rng, max(image.shape[:2]),
                                               min_visible=self.augment.min_visible, pad_value=self.augment.pad_value)
                image, boxes, classes = self.augment.finish(image, boxes, classes, rng)
            else:
                image, boxes, classes = self.augment(image, boxes, classes, rng)
        height, width = image.shape[:2]
        in_h, in_w = self.input_size()
        card = self.card if (in_h, in_w) == tuple(self.card.input_size) else self.card.replace(input_size=(in_h, in_w))
        scaled = np.asarray(boxes, np.float32).reshape(-1, 4) * np.array([in_w / width, in_h / height] * 2, np.float32)
        return (torch.from_numpy(preprocess(image, card)[0]), torch.from_numpy(scaled),
                torch.as_tensor(np.asarray(classes), dtype=torch.int64))


def collate(batch):
    """Stack images; pad each image's objects to the batch maximum with a validity mask."""
    images = torch.stack([b[0] for b in batch])
    most = max(1, max(len(b[2]) for b in batch))
    boxes = torch.zeros(len(batch), most, 4)
    classes = torch.full((len(batch), most), -1, dtype=torch.int64)
    for i, (_, b, c) in enumerate(batch):
        boxes[i, :len(c)] = b
        classes[i, :len(c)] = c
    return images, boxes, classes, classes >= 0


def predict_detections(predict, data: DetectionSet, card: ModelCard, indices: List[int], batch: int = 32,
                       conf: float = EVAL_CONF) -> list:
    """Run `predict` (preprocessed batch -> model outputs) and decode each image with the
    card's head (the runtime's decode and NMS)."""
    fit = head_of(card).preprocessing
    found = []
    for start in range(0, len(indices), batch):
        chunk = indices[start:start + batch]
        outputs = predict(preprocess_batch([data.images[i] for i in chunk], card, fit))
        for row, i in enumerate(chunk):
            found.append(detect(card, [o[row] for o in outputs], data.images[i].shape[:2], conf, EVAL_IOU, EVAL_MAX))
    return found


class DetectTraining:
    primary = "map50_95"

    def __init__(self, config, card: Optional[ModelCard] = None) -> None:
        strict = config.strict
        synthetic = config.data == "shapes"  # generated on demand: no need to draw images we would drop
        train_set = random_subset(load_detection(config.data, "train", strict, config.max_train_images if synthetic else None),
                           config.max_train_images, config.seed)
        self.val_set = random_subset(load_detection(config.data, "val", strict, config.max_val_images if synthetic else None),
                              config.max_val_images, config.seed)
        if self.val_set.labels != train_set.labels:
            raise UserError("train and val splits name different classes")
        self.summaries = [train_set.summary(), self.val_set.summary()]
        self.card = card or self.make_card(config, train_set)
        augment = DetectAugment() if config.augment else None
        final, options = tuple(self.card.input_size), config.task_options
        sizes = training_sizes(final[0], options.progressive_from, config.epochs) if final[0] == final[1] else None
        self.train_dataset = TorchDetection(train_set, self.card, augment, config.seed, sizes, options.mosaic,
                                            config.epochs - options.close_mosaic)
        self.collate = collate
        self.criterion = DetectionLoss(len(self.card.labels))

    @staticmethod
    def make_card(config, data: DetectionSet) -> ModelCard:
        imgsz = config.imgsz or DETECT_IMGSZ  # checked in edgecnn.training.train.check_config, before any data is loaded
        return ModelCard(task="detect", labels=data.labels, input_size=(imgsz, imgsz), layout="nchw",
                         color="rgb", mean=(DEFAULT_MEAN,) * 3, std=(DEFAULT_STD,) * 3,
                         architecture={"name": "detector", "backbone": config.model, "width": config.width,
                                       "neck": config.task_options.neck or NECK_CHANNELS,
                                       "tap": config.task_options.tap or DEFAULT_TAP},
                         head=EDGECNN_HEAD.config(""),
                         dataset={"name": config.data, "train_images": len(data)})

    def loss(self, net: nn.Module, batch) -> torch.Tensor:
        return self.loss_from_outputs(self.outputs(net, batch), batch)

    def outputs(self, net: nn.Module, batch):
        """Per level, the pre-sigmoid box (N, cells, 4) and class (N, cells, classes) logits
        of a model in training mode."""
        return net(batch[0].to(memory_format=torch.channels_last))

    def teacher_outputs(self, model: nn.Module, batch):
        """The same logits from a model in eval mode (whose forward gives probabilities)."""
        return model.logits(batch[0].to(memory_format=torch.channels_last))

    def loss_from_outputs(self, outputs, batch) -> torch.Tensor:
        return self.loss_from_logits(*outputs, batch)

    def from_deployed(self, outputs):
        """The deployed graph's outputs are probabilities (the sigmoid is inside the graph,
        so that an int8 graph quantizes it); their logits are recovered with the int8
        grid's extremes clamped off."""
        levels = len(outputs) // 2
        logits = [torch.logit(o.clamp(PROBABILITY_EPS, 1 - PROBABILITY_EPS)) for o in outputs]
        return logits[:levels], logits[levels:]

    def deployed_loss(self, outputs, batch) -> torch.Tensor:
        """The training loss on the deployed graph's outputs: what QAT minimises."""
        return self.loss_from_outputs(self.from_deployed(outputs), batch)

    def loss_from_logits(self, box_logits, class_logits, batch) -> torch.Tensor:
        loss, _ = self.criterion(box_logits, class_logits, self.centres(batch), self.card.input_size, *batch[1:])
        return loss

    def centres(self, batch) -> torch.Tensor:
        # box outputs are fractions of the card's input size at every training size, so
        # they stay in pixel units of the deployed input when the training size changes
        return torch.from_numpy(cell_centres(tuple(batch[0].shape[-2:]), tuple(self.card.head["strides"])))

    def distill_loss(self, student, teacher, batch) -> torch.Tensor:
        """The teacher's class maps and, where it is confident, its boxes: per cell and
        class, the binary KL of the student's probability from the teacher's (over the
        teacher's probability mass, as the label loss is over its targets'), plus the
        box loss's GIoU against the teacher's box, weighted by the teacher's confidence
        over cells where it reaches DISTILL_CONFIDENCE, with the label loss's box weight."""
        (student_boxes, student_classes), (teacher_boxes, teacher_classes) = student, teacher
        logits, target_logits = torch.cat(student_classes, 1), torch.cat(teacher_classes, 1)
        target = torch.sigmoid(target_logits)
        entropy = F.binary_cross_entropy_with_logits(target_logits, target, reduction="sum")
        class_kl = F.binary_cross_entropy_with_logits(logits, target, reduction="sum") - entropy
        class_loss = class_kl / target.sum().clamp(min=1.0)
        confidence = target.amax(-1)
        confident = confidence >= DISTILL_CONFIDENCE
        if not confident.any():
            return class_loss
        centres = self.centres(batch)
        ours = decode_boxes(torch.cat(student_boxes, 1), centres, self.card.input_size)[confident]
        theirs = decode_boxes(torch.cat(teacher_boxes, 1), centres, self.card.input_size)[confident]
        weights = confidence[confident]
        box_loss = ((1 - giou(ours, theirs)) * weights).sum() / weights.sum()
        return class_loss + self.criterion.box_weight * box_loss

    @torch.no_grad()
    def validate(self, model: nn.Module, ctx) -> Dict[str, float]:
        model.eval()
        indices = list(range(ctx.rank, len(self.val_set), ctx.world))

        def predict(batch):
            return [o.numpy() for o in model(torch.from_numpy(batch).to(memory_format=torch.channels_last))]

        found = dict(zip(indices, predict_detections(predict, self.val_set, self.card, indices)))
        found = ctx.gather(found)
        predictions = [found[i] for i in range(len(self.val_set))]
        report = coco_map(self.card.labels, self.val_set.boxes, self.val_set.classes, predictions)
        return {"map50_95": report["map50_95"], "map50": report["map50"], "images": len(self.val_set)}


# ---- the hooks edgecnn.training and edgecnn.compress call (same names in every task)

def make_training(config, card: Optional[ModelCard] = None) -> DetectTraining:
    return DetectTraining(config, card)


def check_config(config) -> None:
    """Options that constrain a detector."""
    options = config.task_options
    if not config.model.startswith("mobilenet"):
        raise UserError(f"detectors use a MobileNet backbone, got {config.model!r}")
    if config.imgsz is not None and (config.imgsz < 64 or config.imgsz % 32):
        raise UserError(f"--imgsz for detection must be a multiple of 32 and >= 64, got {config.imgsz}")
    if not 0 <= options.mosaic <= 1 or options.close_mosaic < 0:
        raise UserError(f"--mosaic is a probability for detectors (0..1, --task detect) and --close-mosaic "
                        f">= 0, got {options.mosaic} and {options.close_mosaic}")
    if options.neck is not None and options.neck < 8:
        raise UserError(f"--neck is the detector's neck width (>= 8, --task detect), got {options.neck}")
    if options.progressive_from is not None:
        final = config.imgsz or DETECT_IMGSZ
        if options.progressive_from < 64 or options.progressive_from % 32 or options.progressive_from > final:
            raise UserError(f"--progressive-from must be a multiple of 32 between 64 and --imgsz ({final}), "
                            f"got {options.progressive_from}")


def build_model(card: ModelCard) -> nn.Module:
    from edgecnn.models.detector import MobileNetDetector

    arch = card.architecture
    return MobileNetDetector(card.num_classes, arch.get("backbone", "mobilenet_v2"), float(arch.get("width", 0.5)),
                             card.channels, int(arch.get("neck", 96)), arch.get("tap", "block"))


def output_layers(model: nn.Module) -> List[nn.Module]:
    """Layers whose output channels are the model's outputs (classes, box sides)."""
    return [conv for head in model.heads for conv in (head.classes, head.box)]


def feature_layers(model: nn.Module) -> List[nn.Module]:
    """Each level head's stem, whose map its class and box convolutions read."""
    return [head.stem for head in model.heads]


def load_images(data_spec: str, split: str) -> Sequence[np.ndarray]:
    if data_spec == "shapes":
        return ShapesImages(split)
    return load_detection(data_spec, split).images


def on_labels(found, labels: List[str]):
    """Detections re-indexed onto a dataset's labels by name (a model trained elsewhere may
    name more classes, in another order); classes the dataset lacks are dropped."""
    if list(found.labels) == list(labels):
        return found
    index = {name: i for i, name in enumerate(labels)}
    if not set(index) & set(found.labels):
        raise UserError(f"the model's labels ({', '.join(found.labels[:8])}...) share no name with the dataset's "
                        f"({', '.join(labels)})")
    mapped = np.array([index.get(found.labels[c], -1) for c in found.classes], np.int64)
    keep = mapped >= 0
    return type(found)(found.boxes[keep], found.scores[keep], mapped[keep], list(labels))


def evaluate(predict, card: ModelCard, data_spec: str, split: str = "val", plot: Optional[str] = None,
             model_path: str = "model", strict: bool = False) -> Dict[str, Any]:
    """COCO mAP (faster-coco-eval) and per-class AP; a PNG of predictions on a few images
    unless plot == ''."""
    from pathlib import Path

    data = load_detection(data_spec, split, strict)
    found = [on_labels(d, data.labels) for d in predict_detections(predict, data, card, list(range(len(data))))]
    report = coco_map(data.labels, data.boxes, data.classes, found)
    report.update(dataset=data_spec, split=data.split, model=str(model_path),
                  problems=[str(p) for p in data.problems])
    if plot != "":
        from edgecnn.core.plots import save_detections_png

        plot_path = Path(plot) if plot else Path(model_path).with_name(
            f"{Path(model_path).stem}-{data.split}-predictions.png")
        shown = list(range(min(8, len(data))))
        save_detections_png([data.images[i] for i in shown], [data.boxes[i] for i in shown],
                            [data.classes[i] for i in shown], [found[i] for i in shown], data.labels, plot_path)
        report["predictions_png"] = str(plot_path)
    return report


def format_report(report: Dict[str, Any]) -> str:
    from edgecnn.tasks.detect.metrics import format_map_report

    lines = [format_map_report(report)]
    lines.extend(f"skipped: {problem}" for problem in report["problems"])
    lines.append(f"predictions: {report['predictions_png']}" if report.get("predictions_png") else "")
    return "\n".join(lines)


def taylor_loss(card: ModelCard, data_spec: str):
    raise UserError("--importance taylor needs a classification loss; use magnitude for detectors")


def write_shapes(out: str, split: str, seed: int, imgsz: Optional[int], count: Optional[int],
                 min_visible: Optional[float] = None) -> int:
    """`edgecnn shapes --task detect`: the synthetic scenes in YOLO format."""
    from edgecnn.data.detection import MIN_VISIBLE, load_shapes_detection, write_yolo

    if min_visible is not None and not 0 < min_visible <= 1:
        raise UserError("--min-visible is a fraction in (0, 1] for --task detect")
    data = load_shapes_detection(split, seed, imgsz or 192, count, min_visible=min_visible or MIN_VISIBLE)
    write_yolo(data, out, split)
    return len(data)


class DetectTaskTraining(TaskTraining):
    """The detect task's torch side, as edgecnn.core.task.TaskTraining asks for it."""

    QAT_LR, QAT_BATCH = QAT_LR, QAT_BATCH
    PRUNE_OPTIMIZER, PRUNE_LR = PRUNE_OPTIMIZER, PRUNE_LR
    PRUNE_IMPORTANCE, PRUNE_SCOPE = PRUNE_IMPORTANCE, PRUNE_SCOPE
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


TRAINING = DetectTaskTraining()
