"""A Python callback per frame: the hook for a robot program's own code (API only:
RunOptions.callbacks, or Model.stream in its own loop)."""
from __future__ import annotations

from typing import Callable

from edgecnn.runtime.sinks import Sink, SinkType


class CallbackSink(Sink):
    """Calls fn(image, result) per frame: the hook for a robot program. Returning
    False (not None) from fn ends the run."""

    def __init__(self, fn: Callable) -> None:
        self.fn = fn

    def write(self, image, result) -> None:
        if self.fn(image, result) is False:
            self.stop = True


SINK = SinkType(name="callback")  # opened by the runner for each of RunOptions.callbacks
