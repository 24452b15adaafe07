"""The model card: the one metadata record that travels with every edgecnn model.

It says how to feed the model (input size, layout, colour order, normalisation),
how to read its outputs (task, labels, quantization), where it came from and the
accuracy it was measured at. Checkpoints, ONNX and TFLite files all carry the same
record, serialised as JSON, so a model runs with no further flags.

This module imports neither torch nor onnx: the device runtime reads cards too.
"""
from __future__ import annotations

import dataclasses
import json
import re
from dataclasses import dataclass, field
from typing import Any, Dict, List, Optional, Tuple

from edgecnn.core.errors import UserError
from edgecnn.core.redact import redact_values

CARD_SCHEMA = 1
LAYOUTS = ("nchw", "nhwc")
COLORS = ("rgb", "bgr", "gray")
PRECISIONS = ("fp32", "int8")
# What edgecnn trains with: pixel -> [-1, 1], symmetric around zero, which suits int8.
DEFAULT_MEAN, DEFAULT_STD = 127.5, 127.5
DIGEST_FORM = re.compile(r"sha256:[0-9a-f]{64}")


@dataclass
class ModelCard:
    """Everything needed to preprocess inputs and interpret outputs of one model.

    mean/std are in pixel units (0..255), per channel: input = (pixel - mean) / std.
    """

    task: str
    labels: List[str]
    input_size: Tuple[int, int]  # (height, width)
    layout: str = "nchw"
    color: str = "rgb"
    mean: Tuple[float, ...] = (127.5, 127.5, 127.5)
    std: Tuple[float, ...] = (127.5, 127.5, 127.5)
    architecture: Dict[str, Any] = field(default_factory=dict)
    precision: str = "fp32"
    # detectors: how to decode the outputs, e.g. {"format": "ltrb-sigmoid", "strides": [8, 16, 32]}
    head: Dict[str, Any] = field(default_factory=dict)
    # int8 models: {"input": {"scale", "zero_point"}, "outputs": [{...}, ...]}
    quantization: Dict[str, Any] = field(default_factory=dict)
    source_hash: Optional[str] = None
    # e.g. {"top1": 0.993, "split": "test", "dataset": "digits", "images": 1000}
    metrics: Dict[str, Any] = field(default_factory=dict)
    dataset: Dict[str, Any] = field(default_factory=dict)
    schema: int = CARD_SCHEMA
    # "sha256:<hex>" of the weights in the file the card is embedded in, written by the
    # converters (edgecnn.runtime.integrity) and checked when the file loads; None in
    # checkpoints and in files converted before it was recorded
    weights_digest: Optional[str] = None

    def __post_init__(self) -> None:
        self.input_size = tuple(int(v) for v in self.input_size)  # type: ignore[assignment]
        # a dataset given as a URL travels inside every model file: never with its password
        self.dataset, self.metrics = redact_values(self.dataset), redact_values(self.metrics)
        self.mean = tuple(float(v) for v in self.mean)
        self.std = tuple(float(v) for v in self.std)
        self.labels = [str(label) for label in self.labels]
        self.validate()

    @property
    def channels(self) -> int:
        return 1 if self.color == "gray" else 3

    @property
    def num_classes(self) -> int:
        return len(self.labels)

    def validate(self) -> None:
        """Reject a card that the runtime could not honour, with one clear line."""
        problems = []
        from edgecnn.core.task import get_task, task_names  # the task seam: a task is a package there

        if self.task not in task_names():
            problems.append(f"task must be one of {tuple(task_names())}, got {self.task!r}")
        else:
            problems.extend(get_task(self.task).check_card(self))
        if self.layout not in LAYOUTS:
            problems.append(f"layout must be one of {LAYOUTS}, got {self.layout!r}")
        if self.color not in COLORS:
            problems.append(f"color must be one of {COLORS}, got {self.color!r}")
        if self.precision not in PRECISIONS:
            problems.append(f"precision must be one of {PRECISIONS}, got {self.precision!r}")
        if len(self.input_size) != 2 or min(self.input_size) < 1:
            problems.append(f"input_size must be (height, width) > 0, got {self.input_size}")
        if not self.labels:
            problems.append("labels must not be empty")
        for name in ("mean", "std"):
            values = getattr(self, name)
            if len(values) not in (1, self.channels):
                problems.append(f"{name} needs 1 or {self.channels} values, got {len(values)}")
        if any(s == 0 for s in self.std):
            problems.append("std must not contain 0")
        if self.weights_digest is not None and not (isinstance(self.weights_digest, str)
                                                    and DIGEST_FORM.fullmatch(self.weights_digest)):
            problems.append(f"weights_digest must be sha256:<64 hex digits>, got {str(self.weights_digest)[:80]!r}")
        if problems:
            raise UserError("invalid model card: " + "; ".join(problems))

    def channel_values(self, name: str) -> Tuple[float, ...]:
        """mean or std expanded to one value per input channel."""
        values = getattr(self, name)
        return values * self.channels if len(values) == 1 else values

    def to_dict(self) -> Dict[str, Any]:
        data = dataclasses.asdict(self)
        data["input_size"] = list(self.input_size)
        data["mean"] = list(self.mean)
        data["std"] = list(self.std)
        if self.weights_digest is None:  # a card without one serialises as before it existed
            del data["weights_digest"]
        return data

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), sort_keys=True)

    @classmethod
    def from_dict(cls, data: Dict[str, Any]) -> "ModelCard":
        if not isinstance(data, dict):
            raise UserError("invalid model card: not a mapping")
        known = {f.name for f in dataclasses.fields(cls)}
        missing = [k for k in ("task", "labels", "input_size") if k not in data]
        if missing:
            raise UserError(f"invalid model card: missing {', '.join(missing)}")
        try:
            schema = int(data.get("schema", CARD_SCHEMA))
        except (TypeError, ValueError, OverflowError):
            raise UserError(f"invalid model card: schema must be a whole number, got {data['schema']!r}"[:200]) \
                from None
        if schema > CARD_SCHEMA:
            raise UserError(
                f"model card schema {schema} is newer than this edgecnn understands "
                f"({CARD_SCHEMA}); upgrade edgecnn")
        try:
            return cls(**{k: v for k, v in data.items() if k in known})
        except (TypeError, ValueError, OverflowError, KeyError, IndexError, AttributeError) as exc:
            # a card is read from a file anyone may have written: any shape it cannot have is one line
            raise UserError(f"invalid model card: {exc}"[:300]) from None

    @classmethod
    def from_json(cls, text: str) -> "ModelCard":
        try:
            data = json.loads(text)
        except json.JSONDecodeError as exc:
            raise UserError(f"invalid model card JSON: {exc}") from None
        return cls.from_dict(data)

    def replace(self, **changes: Any) -> "ModelCard":
        return dataclasses.replace(self, **changes)
