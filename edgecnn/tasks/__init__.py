"""What differs between training a classifier and a detector: data, model, loss and
validation metric. The epoch loop, EMA, checkpoints and DDP live in edgecnn.train."""
from __future__ import annotations


def make_task(config, card=None):
    if config.task == "classify":
        from edgecnn.tasks.classify import ClassifyTask
        return ClassifyTask(config, card)
    if config.task == "detect":
        from edgecnn.tasks.detect import DetectTask
        return DetectTask(config, card)
    from edgecnn.errors import UserError
    raise UserError(f"unknown task {config.task!r}; choose classify or detect")
