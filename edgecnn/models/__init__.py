"""Model zoo: one file per architecture family, built by name through `build_model`."""
from __future__ import annotations

from typing import Any, Callable, Dict

from torch import nn

from edgecnn.core.errors import UserError
from edgecnn.models.lenet import LeNet5
from edgecnn.models.mobilenet_v1 import MobileNetV1
from edgecnn.models.mobilenet_v2 import MobileNetV2
from edgecnn.models.mobilenet_v3 import (mobilenet_v3_large, mobilenet_v3_large_minimal, mobilenet_v3_small,
                                         mobilenet_v3_small_minimal)
from edgecnn.models.resnet import resnet18

CLASSIFIERS: Dict[str, Callable[..., nn.Module]] = {
    "mobilenet_v1": MobileNetV1,
    "mobilenet_v2": MobileNetV2,
    "mobilenet_v3_small": mobilenet_v3_small,
    "mobilenet_v3_large": mobilenet_v3_large,
    "mobilenet_v3_small_minimal": mobilenet_v3_small_minimal,
    "mobilenet_v3_large_minimal": mobilenet_v3_large_minimal,
    "lenet5": LeNet5,
    "resnet18": resnet18,
}


# families whose wide final 1x1 conv only feeds the classifier: detectors and segmenters drop it
WIDE_LAST_CONV = ("mobilenet_v2", "mobilenet_v3_small", "mobilenet_v3_large", "mobilenet_v3_small_minimal",
                  "mobilenet_v3_large_minimal")


def resolve_name(name: str) -> str:
    """The registry key for `name`; an unknown name is a user error."""
    key = name.lower().replace("-", "_")
    if key not in CLASSIFIERS:
        raise UserError(f"unknown model {name!r}; choose from {', '.join(sorted(CLASSIFIERS))}")
    return key


def build_model(name: str, num_classes: int, width: float = 1.0, in_channels: int = 3,
                **kwargs: Any) -> nn.Module:
    """Build an architecture by name; bad names and widths are user errors."""
    key = resolve_name(name)
    if not width > 0:
        raise UserError(f"--width must be > 0, got {width}")
    if num_classes < 1:
        raise UserError(f"a model needs at least one class, got {num_classes}")
    return CLASSIFIERS[key](num_classes=num_classes, width=width, in_channels=in_channels, **kwargs)
