"""A loaded model: the one object a robot program holds.

    model = edgecnn.load("shapes.tflite")     # card read from the file; load() alone: the bundled model
    result = model.predict(image)             # Detections | Classes
    for frame, result in model.stream("camera:0"):
        ...

predict = the card's preprocessing -> backend -> the task's interpretation (classes:
softmax; detector: the head's decode + NMS). stream = a source, the same predict per frame, results stamped with
frame index, capture time, frame age and inference time, and live statistics.
"""
from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any, Callable, Iterator, List, Optional, Sequence, Tuple, Union

import cv2
import numpy as np

from edgecnn.core.card import ModelCard
from edgecnn.core.errors import UserError
from edgecnn.runtime.backends import Backend, open_backend
from edgecnn.runtime.card_options import CardOptions, expected_input_shape, resolve_card
from edgecnn.runtime.nms import MAX_DETECTIONS, NMS_IOU
from edgecnn.runtime.recognition import facts_of
from edgecnn.core.preprocess import make_preprocessor
from edgecnn.runtime.sources import Source, open_source, stderr_log
from edgecnn.runtime.stats import StreamStats
from edgecnn.core.task import get_task

Result = Any  # the model's task's result type (edgecnn.tasks.<task>.result): Classes, Detections, Masks, ...


def default_model_path(backend: str = "auto", threads: Optional[int] = None,
                       log: Callable[[str], None] = stderr_log) -> Tuple[str, str]:
    """The bundled shapes detector file that passed its gate and is fastest here, and
    the line that says why."""
    path, _, why = fastest_run(None, backend, threads, log)
    return path, why


def fastest_run(path: Optional[str], backend: str = "auto", threads: Optional[int] = None,
                log: Callable[[str], None] = stderr_log) -> Tuple[str, str, Optional[str]]:
    """(file, backend, why) that `--backend auto` runs: the fastest here among the file
    and its gated siblings of another precision (or the bundled files) on every installed
    backend that runs them (edgecnn.runtime.bundled). A file with one way to run it is
    not timed."""
    from edgecnn.runtime.backends import backends_for, parse_backend
    from edgecnn.runtime.bundled import choose_run, precision_siblings
    from edgecnn.runtime.model_file import model_format

    if path is None:
        from edgecnn.assets import RUNTIME_VARIANTS

        return choose_run(RUNTIME_VARIANTS, str(backend), threads, log)
    model_format(path)
    if not os.path.isfile(path):
        raise UserError(f"{path}: no such model file")
    candidates = precision_siblings(Path(path))
    if len(candidates) == 1 and len(backends_for(path)) <= 1:
        return path, str(parse_backend(backend)), None
    return choose_run(candidates, "auto", threads, log, prefix="backend auto", required=Path(path))


def load(path: Optional[str] = None, *, backend: str = "auto", threads: Optional[int] = None,
         card: Optional[CardOptions] = None, conf_threshold: float = 0.25, iou_threshold: float = NMS_IOU,
         log: Optional[Callable[[str], None]] = stderr_log, verify: bool = True) -> "Model":
    """Open a .tflite or .onnx model (no path: the bundled shapes detector, int8 or fp32,
    whichever passed its gate and is faster on this device). The choice is logged once
    the model has loaded (log=None: kept in `model.choice` for the caller to log).
    verify: refuse a file whose weights do not match the digest its card records
    (edgecnn.runtime.integrity); a card without one loads as before."""
    from edgecnn.runtime.integrity import verify_weights

    cores = os.cpu_count() or 1
    if threads is not None and threads > cores:
        (log or stderr_log)(f"--threads {threads} is more than the {cores} cores here; using {cores}")
        threads = cores
    choice = None
    if path is None:
        path, backend, choice = fastest_run(None, backend, threads, log or stderr_log)
    elif str(backend).strip() == "auto":
        path, backend, choice = fastest_run(str(path), backend, threads, log or stderr_log)
    path = str(path)
    loaded = open_backend(path, backend, threads)
    if verify:
        verify_weights(path, loaded.card)
    resolved = resolve_card(loaded.card, card or CardOptions(), loaded.input_shape, os.path.basename(path),
                            facts_of(loaded, card))
    model = Model(loaded, resolved, conf_threshold, iou_threshold)
    model.choice = choice
    if choice and log is not None:
        log(choice)
    return model


