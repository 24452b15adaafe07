"""Accuracy of a model on a dataset split: the task's own evaluation (top-1 with a
per-class table and confusion matrix, COCO mAP with per-class AP and a predictions PNG),
for checkpoints and for any predictor the accuracy gates compare."""
from __future__ import annotations

from typing import Any, Callable, Dict, List, Optional

import numpy as np

from edgecnn.core.card import ModelCard
from edgecnn.core.errors import UserError
from edgecnn.core.task import get_task


def as_list(out) -> List[np.ndarray]:
    """A predictor's output (one array, or a tuple/list per output) as a list of arrays."""
    return [np.asarray(o) for o in out] if isinstance(out, (list, tuple)) else [np.asarray(out)]


def torch_predictor(model) -> Callable[[np.ndarray], np.ndarray]:
    import torch

    model.eval()

    def predict(batch: np.ndarray):
        with torch.no_grad():
            out = model(torch.from_numpy(batch))
        return [o.numpy() for o in out] if isinstance(out, (tuple, list)) else out.numpy()

    return predict


def evaluate_checkpoint(path: str, data_spec: Optional[str], split: str = "val",
                        plot: Optional[str] = None, strict: bool = False) -> Dict[str, Any]:
    from edgecnn.training.checkpoint import load_model

    model, card, _ = load_model(path)
    data_spec = data_spec or card.dataset.get("name")
    if not data_spec:
        raise UserError("the model card names no dataset: pass --data")
    report = get_task(card.task).training().evaluate(torch_predictor(model), card, data_spec, split, plot,
                                                      str(path), strict)
    report.update(model=str(path), task=card.task)
    return report


def file_predictor(model) -> Callable[[np.ndarray], list]:
    """A preprocessed batch -> outputs stacked per image, through a runtime model's
    backend one image at a time (exported files mostly take a batch of one)."""
    def predict(batch: np.ndarray):
        rows = [model.backend.infer(np.ascontiguousarray(batch[i:i + 1])) for i in range(len(batch))]
        return [np.concatenate([row[k] for row in rows]) for k in range(len(rows[0]))] if rows else []

    return predict


def evaluate_file(path: str, data_spec: Optional[str], split: str = "val", plot: Optional[str] = None,
                  strict: bool = False, card_options=None, backend: Optional[str] = None) -> Dict[str, Any]:
    """`edgecnn eval FILE`: an .onnx or .tflite file, edgecnn's or another toolkit's, scored
    through the runtime (its card, or the one recognised or given by flags) on a dataset
    whose labels are matched to the model's by name. `backend`: NAME[:OPTIONS] (default:
    this device's first backend for the file); never `auto`, whose choice among the file's
    siblings of another precision would score a file other than the one named."""
    from edgecnn.runtime.model import load

    model = load(path, card=card_options, backend=file_backend(path, backend))
    card = model.card
    data_spec = data_spec or card.dataset.get("name")
    if not data_spec:
        raise UserError(f"{path} names no dataset: pass --data")
    report = get_task(card.task).training().evaluate(file_predictor(model), card, data_spec, split, plot,
                                                      str(path), strict)
    report.update(model=str(path), task=card.task)
    return report


def file_backend(path: str, backend: Optional[str] = None) -> str:
    """The backend that scores the file named: the one given, else the device's first
    installed backend for its format ("auto" would time and run the fastest sibling)."""
    from edgecnn.runtime.backends import backends_for, parse_backend

    if backend is not None:
        spec = parse_backend(backend)
        if spec.name == "auto":
            raise UserError("--backend auto chooses among a model's files by speed; name the backend that scores "
                            f"{path} (one of the installed: {', '.join(backends_for(path)) or 'none'})")
        return str(spec)
    names = backends_for(path)
    return names[0] if names else "auto"  # none installed: open_backend says what to install


def evaluate_predictor(predict, card: ModelCard, data_spec: str, split: str = "val") -> Dict[str, Any]:
    """The task's accuracy report for any predictor (preprocessed batch -> outputs), no
    plots: what the accuracy gates compare."""
    return get_task(card.task).training().evaluate(predict, card, data_spec, split, plot="")


def format_report(report: Dict[str, Any]) -> str:
    """The text `edgecnn eval` prints for a report of evaluate_checkpoint."""
    return get_task(report["task"]).training().format_report(report)
