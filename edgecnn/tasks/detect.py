"""Detection: YOLO-txt / COCO-json / synthetic shapes, task-aligned loss, COCO mAP."""
from __future__ import annotations

from typing import Dict, List, Optional

import numpy as np
import torch
from torch import nn
from torch.utils.data import Dataset

from edgecnn.card import DEFAULT_MEAN, DEFAULT_STD, ModelCard
from edgecnn.data.augment import DetectAugment
from edgecnn.data.base import random_subset
from edgecnn.data.detection import DetectionSet, load_detection
from edgecnn.detection_metrics import coco_map
from edgecnn.errors import UserError
from edgecnn.models.detector import STRIDES
from edgecnn.runtime.detection import cell_centres, decode, postprocess
from edgecnn.runtime.preprocess import preprocess, preprocess_batch
from edgecnn.tasks.detect_loss import DetectionLoss

EVAL_CONF, EVAL_IOU, EVAL_MAX = 0.001, 0.6, 100  # the usual COCO evaluation settings


class TorchDetection(Dataset):
    """Augment (seeded per epoch and index), preprocess, and scale boxes to the input."""

    def __init__(self, data: DetectionSet, card: ModelCard, augment: Optional[DetectAugment], seed: int) -> None:
        self.data, self.card, self.augment, self.seed = data, card, augment, seed
        self.epoch = 0

    def __len__(self) -> int:
        return len(self.data)

    def __getitem__(self, index: int):
        image, boxes, classes = self.data[index]
        if self.augment is not None:
            image, boxes, classes = self.augment(image, boxes, classes,
                                                 np.random.default_rng([self.seed, self.epoch, index]))
        height, width = image.shape[:2]
        in_h, in_w = self.card.input_size
        scaled = np.asarray(boxes, np.float32).reshape(-1, 4) * np.array([in_w / width, in_h / height] * 2, np.float32)
        return (torch.from_numpy(preprocess(image, self.card)[0]), torch.from_numpy(scaled),
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
    """Run `predict` (preprocessed batch -> model outputs) and decode each image."""
    strides = card.head.get("strides", list(STRIDES))
    found = []
    for start in range(0, len(indices), batch):
        chunk = indices[start:start + batch]
        outputs = predict(preprocess_batch([data.images[i] for i in chunk], card))
        levels = len(strides)
        for row, i in enumerate(chunk):
            corners, probabilities = decode([o[row] for o in outputs[:levels]], [o[row] for o in outputs[levels:]],
                                            card.input_size, strides)
            found.append(postprocess(corners, probabilities, card.labels, card.input_size,
                                     data.images[i].shape[:2], conf, EVAL_IOU, EVAL_MAX))
    return found


class DetectTask:
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
        self.train_dataset = TorchDetection(train_set, self.card, augment, config.seed)
        self.collate = collate
        self.criterion = DetectionLoss(len(self.card.labels))
        self.centres = torch.from_numpy(cell_centres(tuple(self.card.input_size), tuple(self.card.head["strides"])))

    @staticmethod
    def make_card(config, data: DetectionSet) -> ModelCard:
        imgsz = config.imgsz or 192  # checked in edgecnn.train.check_config, before any data is loaded
        return ModelCard(task="detect", labels=data.labels, input_size=(imgsz, imgsz), layout="nchw",
                         color="rgb", mean=(DEFAULT_MEAN,) * 3, std=(DEFAULT_STD,) * 3,
                         architecture={"name": "detector", "backbone": config.model, "width": config.width},
                         head={"format": "ltrb-sigmoid", "strides": list(STRIDES)},
                         dataset={"name": config.data, "train_images": len(data)})

    def loss(self, net: nn.Module, batch) -> torch.Tensor:
        images, boxes, classes, valid = batch
        box_logits, class_logits = net(images.to(memory_format=torch.channels_last))
        loss, _ = self.criterion(box_logits, class_logits, self.centres, self.card.input_size,
                                          boxes, classes, valid)
        return loss

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
