"""Segmentation, the torch side: mask PNG / YOLO-seg / synthetic shapes data, flips and
right-angle turns as augmentation, cross-entropy + Dice, mIoU, and the hooks the
training and compression commands call for this task (the same names in every task's
training module)."""
from __future__ import annotations

from typing import Any, Dict, List, Optional, Sequence

import numpy as np
import torch
from torch import nn
from torch.utils.data import Dataset

from edgecnn.core.task import TaskTraining
from edgecnn.core.card import DEFAULT_MEAN, DEFAULT_STD, ModelCard
from edgecnn.core.errors import UserError
from edgecnn.core.preprocess import preprocess, preprocess_batch
from edgecnn.data.base import random_subset
from edgecnn.data.detection import ShapesImages
from edgecnn.data.segmentation import SegmentationSet, load_segmentation
from edgecnn.models.segmenter import DECODERS, DEFAULT_DECODER, HEAD_CHANNELS, MIN_INPUT, SEGMENT_IMGSZ
from edgecnn.tasks.classify.training import softened_kl
from edgecnn.tasks.detect.training import training_sizes
from edgecnn.tasks.segment.loss import SegmentationLoss
from edgecnn.tasks.segment.metrics import ConfusionMatrix, iou_report
from edgecnn.tasks.segment.task import TASK, segment

# quantization-aware training: SGD learning rate and batch (the detector's settings;
# not tuned for segmenters)
QAT_LR, QAT_BATCH = 1e-4, 16
# pruning's fine-tuning: the optimiser the segmenter trains with. The shapes segmenter at
# 49% of its MACs in 10 epochs: mIoU drop 0.44 points, against 2.33 with SGD at 0.02
# (benchmarks/RESULTS.md, "The shapes segmenter at 50% of its MACs")
PRUNE_OPTIMIZER, PRUNE_LR = "adamw", 0.006
# and its channels ranked by LAMP across the network: mIoU 0.31 and 0.45 points above the
# unpruned model (seeds 0 and 1), against drops of 0.44 and 0.24 per layer by magnitude
# (the same RESULTS section)
PRUNE_IMPORTANCE, PRUNE_SCOPE = "lamp", "global"
# distillation: per-pixel KL at temperature 1, as in the segmentation distillation literature
# (Liu et al., 2019, structured knowledge distillation)
DISTILL_TEMPERATURE = 1.0


def augment_pair(image: np.ndarray, mask: np.ndarray, rng: np.random.Generator):
    """Flips and right-angle turns: exact for masks (no resampling), and label-preserving
    for scenes seen from above or at any angle. Colour is left alone."""
    turns = int(rng.integers(4))
    if turns:
        image, mask = np.rot90(image, turns), np.rot90(mask, turns)
    if rng.random() < 0.5:
        image, mask = image[:, ::-1], mask[:, ::-1]
    return np.ascontiguousarray(image), np.ascontiguousarray(mask)


def target_at(mask: np.ndarray, size) -> np.ndarray:
    import cv2

    height, width = size
    return mask if mask.shape == (height, width) else cv2.resize(mask, (width, height),
                                                                 interpolation=cv2.INTER_NEAREST)


class TorchSegmentation(Dataset):
    """Augment (seeded per epoch and index), preprocess, and bring the mask to the input
    size. `sizes` gives the input side per epoch (progressive resizing, as for detectors;
    default: the card's input size throughout)."""

    def __init__(self, data: SegmentationSet, card: ModelCard, augment: bool, seed: int,
                 sizes: Optional[List[int]] = None) -> None:
        self.data, self.card, self.augment, self.seed, self.sizes = data, card, augment, seed, sizes
        self.epoch = 0

    def __len__(self) -> int:
        return len(self.data)

    def __getitem__(self, index: int):
        image, mask = self.data[index]
        if self.augment:
            image, mask = augment_pair(image, mask, np.random.default_rng([self.seed, self.epoch, index]))
        card = self.card
        if self.sizes:
            side = self.sizes[min(self.epoch, len(self.sizes) - 1)]
            card = card if (side, side) == tuple(card.input_size) else card.replace(input_size=(side, side))
        blob = preprocess(image, card, TASK.preprocessing(card))[0]
        return torch.from_numpy(blob), torch.from_numpy(target_at(mask, card.input_size).astype(np.int64))


def predict_masks(predict, data: SegmentationSet, card: ModelCard, indices: List[int], batch: int = 32):
    """Run `predict` (preprocessed batch -> outputs) and read each image's class map at
    its own size (the runtime's reading); yields (index, class map)."""
    fit = TASK.preprocessing(card)
    for start in range(0, len(indices), batch):
        chunk = indices[start:start + batch]
        outputs = predict(preprocess_batch([data.images[i] for i in chunk], card, fit))
        outputs = outputs if isinstance(outputs, (list, tuple)) else [outputs]
        for row, i in enumerate(chunk):
            yield i, segment(card, [o[row:row + 1] for o in outputs], data.images[i].shape[:2]).class_map