class Model:
    choice: Optional[str] = None  # why this bundled file, when load() chose one

    def __init__(self, backend: Backend, card: ModelCard, conf_threshold: float = 0.25,
                 iou_threshold: float = NMS_IOU) -> None:
        if not 0 <= conf_threshold <= 1 or not 0 <= iou_threshold <= 1:
            raise UserError("confidence and IoU thresholds must be within 0..1")
        self.backend, self.card = backend, card
        self.task_spec = get_task(card.task)
        self.conf_threshold, self.iou_threshold = conf_threshold, iou_threshold
        self.preprocess = make_preprocessor(card, self.task_spec.preprocessing(card))
        # One inference on a blank input: checks the outputs against the card before
        # any frame is read, and takes the backend's first-call setup off the first frame.
        outputs = backend.infer(np.zeros(expected_input_shape(card), np.float32))
        self.task_spec.check_outputs(card, [tuple(o.shape) for o in outputs], os.path.basename(backend.path))

    def instance(self, threads: Optional[int]) -> "Model":
        """Another interpreter of the same file, backend, options, card and thresholds,
        with its own threads: two instances infer two cameras' frames at the same time
        (Triton's instance count). The file's weights are checked once, by load()."""
        from edgecnn.runtime.backends import BackendSpec

        spec = BackendSpec(self.backend.name, dict(self.backend.options))
        twin = Model(open_backend(self.backend.path, spec, threads), self.card, self.conf_threshold,
                     self.iou_threshold)
        twin.choice = self.choice
        return twin

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

    def predict_frames(self, frames: Sequence, batched: bool = False) -> List[Result]:
        """Several frames (edgecnn.runtime.sources.Frame) -> their results: one backend
        call over the batch when `batched` (a file with a dynamic batch), else one call
        each. Each result's inference_ms is the call its frame went through."""
        blobs = [frame.blob if frame.blob is not None else self.preprocess(frame.image) for frame in frames]
        if batched and len(blobs) > 1:
            before = time.perf_counter()
            outputs = self.backend.infer(np.concatenate(blobs))
            calls = [([o[i:i + 1] for o in outputs], (time.perf_counter() - before) * 1000)
                     for i in range(len(blobs))]
        else:
            calls = []
            for blob in blobs:
                before = time.perf_counter()
                calls.append((self.backend.infer(blob), (time.perf_counter() - before) * 1000))
        results = []
        for frame, (outputs, inference_ms) in zip(frames, calls):
            result = self._interpret(outputs, frame.image.shape[:2])
            result.frame_index, result.capture_time = frame.index, frame.capture_time
            result.frame_age_ms = (time.perf_counter() - frame.capture_clock) * 1000
            result.inference_ms = inference_ms
            results.append(result)
        return results

    def batching(self, size: int, runs: int = 15) -> Tuple[bool, str]:
        """Whether `size` images inferred in one call pay here, measured: one call must cost
        under 0.9x `size` single calls, and every output must keep the batch in its first
        dimension. The reason, with the figures."""
        if size < 2:
            return False, "one camera"
        if not self.backend.dynamic_batch:
            return False, "its file takes one image per call"
        from edgecnn.runtime.backends import timed_runs

        single = np.zeros(expected_input_shape(self.card), np.float32)
        batch = np.concatenate([single] * size)
        outputs = self.backend.infer(batch)
        if any(o.ndim == 0 or o.shape[0] != size for o in outputs):
            return False, "its outputs do not keep the batch dimension"
        timed_runs(self.backend.infer, single, 3)
        one = float(np.median(timed_runs(self.backend.infer, single, runs)))
        together = float(np.median(timed_runs(self.backend.infer, batch, runs)))
        figures = f"{together:.2f} ms for {size} at once against {size} x {one:.2f} ms"
        return together < 0.9 * size * one, figures

    def _interpret(self, outputs, image_size: Tuple[int, int]) -> Result:
        return self.task_spec.interpret(self.card, outputs, image_size, conf=self.conf_threshold,
                                        iou=self.iou_threshold, max_results=MAX_DETECTIONS)

    def stream(self, source: Union[str, int, Source], *, realtime: bool = False, max_frames: Optional[int] = None,
               track=None, zones=None, lines=None, log: Callable[[str], None] = stderr_log) -> "Stream":
        """Iterate (frame, result) over a source URI (see edgecnn.runtime.sources) or Source;
        over several cameras given as a list of URIs or {name: URI}, every camera's frames
        in one loop, each result naming its camera (edgecnn.runtime.runner.CameraStream).
        track: True (ByteTrack), a tracker's name (edgecnn.runtime.trackers) or a Tracker:
        every detection gets a track id, age and state, and each result its track events.
        zones, lines: {name: spec} as a config file gives them (edgecnn.runtime.analytics
        .specs): each result then carries `analytics`, whose `events` are the frame's
        zone and line events and whose `occupancy` and `line_counts` the counts now."""
        from edgecnn.runtime.tracking import open_tracking

        if (track not in (None, False) or zones or lines) and not self.task_spec.trackable:
            raise UserError(f"tracking needs a detector; this model's task is {self.card.task}")
        if (zones or lines) and track in (None, False):
            track = True  # zones and lines follow tracks
        if isinstance(source, (list, tuple, dict)):  # several cameras: each result says which
            from edgecnn.runtime.runner import CameraStream

            return CameraStream(self, source, track=track, max_frames=max_frames, realtime=realtime, log=log,
                                zones=zones, lines=lines)
        places = None
        if zones or lines:
            from edgecnn.runtime.analytics.stage import PlaceStage

            places = PlaceStage(zones or {}, lines or {}, self.labels)
        opened = source if isinstance(source, Source) else open_source(source, realtime=realtime, log=log)
        try:
            tracking = open_tracking(track, opened.fps if opened.fps and opened.fps > 0 else 30.0)
        except BaseException:
            opened.close()
            raise
        return Stream(self, opened, max_frames, tracking, places)


