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

    def predict(batch: np.ndarray):
        with torch.no_grad():
            out = model(torch.from_numpy(batch))
        return [o.numpy() for o in out] if isinstance(out, (tuple, list)) else out.numpy()

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
                        plot: Optional[str] = None, strict: bool = False) -> Dict[str, Any]:
    from edgecnn.checkpoint import load_model
    from edgecnn.errors import UserError

    model, card, _ = load_model(path)
    data_spec = data_spec or card.dataset.get("name")
    if not data_spec:
        raise UserError("the model card names no dataset: pass --data")
    if card.task == "detect":
        return evaluate_detector(torch_predictor(model), card, data_spec, split, plot, path, strict)
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


def evaluate_detector(predict, card: ModelCard, data_spec: str, split: str = "val", plot: Optional[str] = None,
                      model_path: str = "model", strict: bool = False) -> Dict[str, Any]:
    """COCO mAP (faster-coco-eval) and per-class AP; a PNG of predictions on a few images."""
    from edgecnn.data.detection import load_detection
    from edgecnn.detection_metrics import coco_map
    from edgecnn.tasks.detect import predict_detections

    data = load_detection(data_spec, split, strict)
    found = predict_detections(predict, data, card, list(range(len(data))))
    report = coco_map(card.labels, data.boxes, data.classes, found)
    report.update(dataset=data_spec, split=data.split, model=str(model_path),
                  problems=[str(p) for p in data.problems])
    if plot != "":
        from edgecnn.plots import save_detections_png

        plot_path = Path(plot) if plot else Path(model_path).with_name(
            f"{Path(model_path).stem}-{data.split}-predictions.png")
        shown = list(range(min(8, len(data))))
        save_detections_png([data.images[i] for i in shown], [data.boxes[i] for i in shown],
                            [data.classes[i] for i in shown], [found[i] for i in shown], card.labels, plot_path)
        report["predictions_png"] = str(plot_path)
    return report


PRIMARY_METRIC = {"classify": "top1", "detect": "map50_95"}


def evaluate_predictor(predict, card: ModelCard, data_spec: str, split: str = "val") -> Dict[str, Any]:
    """Accuracy (classifiers) or COCO mAP (detectors) of any predictor, no plots: what
    the accuracy gates compare."""
    if card.task == "detect":
        return evaluate_detector(predict, card, data_spec, split, plot="")
    return evaluate_classifier(predict, card, data_spec, split)
