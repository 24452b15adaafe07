"""A loaded model: the one object a robot program holds.

    model = edgecnn.load("shapes.tflite")     # card read from the file; load() alone: the bundled model
    result = model.predict(image)             # Detections | Classes
    for frame, result in model.stream("camera:0"):
        ...

predict = the card's preprocessing -> backend -> decode (classes: softmax; detector:
decode + NMS). stream = a source, the same predict per frame, results stamped with
frame index, capture time, frame age and inference time, and live statistics.
"""
from __future__ import annotations

import os
import time
from typing import Callable, Iterator, Optional, Tuple, Union

import cv2
import numpy as np

from edgecnn.card import ModelCard
from edgecnn.errors import UserError
from edgecnn.runtime.backends import Backend, open_backend
from edgecnn.runtime.card_options import CardOptions, expected_input_shape, resolve_card
from edgecnn.runtime.detection import NMS_IOU, decode, postprocess
from edgecnn.runtime.preprocess import make_preprocessor
from edgecnn.runtime.results import Classes, Detections, scores_from_logits
from edgecnn.runtime.sources import Source, open_source, stderr_log
from edgecnn.runtime.stats import StreamStats

Result = Union[Classes, Detections]


def default_model_path() -> str:
    from edgecnn.assets import RUNTIME_DEFAULT

    return str(RUNTIME_DEFAULT)


def load(path: Optional[str] = None, *, backend: str = "auto", threads: Optional[int] = None,
         card: Optional[CardOptions] = None, conf_threshold: float = 0.25, iou_threshold: float = NMS_IOU) -> "Model":
    """Open a .tflite or .onnx model (no path: the bundled shapes detector)."""
    path = str(path) if path is not None else default_model_path()
    loaded = open_backend(path, backend, threads)
    resolved = resolve_card(loaded.card, card or CardOptions(), loaded.input_shape, os.path.basename(path))
    return Model(loaded, resolved, conf_threshold, iou_threshold)


class Model:
    def __init__(self, backend: Backend, card: ModelCard, conf_threshold: float = 0.25,
                 iou_threshold: float = NMS_IOU) -> None:
        if not 0 <= conf_threshold <= 1 or not 0 <= iou_threshold <= 1:
            raise UserError("confidence and IoU thresholds must be within 0..1")
        self.backend, self.card = backend, card
        self.conf_threshold, self.iou_threshold = conf_threshold, iou_threshold
        self.preprocess = make_preprocessor(card)
        # One inference on a blank input: checks the outputs against the card before
        # any frame is read, and takes the backend's first-call setup off the first frame.
        self._check_outputs(backend.infer(np.zeros(expected_input_shape(card), np.float32)))

    @property
    def task(self) -> str:
        return self.card.task

    @property
    def labels(self):
        return self.card.labels

    def __repr__(self) -> str:
        height, width = self.card.input_size
        return f"Model({self.card.task}, {height}x{width}, {len(self.card.labels)} labels, {self.backend.describe()})"

    def predict(self, image, *, frame_index: int = 0, capture_time: Optional[float] = None,
                capture_clock: Optional[float] = None, blob: Optional[np.ndarray] = None) -> Result:
        """One image (BGR/grey uint8 array or an image path) -> Classes | Detections.
        blob: this image already preprocessed (by a source's reader thread)."""
        if isinstance(image, (str, os.PathLike)):
            path = str(image)
            image = cv2.imread(path, cv2.IMREAD_UNCHANGED)
            if image is None:
                raise UserError(f"{path}: not a readable image")
        started = time.perf_counter()
        if blob is None:
            blob = self.preprocess(image)
        before = time.perf_counter()
        outputs = self.backend.infer(blob)
        inference_ms = (time.perf_counter() - before) * 1000
        result = self._interpret(outputs, image.shape[:2])
        result.frame_index = frame_index
        result.capture_time = time.time() if capture_time is None else capture_time
        result.frame_age_ms = (time.perf_counter() - (started if capture_clock is None else capture_clock)) * 1000
        result.inference_ms = inference_ms
        return result

    def _interpret(self, outputs, image_size: Tuple[int, int]) -> Result:
        if self.card.task == "classify":
            return Classes(scores_from_logits(outputs[0]), self.card.labels)
        strides = self.card.head.get("strides", [8, 16, 32])
        levels = len(strides)
        try:
            corners, probabilities = decode([o[0] for o in outputs[:levels]], [o[0] for o in outputs[levels:]],
                                            self.card.input_size, strides)
        except ValueError as exc:
            raise UserError(f"{os.path.basename(self.backend.path)}: {exc}") from None
        found = postprocess(corners, probabilities, self.card.labels, self.card.input_size, image_size,
                            self.conf_threshold, self.iou_threshold)
        return Detections(found.boxes, found.scores, found.classes, found.labels)

    def _check_outputs(self, outputs) -> None:
        """The outputs must be what the card says, once per model (a clear error, not an IndexError)."""
        name = os.path.basename(self.backend.path)
        classes = len(self.card.labels)
        if self.card.task == "classify":
            if len(outputs) != 1 or outputs[0].size != classes:
                raise UserError(f"{name}: a classifier with {classes} labels should output {classes} values, "
                                f"the model outputs {[tuple(o.shape) for o in outputs]}; check --labels/--task")
        else:
            levels = len(self.card.head.get("strides", [8, 16, 32]))
            shapes = [tuple(o.shape) for o in outputs]
            if (len(outputs) != 2 * levels or any(o.shape[-1] != 4 for o in outputs[:levels])
                    or any(o.shape[-1] != classes for o in outputs[levels:])):
                raise UserError(f"{name}: a detector with {classes} labels at {levels} levels should output "
                                f"{levels} box tensors (.., 4) then {levels} score tensors (.., {classes}); "
                                f"the model outputs {shapes}")

    def stream(self, source: Union[str, int, Source], *, realtime: bool = False, max_frames: Optional[int] = None,
               log: Callable[[str], None] = stderr_log) -> "Stream":
        """Iterate (frame, result) over a source URI (see edgecnn.runtime.sources) or Source."""
        opened = source if isinstance(source, Source) else open_source(source, realtime=realtime, log=log)
        return Stream(self, opened, max_frames)


class Stream:
    """Iterable of (frame image, result); holds the source and the live statistics.
    Closing it (or leaving a with-block, or finishing the loop) stops the source."""

    def __init__(self, model: Model, source: Source, max_frames: Optional[int] = None) -> None:
        if max_frames is not None and max_frames < 1:
            raise UserError(f"--max-frames must be >= 1, got {max_frames}")
        self.model, self.source, self.max_frames = model, source, max_frames
        self.stats = StreamStats()
        if not source.live:
            source.prepare = model.preprocess

    def __iter__(self) -> Iterator[Tuple[np.ndarray, Result]]:
        try:
            for frame in self.source:
                result = self.model.predict(frame.image, frame_index=frame.index, capture_time=frame.capture_time,
                                            capture_clock=frame.capture_clock, blob=frame.blob)
                self.stats.add(result, self.source.dropped, self.source.reconnects,
                               getattr(self.source, "status", "running"))
                yield frame.image, result
                if self.max_frames is not None and self.stats.frames >= self.max_frames:
                    break
        finally:
            self.close()

    def close(self) -> None:
        self.source.close()

    def __enter__(self) -> "Stream":
        return self

    def __exit__(self, *exc) -> None:
        self.close()