class Stream:
    """Iterable of (frame image, result); holds the source and the live statistics.
    Closing it (or leaving a with-block, or finishing the loop) stops the source."""

    def __init__(self, model: Model, source: Source, max_frames: Optional[int] = None,
                 tracking: Optional[Callable] = None, places: Optional[Callable] = None) -> None:
        if max_frames is not None and max_frames < 1:
            raise UserError(f"--max-frames must be >= 1, got {max_frames}")
        self.model, self.source, self.max_frames = model, source, max_frames
        self.tracking = tracking  # edgecnn.runtime.tracking.Tracking, on the inference thread (it is cheap)
        self.places = places  # edgecnn.runtime.analytics.stage.PlaceStage: zones and lines, after tracking
        self.stats = StreamStats()
        if not source.live:
            source.prepare = model.preprocess

    def __iter__(self) -> Iterator[Tuple[np.ndarray, Result]]:
        try:
            for frame in self.source:
                result = self.model.predict(frame.image, frame_index=frame.index, capture_time=frame.capture_time,
                                            capture_clock=frame.capture_clock, blob=frame.blob)
                if self.tracking is not None:
                    self.tracking(result)
                    if self.places is not None:
                        self.places(result, frame.image.shape[:2])
                    result.frame_age_ms = (time.perf_counter() - frame.capture_clock) * 1000  # tracked, too
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
