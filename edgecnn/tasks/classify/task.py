"""The classification task, torch-free: a model outputs one score per label."""
from __future__ import annotations

from typing import Dict, List, Sequence, Tuple

import numpy as np

from edgecnn.core.errors import UserError
from edgecnn.core.task import Metric, Task
from edgecnn.tasks.classify.result import Classes, scores_from_logits


class ClassifyTask(Task):
    name = "classify"
    people_name = "classifiers"
    primary_metric = "top1"
    metric_label = "top-1"
    metrics = {"top1": Metric("top-1")}
    default_data = "digits"
    default_width = 1.0
    agreement_kind = "top-1 agreement"

    def recognises_outputs(self, shapes) -> bool:
        """One [1, C] score vector (C > 1) that no detector head claims."""
        return len(shapes) == 1 and len(shapes[0]) == 2 and shapes[0][0] == 1 and shapes[0][1] > 1

    def schema_fields(self) -> Dict:
        return {"label": {"type": "string"}, "score": {"type": "number"},
                "classes": {"type": "array", "items": {"type": "object", "required": ["label", "class_id", "score"],
                                                       "properties": {"label": {"type": "string"},
                                                                      "class_id": {"type": "integer"},
                                                                      "score": {"type": "number"}}}}}

    def labels_from_outputs(self, shapes) -> List[str]:
        """Class indices as labels: one score per class in the first output."""
        return [str(i) for i in range(int(shapes[0][-1]))]

    def check_outputs(self, card, shapes: Sequence[Tuple[int, ...]], model_name: str) -> None:
        classes = len(card.labels)
        if len(shapes) != 1 or int(np.prod(shapes[0])) != classes:
            raise UserError(f"{model_name}: a classifier with {classes} labels should output {classes} values, "
                            f"the model outputs {[tuple(s) for s in shapes]}; check --labels/--task")

    def interpret(self, card, outputs, image_size, *, conf: float, iou: float, max_results: int = 100) -> Classes:
        return Classes(scores=scores_from_logits(outputs[0]), labels=card.labels)

    def agreement(self, card, reference, converted, image_sizes) -> float:
        return float((np.asarray(converted[0]).argmax(1) == np.asarray(reference[0]).argmax(1)).mean())


TASK = ClassifyTask()