def confusion_of(predict, data: SegmentationSet, card: ModelCard, indices: List[int]) -> ConfusionMatrix:
    matrix = ConfusionMatrix(len(card.labels))
    for i, class_map in predict_masks(predict, data, card, indices):
        matrix.add(data.masks[i], class_map)
    return matrix


class SegmentTraining:
    primary = "miou"

    def __init__(self, config, card: Optional[ModelCard] = None) -> None:
        synthetic = config.data == "shapes"  # generated on demand: no need to draw images we would drop
        train_set = random_subset(load_segmentation(config.data, "train", config.strict,
                                                    config.max_train_images if synthetic else None),
                                  config.max_train_images, config.seed)
        self.val_set = random_subset(load_segmentation(config.data, "val", config.strict,
                                                       config.max_val_images if synthetic else None),
                                     config.max_val_images, config.seed)
        if self.val_set.labels != train_set.labels:
            raise UserError("train and val splits name different labels")
        self.summaries = [train_set.summary(), self.val_set.summary()]
        self.card = card or self.make_card(config, train_set)
        final = tuple(self.card.input_size)
        start = config.task_options.progressive_from
        sizes = training_sizes(final[0], start, config.epochs) if final[0] == final[1] else None
        self.train_dataset = TorchSegmentation(train_set, self.card, config.augment, config.seed, sizes)
        self.collate = None
        self.criterion = SegmentationLoss(len(self.card.labels))

    @staticmethod
    def make_card(config, data: SegmentationSet) -> ModelCard:
        imgsz = config.imgsz or SEGMENT_IMGSZ
        return ModelCard(task="segment", labels=data.labels, input_size=(imgsz, imgsz), layout="nchw",
                         color="rgb", mean=(DEFAULT_MEAN,) * 3, std=(DEFAULT_STD,) * 3,
                         architecture={"name": "segmenter", "backbone": config.model, "width": config.width,
                                       "decoder": config.task_options.decoder or DEFAULT_DECODER,
                                       "channels": config.task_options.neck or HEAD_CHANNELS},
                         dataset={"name": config.data, "train_images": len(data)})

    def loss(self, net: nn.Module, batch) -> torch.Tensor:
        return self.loss_from_outputs(self.outputs(net, batch), batch)

    def outputs(self, net: nn.Module, batch) -> torch.Tensor:
        """The (N, labels, H, W) logits of a model in training mode."""
        return net(batch[0].to(memory_format=torch.channels_last))

    def teacher_outputs(self, model: nn.Module, batch) -> torch.Tensor:
        """The same logits from a model in eval mode (whose forward is channel-last)."""
        return model.logits(batch[0].to(memory_format=torch.channels_last))

    def loss_from_outputs(self, logits: torch.Tensor, batch) -> torch.Tensor:
        return self.criterion(logits, batch[1])

    def from_deployed(self, outputs) -> torch.Tensor:
        """The deployed graph's output, channel-last logits, in training form."""
        logits = outputs[0] if isinstance(outputs, (list, tuple)) else outputs
        return logits.permute(0, 3, 1, 2)

    def deployed_loss(self, outputs, batch) -> torch.Tensor:
        """The training loss on the deployed graph's output: what QAT minimises."""
        return self.loss_from_outputs(self.from_deployed(outputs), batch)

    def distill_loss(self, student: torch.Tensor, teacher: torch.Tensor, batch) -> torch.Tensor:
        """Per pixel, KL(teacher || student) of the label distributions (temperature
        DISTILL_TEMPERATURE), averaged over the pixels."""
        return softened_kl(student, teacher, DISTILL_TEMPERATURE, dim=1)

    @torch.no_grad()
    def validate(self, model: nn.Module, ctx) -> Dict[str, float]:
        model.eval()
        indices = list(range(ctx.rank, len(self.val_set), ctx.world))

        def predict(batch):
            return model(torch.from_numpy(batch).to(memory_format=torch.channels_last)).numpy()

        counts = confusion_of(predict, self.val_set, self.card, indices).counts.ravel().tolist()
        total = np.asarray(ctx.sum(counts), np.int64).reshape(len(self.card.labels), -1)
        report = iou_report(total, self.card.labels)
        return {"miou": report["miou"], "pixel_accuracy": report["pixel_accuracy"], "images": len(self.val_set)}


# ---- the hooks edgecnn.training and edgecnn.compress call (same names in every task)

def make_training(config, card: Optional[ModelCard] = None) -> SegmentTraining:
    return SegmentTraining(config, card)


def check_config(config) -> None:
    """Options that constrain a segmenter."""
    options = config.task_options
    if not config.model.startswith("mobilenet_v2") and not config.model.startswith("mobilenet_v3"):
        raise UserError(f"segmenters use a MobileNetV2 or V3 backbone, got {config.model!r}")
    if config.imgsz is not None and config.imgsz < MIN_INPUT:
        raise UserError(f"--imgsz for segmentation must be >= {MIN_INPUT}, got {config.imgsz}")
    if options.decoder is not None and options.decoder not in DECODERS:
        raise UserError(f"--decoder must be one of {', '.join(DECODERS)}, got {options.decoder!r}")
    if options.neck is not None and options.neck < 8:
        raise UserError(f"--neck is the segmentation head's width (>= 8), got {options.neck}")
    if options.progressive_from is not None:
        final = config.imgsz or SEGMENT_IMGSZ
        if not MIN_INPUT <= options.progressive_from <= final or (final - options.progressive_from) % 32:
            raise UserError(f"--progressive-from must be between {MIN_INPUT} and --imgsz ({final}) in steps of 32 "
                            f"below it, got {options.progressive_from}")


