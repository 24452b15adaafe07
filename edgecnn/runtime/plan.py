"""What a run is asked to do, whichever way it was asked: a config file
(edgecnn.runtime.config) or the one-camera command line (RunOptions). The runner takes
a RunPlan; a one-camera command line is a one-camera plan, so both run the same way.

    RunPlan
      models:   {name: ModelPlan}      each loaded once, shared by the cameras naming it
      cameras:  {name: CameraPlan}     each with its source, model, tracker, sinks
      sinks:    run-wide sink values   (--json beside --config, the web view, publishers)
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable, Dict, List, Optional

from edgecnn.runtime.card_options import CardOptions

DEFAULT_MODEL = "default"  # the name of the model a plan uses when cameras name none


@dataclass
class ModelPlan:
    path: Optional[str] = None  # None: the bundled model
    backend: str = "auto"  # edgecnn.runtime.backends grammar
    threads: Optional[int] = None
    conf: float = 0.25
    iou: Optional[float] = None  # NMS overlap threshold; None: edgecnn.runtime.nms.NMS_IOU
    card: CardOptions = field(default_factory=CardOptions)
    batch: str = "auto"  # auto (by measurement) | on | off: cameras sharing the model inferred together
    instances: Optional[int] = None  # interpreters inferring different cameras at once; None: by the runner
    verify: bool = True  # check the weights against the card's digest at load
    loaded: Any = None  # a Model already loaded (the Python API's model.stream([...])): used as it is


@dataclass
class CameraPlan:
    source: str
    model: str = DEFAULT_MODEL
    track: Optional[str] = None
    realtime: bool = False
    sinks: Dict[str, Any] = field(default_factory=dict)  # this camera's own sink option values
    zones: Dict[str, Any] = field(default_factory=dict)  # name -> spec (edgecnn.runtime.analytics.specs)
    lines: Dict[str, Any] = field(default_factory=dict)
    max_frames: Optional[int] = None


@dataclass
class RunPlan:
    models: Dict[str, ModelPlan]
    cameras: Dict[str, CameraPlan]
    sinks: Dict[str, Any] = field(default_factory=dict)  # run-wide sink option values
    records: Dict[str, Any] = field(default_factory=dict)  # the tasks' record options
    callbacks: List[Callable] = field(default_factory=list)  # fn(image, result) per frame, any camera
    # a live camera that will not open at start: retried with backoff (a service) or an
    # error (a person watching a one-camera run)
    retry_at_start: bool = False
    strict: bool = False  # an input that cannot be decoded ends the run (exit 2) instead of being counted
    max_pixels: Optional[int] = None  # decoding limit per image (None: edgecnn.runtime.sources.images')
    health: Optional[str] = None  # HOST:PORT serving only /healthz and /metrics
    source_file: Optional[str] = None  # the config file, for messages
    # one camera named by the command line: messages and the summary keep the one-camera form
    single: bool = False
    # where each model and camera is set in the config file ("models.NAME" -> "FILE:LINE"), for errors
    locations: Dict[str, str] = field(default_factory=dict)

    @property
    def camera_names(self) -> List[str]:
        return list(self.cameras)
