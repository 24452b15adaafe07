"""Accuracy of a model on a dataset split, with a per-class table and a confusion matrix."""
from __future__ import annotations

from pathlib import Path
from typing import Any, Callable, Dict, Optional

import numpy as np

from edgecnn.card import ModelCard
from edgecnn.data import ClassificationSet, load_classification
from edgecnn.metrics import classification_report
from edgecnn.runtime.preprocess import preprocess_batch


def predict_dataset(predict: Callable[[np.ndarray], np.ndarray], data: ClassificationSet,
                    card: ModelCard, batch: int = 256) -> np.ndarray:
    """Class index per image; `predict` maps a preprocessed batch to scores (N, classes)."""
    predictions = []
    for start in range(0, len(data), batch):
        images = data.images[start:start + batch]
        predictions.append(np.asarray(predict(preprocess_batch(images, card))).argmax(1))
    return np.concatenate(predictions) if predictions else np.zeros(0, np.int64)


def torch_predictor(model) -> Callable[[np.ndarray], np.ndarray]:
    import torch

    model.eval()

    def predict(batch: np.ndarray) -> np.ndarray:
        with torch.no_grad():
            return model(torch.from_numpy(batch)).numpy()

    return predict


def evaluate_classifier(predict: Callable[[np.ndarray], np.ndarray], card: ModelCard, data_spec: str,
                        split: str = "val") -> Dict[str, Any]:
    data = load_classification(data_spec, split, labels=card.labels)
    if data.labels != card.labels:
        raise ValueError("dataset labels differ from the model's")
    report = classification_report(data.targets, predict_dataset(predict, data, card), card.labels)
    report.update(dataset=data_spec, split=data.split)
    return report


def evaluate_checkpoint(path: str, data_spec: Optional[str], split: str = "val",
                        plot: Optional[str] = None) -> Dict[str, Any]:
    from edgecnn.checkpoint import load_model
    from edgecnn.errors import UserError

    model, card, _ = load_model(path)
    data_spec = data_spec or card.dataset.get("name")
    if not data_spec:
        raise UserError("the model card names no dataset: pass --data")
    if card.task != "classify":
        raise UserError(f"evaluation of task {card.task!r} checkpoints is not supported yet")
    report = evaluate_classifier(torch_predictor(model), card, data_spec, split)
    report["model"] = str(path)
    if plot != "":
        plot_path = Path(plot) if plot else Path(path).with_name(f"{Path(path).stem}-{report['split']}-confusion.png")
        from edgecnn.plots import save_confusion_png

        save_confusion_png(np.array(report["confusion"]), card.labels, plot_path,
                           f"{Path(path).name} on {data_spec}/{report['split']}: "
                           f"top-1 {100 * report['top1']:.2f}%")
        report["confusion_png"] = str(plot_path)
    return report