def build_model(card: ModelCard) -> nn.Module:
    from edgecnn.models.segmenter import MobileNetSegmenter

    arch = card.architecture
    return MobileNetSegmenter(card.num_classes, arch.get("backbone", "mobilenet_v3_small"),
                              float(arch.get("width", 1.0)), card.channels, arch.get("decoder", DEFAULT_DECODER),
                              int(arch.get("channels", HEAD_CHANNELS)))


def output_layers(model: nn.Module) -> List[nn.Module]:
    """The convolutions whose output channels are the labels (kept whole by pruning)."""
    return model.output_layers()


def feature_layers(model: nn.Module) -> List[nn.Module]:
    """The decoder's last feature maps before its class convolutions."""
    return model.feature_layers()


def load_images(data_spec: str, split: str) -> Sequence[np.ndarray]:
    if data_spec == "shapes":
        return ShapesImages(split)  # the segmentation scenes are the detection scenes
    return load_segmentation(data_spec, split).images


def evaluate(predict, card: ModelCard, data_spec: str, split: str = "val", plot: Optional[str] = None,
             model_path: str = "model", strict: bool = False) -> Dict[str, Any]:
    """Per-label IoU, mIoU and pixel accuracy from one confusion matrix over the split;
    a PNG of predictions beside the ground truth unless plot == ''."""
    from pathlib import Path

    data = load_segmentation(data_spec, split, strict)
    if data.labels != card.labels:
        raise UserError(f"{data_spec} labels {data.labels} differ from the model's {card.labels}")
    matrix = ConfusionMatrix(len(card.labels))
    shown = list(range(min(6, len(data))))
    examples = {}
    for i, class_map in predict_masks(predict, data, card, list(range(len(data)))):
        matrix.add(data.masks[i], class_map)
        if i in shown:
            examples[i] = class_map
    report = iou_report(matrix.counts, card.labels)
    report.update(dataset=data_spec, split=data.split, model=str(model_path), images=len(data),
                  problems=[str(p) for p in data.problems])
    if plot != "":
        from edgecnn.core.plots import save_segmentation_png
        from edgecnn.tasks.segment.result import label_colours

        plot_path = Path(plot) if plot else Path(model_path).with_name(
            f"{Path(model_path).stem}-{data.split}-predictions.png")
        save_segmentation_png([data.images[i] for i in shown], [data.masks[i] for i in shown],
                              [examples[i] for i in shown], card.labels, label_colours(len(card.labels)), plot_path,
                              f"{Path(model_path).name} on {data_spec}/{data.split}: mIoU {100 * report['miou']:.2f}")
        report["predictions_png"] = str(plot_path)
    return report


def format_report(report: Dict[str, Any]) -> str:
    from edgecnn.tasks.segment.metrics import format_iou_report

    lines = [format_iou_report(report)]
    lines.extend(f"skipped: {problem}" for problem in report.get("problems", []))
    if report.get("predictions_png"):
        lines.append(f"predictions: {report['predictions_png']}")
    return "\n".join(lines)


def taylor_loss(card: ModelCard, data_spec: str):
    """One labelled training batch's loss, which Taylor importance needs gradients of."""
    data = load_segmentation(data_spec, "train", count=32 if data_spec == "shapes" else None)
    x = torch.from_numpy(preprocess_batch(data.images[:32], card, TASK.preprocessing(card)))
    y = torch.from_numpy(np.stack([target_at(m, card.input_size) for m in data.masks[:32]]).astype(np.int64))
    criterion = SegmentationLoss(len(card.labels))
    return lambda model: criterion(model.logits(x), y)


def write_shapes(out: str, split: str, seed: int, imgsz: Optional[int], count: Optional[int],
                 min_visible: Optional[float] = None) -> int:
    """`edgecnn shapes --task segment`: the synthetic scenes with exact class-index mask PNGs."""
    from edgecnn.data.detection import MIN_VISIBLE
    from edgecnn.data.segmentation import load_shapes_segmentation, write_mask_folder

    if min_visible is not None and not 0 < min_visible <= 1:
        raise UserError("--min-visible is a fraction in (0, 1] for --task detect and segment")
    data = load_shapes_segmentation(split, seed, imgsz or SEGMENT_IMGSZ, count, min_visible or MIN_VISIBLE)
    write_mask_folder(data, out, split)
    return len(data)


class SegmentTaskTraining(TaskTraining):
    """The segment task's torch side, as edgecnn.core.task.TaskTraining asks for it."""

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


TRAINING = SegmentTaskTraining()
