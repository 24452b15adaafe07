"""Classification: ImageFolder / digits / shapes data, cross-entropy, top-1 accuracy."""
from __future__ import annotations

from typing import Dict, Optional

import numpy as np
import torch
from torch import nn
from torch.utils.data import Dataset

from edgecnn.card import DEFAULT_MEAN, DEFAULT_STD, ModelCard
from edgecnn.data import ClassificationSet, load_classification
from edgecnn.data.base import random_subset
from edgecnn.data.augment import ClassifyAugment
from edgecnn.errors import UserError
from edgecnn.runtime.preprocess import preprocess


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


class ClassifyTask:
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
        x, y = batch
        return self.criterion(net(x.to(memory_format=torch.channels_last)), y)

    def deployed_loss(self, outputs, batch) -> torch.Tensor:
        """The training loss on the deployed graph's outputs (logits): what QAT minimises."""
        return self.criterion(outputs, batch[1])

    @torch.no_grad()
    def validate(self, model: nn.Module, ctx, batch: int = 256) -> Dict[str, float]:
        """Top-1 on the val split; each rank scores a shard and the counts are summed."""
        from edgecnn.evaluate import predict_dataset

        model.eval()
        shard = self.val_set.take(range(ctx.rank, len(self.val_set), ctx.world))

        def predict(x: np.ndarray) -> np.ndarray:
            return model(torch.from_numpy(x).to(memory_format=torch.channels_last)).numpy()

        correct = int((predict_dataset(predict, shard, self.card, batch) == shard.targets).sum())
        total_correct, total = ctx.sum([correct, len(shard)])
        return {"top1": total_correct / max(1, total), "images": int(total)}
