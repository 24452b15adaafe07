"""Event clips: the last seconds of a camera kept in memory, and for each event a video
file from `pre_seconds` before it to `post_seconds` after it, extended while the event
goes on (the pre/post-capture clips of Frigate and DeepStream's Smart Record).

The caller (the inference loop) only hands over frames and triggers; both go through a
short queue, so it never waits for an encoder:

    recorder = ClipRecorder("clips", camera="door", pre_seconds=5, post_seconds=5)
    for image, result in stream:
        recorder.push(image, result.capture_time)
        if person_in_zone(result):
            recorder.trigger({"kind": "zone", "zone": "door"}, key="door", at=result.capture_time)
    recorder.close()  # finishes the clips still open

Two threads do the work. The buffer thread JPEG-encodes each frame into a ring of the
last `buffer_seconds`: JPEG because it costs a third of the CPU of even ultrafast H.264
packets and a clip can start at any frame of it (from an H.264 ring, only at a
keyframe), for about three times the memory; figures in benchmarks/RESULTS.md
(Zones and lines, Event clips).
The writer thread decodes a clip's frames and encodes them into a browser-playable file
(edgecnn.runtime.video_files) beside a JSON sidecar.

A trigger for a key with an open clip whose post window has not passed extends that clip
to `post_seconds` after the new trigger; any other trigger starts a new clip. A clip is
cut at `max_seconds`. Each clip is written under a temporary name and renamed when
whole, then its sidecar; the sidecar marks a finished clip. A clip that cannot be
written (a full disk) is dropped with its temporary file and said once; the recorder
goes on. Retention deletes the oldest clips beyond `max_clips` or `max_bytes`.
"""
from __future__ import annotations

import collections
import errno
import json
import os
import re
import shutil
import threading
import time
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Callable, Deque, Dict, Optional, Tuple

import cv2
import numpy as np

from edgecnn.core.atomic import temporary_beside, write_text_atomic
from edgecnn.core.errors import UserError
from edgecnn.runtime.sources import stderr_log
from edgecnn.runtime.video_files import (PYAV_EXTRA, VideoFileWriter, browser_codec, count_frames,
                                         open_video)

# a clip written from a ring at 85 is 0.14 dB PSNR below one written from the frames
# themselves (75: 0.26 dB; 95: 0.04 dB for 1.8 times the memory): benchmarks/RESULTS.md, Event clips
JPEG_QUALITY = 85
# room in the ring beyond `pre_seconds` for a trigger that arrives after later frames
# were pushed (a loop that reads ahead of its results)
LATE_TRIGGER_SECONDS = 1.0
# raw frames waiting for the buffer thread before new ones are dropped: half a second at
# 15 FPS (it JPEG-encodes a 640x480 frame in ~1 ms, so only a starved CPU fills it)
WAITING_FRAMES = 8
# the frame rate assumed for a clip when the ring holds too few frames to measure one
FALLBACK_FPS = 15.0
CLIP_PREFIX = "clip-"
SIDECAR_SUFFIX = ".json"
VIDEO_SUFFIXES = (".mp4", ".webm")
# a clip writer this far behind the newest frame (in seconds, beyond `buffer_seconds`)
# cannot keep pace with the camera: open clips are cut short and new events wait
WRITER_LAG_BUFFERS = 2.0


@dataclass
class _Clip:
    """One clip, from its first trigger until its last frame is handed to the writer."""

    key: str
    stem: str
    start: float  # frames at or after this capture time belong to it ...
    end: float  # ... up to this one, moved on by each further trigger
    event: Dict[str, Any]
    track_id: Optional[int]
    fps: float
    triggers: int = 1
    last_event: Optional[Dict[str, Any]] = None
    cut_short: Optional[str] = None  # why it ended before `end`: max_seconds, writer_behind, closed
    # the writer thread's side
    writer: Optional[VideoFileWriter] = None
    temporary: Optional[Path] = None
    first_time: Optional[float] = None
    last_time: Optional[float] = None
    failed: Optional[str] = None


@dataclass
class _Job:
    clip: _Clip
    capture_time: float = 0.0
    jpeg: Optional[np.ndarray] = None  # None: the clip is finished
    finished: bool = False


@dataclass
class ClipStats:
    clips_written: int = 0
    clips_dropped: int = 0  # could not be written (a full disk, ...)
    clips_cut_short: int = 0
    frames_dropped: int = 0  # pushed faster than the buffer thread encodes them
    triggers_ignored: int = 0  # while the writer was behind
    buffer_frames: int = 0
    buffer_bytes: int = 0  # the ring's JPEG bytes
    writer_queue_frames: int = 0


class ClipRecorder:
    """Event clips of one camera into `directory` (see the module docstring).

    codec: "auto" (H.264 when PyAV is installed, else VP8), "h264" or "vp8".
    max_clips, max_bytes: retention over the clips in `directory` (None: no limit); the
        newest clip is always kept.
    model_digest: recorded in every sidecar, with `camera`.
    on_clip(video_path, sidecar_dict): called on the writer thread after each clip.
    log: one line per notable thing (the codec at start, dropped clips, a writer that
        falls behind).
    """

    def __init__(self, directory, camera: str = "", pre_seconds: float = 5.0, post_seconds: float = 5.0,
                 max_seconds: float = 300.0, buffer_seconds: Optional[float] = None,
                 max_clips: Optional[int] = None, max_bytes: Optional[int] = None, codec: str = "auto",
                 model_digest: str = "", jpeg_quality: int = JPEG_QUALITY,
                 on_clip: Optional[Callable[[Path, Dict[str, Any]], None]] = None,
                 log: Callable[[str], None] = stderr_log) -> None:
        if pre_seconds < 0 or post_seconds < 0 or max_seconds <= 0:
            raise UserError(f"clip times must be >= 0 (pre {pre_seconds}, post {post_seconds}) "
                            f"and max_seconds > 0 ({max_seconds})")
        self.buffer_seconds = pre_seconds + LATE_TRIGGER_SECONDS if buffer_seconds is None else buffer_seconds
        if self.buffer_seconds < pre_seconds or self.buffer_seconds <= 0:
            raise UserError(f"the clip buffer ({self.buffer_seconds} s) must be > 0 and hold pre_seconds "
                            f"({pre_seconds} s)")
        for name, limit in (("max_clips", max_clips), ("max_bytes", max_bytes)):
            if limit is not None and limit < 1:
                raise UserError(f"clip retention {name} must be >= 1, got {limit}")
        self.directory = Path(directory)
        self.camera, self.model_digest = camera, model_digest
        self.pre_seconds, self.post_seconds, self.max_seconds = pre_seconds, post_seconds, max_seconds
        self.max_clips, self.max_bytes = max_clips, max_bytes
        self.jpeg_quality = jpeg_quality
        self.on_clip, self.log = on_clip, log
        self.codec = browser_codec(codec)
        self._check_directory()
        self.stats = ClipStats()

        self._ring: Deque[Tuple[float, np.ndarray]] = collections.deque()
        self._open: Dict[str, _Clip] = {}
        self._latest_pushed: Optional[float] = None
        self._latest_buffered: Optional[float] = None
        self._writer_behind = False
        self._failing: Any = None  # the cause clips are being dropped for (type, errno), said once
        self._dropped_while_failing = 0
        self._inbox: Deque[tuple] = collections.deque()
        self._inbox_frames = 0
        self._inbox_ready = threading.Condition()
        self._jobs: Deque[_Job] = collections.deque()
        self._jobs_ready = threading.Condition()
        self._closing = False
        self._buffer_done = False  # every job the buffer thread will hand over is queued
        self._busy = {"buffer": False, "writer": False}
        self._buffer_thread = threading.Thread(target=self._serve_inbox, name="clip buffer", daemon=True)
        self._writer_thread = threading.Thread(target=self._serve_jobs, name="clip writer", daemon=True)
        self._apply_retention(keep=None)
        why = "" if self.codec.name == "h264" else f"; H.264 takes a fraction of its CPU: {PYAV_EXTRA}"
        log(f"clips: {self.codec.description} {self.codec.suffix} into {self.directory}, "
            f"{pre_seconds:g} s before and {post_seconds:g} s after each event{why}")
        self._buffer_thread.start()
        self._writer_thread.start()

    def _check_directory(self) -> None:
        try:
            self.directory.mkdir(parents=True, exist_ok=True)
            temporary_beside(self.directory / f"{CLIP_PREFIX}check").unlink()
        except OSError as exc:
            raise UserError(f"cannot write clips into {self.directory}: {exc.strerror or exc}") from None

    # --- the caller's side: never waits on an encoder ---

    def push(self, image: np.ndarray, capture_time: float) -> None:
        """Hand over one frame (BGR uint8; not modified afterwards) and its capture time
        (seconds since the epoch, as results carry it)."""
        with self._inbox_ready:
            if self._closing:
                raise RuntimeError("the clip recorder is closed")
            self._latest_pushed = capture_time
            if self._inbox_frames >= WAITING_FRAMES:
                self.stats.frames_dropped += 1
                return
            self._inbox.append(("frame", image, capture_time))
            self._inbox_frames += 1
            self._inbox_ready.notify()

    def trigger(self, event: Optional[Dict[str, Any]] = None, key: Optional[str] = None,
                track_id: Optional[int] = None, at: Optional[float] = None) -> None:
        """An event at capture time `at` (default: the newest frame pushed). `key` names
        the clip that further triggers extend (default: the track, else one shared clip).
        `event` (JSON-serialisable) and `track_id` go into the sidecar."""
        key = key if key is not None else f"track{track_id}" if track_id is not None else "event"
        with self._inbox_ready:
            if self._closing:
                raise RuntimeError("the clip recorder is closed")
            when = at if at is not None else self._latest_pushed if self._latest_pushed is not None else time.time()
            self._inbox.append(("trigger", dict(event or {}), key, track_id, when))
            self._inbox_ready.notify()

    def extend(self, key: str, at: float) -> None:
        """The event behind the open clip `key` goes on at capture time `at` (its object is
        still in view): the clip runs on to `post_seconds` after it. No clip is opened."""
        with self._inbox_ready:
            if self._closing:
                raise RuntimeError("the clip recorder is closed")
            self._inbox.append(("extend", key, at))
            self._inbox_ready.notify()

    def wait_idle(self, timeout: Optional[float] = None) -> bool:
        """Wait until every frame and trigger handed over so far is buffered and every
        finished clip written; False on timeout. Open clips stay open."""
        deadline = None if timeout is None else time.monotonic() + timeout
        for condition, pending in ((self._inbox_ready, lambda: self._inbox or self._busy["buffer"]),
                                   (self._jobs_ready, lambda: self._jobs or self._busy["writer"])):
            with condition:
                left = None if deadline is None else max(0.0, deadline - time.monotonic())
                if not condition.wait_for(lambda: not pending(), left):
                    return False
        return True

    def close(self) -> None:
        """Finish the open clips at the newest frame, write everything, stop the threads."""
        with self._inbox_ready:
            self._closing = True
            self._inbox_ready.notify_all()
        self._buffer_thread.join()
        self._writer_thread.join()

    def __enter__(self) -> "ClipRecorder":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    # --- the buffer thread: the ring, the open clips, the triggers ---

    def _serve_inbox(self) -> None:
        while True:
            with self._inbox_ready:
                self._busy["buffer"] = False
                self._inbox_ready.notify_all()
                self._inbox_ready.wait_for(lambda: self._inbox or self._closing)
                if not self._inbox:
                    break
                message = self._inbox.popleft()
                self._busy["buffer"] = True
                if message[0] == "frame":
                    self._inbox_frames -= 1
            if message[0] == "frame":
                self._buffer_frame(message[1], message[2])
            elif message[0] == "extend":
                clip = self._open.get(message[1])
                if clip is not None and message[2] <= clip.end:
                    clip.end = max(clip.end, message[2] + self.post_seconds)
            else:
                self._start_or_extend(*message[1:])
        for clip in list(self._open.values()):
            self._finish(clip, cut_short="closed" if (self._latest_buffered or 0) < clip.end else None)
        with self._jobs_ready:
            self._buffer_done = True
            self._jobs_ready.notify_all()

    def _buffer_frame(self, image: np.ndarray, capture_time: float) -> None:
        ok, jpeg = cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, self.jpeg_quality])
        if not ok:
            self.stats.frames_dropped += 1
            return
        self._latest_buffered = capture_time
        self._ring.append((capture_time, jpeg))
        self.stats.buffer_bytes += jpeg.nbytes
        while self._ring and self._ring[0][0] < capture_time - self.buffer_seconds:
            self.stats.buffer_bytes -= self._ring.popleft()[1].nbytes
        self.stats.buffer_frames = len(self._ring)
        behind = self._writer_lag(capture_time) > WRITER_LAG_BUFFERS * self.buffer_seconds
        if behind and not self._writer_behind:
            self.log(f"clips: the writer is {self._writer_lag(capture_time):.0f} s behind the camera "
                     f"({self.codec.description} is too slow here): open clips end now, "
                     f"new events wait until it catches up")
        self._writer_behind = behind
        for clip in list(self._open.values()):
            if capture_time > clip.end:
                self._finish(clip)
            elif capture_time - clip.start > self.max_seconds:
                self._finish(clip, cut_short="max_seconds")
            elif behind:
                self._finish(clip, cut_short="writer_behind")
            else:
                self._hand_over(clip, capture_time, jpeg)

    def _start_or_extend(self, event: Dict[str, Any], key: str, track_id: Optional[int], when: float) -> None:
        clip = self._open.get(key)
        if clip is not None and when <= clip.end:
            clip.end = max(clip.end, when + self.post_seconds)
            clip.triggers += 1
            clip.last_event = event
            return
        if clip is not None:  # its post window passed before a later frame arrived
            self._finish(clip)
        if self._writer_behind:
            self.stats.triggers_ignored += 1
            return
        start = when - self.pre_seconds
        clip = _Clip(key=key, stem=self._new_stem(start, key), start=start, end=when + self.post_seconds,
                     event=event, track_id=track_id, fps=self._ring_fps())
        self._open[key] = clip
        for capture_time, jpeg in self._ring:
            if start <= capture_time <= clip.end:
                self._hand_over(clip, capture_time, jpeg)

    def _ring_fps(self) -> float:
        if len(self._ring) >= 2 and self._ring[-1][0] > self._ring[0][0]:
            return (len(self._ring) - 1) / (self._ring[-1][0] - self._ring[0][0])
        return FALLBACK_FPS

    def _new_stem(self, start: float, key: str) -> str:
        moment = datetime.fromtimestamp(start, timezone.utc)
        parts = [f"{moment:%Y%m%dT%H%M%S}.{moment.microsecond // 1000:03d}Z", self.camera, key]
        stem = CLIP_PREFIX + "-".join(_safe_name(part) for part in parts if part)
        taken = {clip.stem for clip in self._open.values()}
        candidate, number = stem, 1
        while candidate in taken or any((self.directory / (candidate + suffix)).exists()
                                        for suffix in (SIDECAR_SUFFIX,) + VIDEO_SUFFIXES):
            number += 1
            candidate = f"{stem}-{number}"
        return candidate

    def _writer_lag(self, newest: float) -> float:
        with self._jobs_ready:
            oldest = next((job.capture_time for job in self._jobs if job.jpeg is not None), None)
        return 0.0 if oldest is None else newest - oldest - self.buffer_seconds

    def _hand_over(self, clip: _Clip, capture_time: float, jpeg: np.ndarray) -> None:
        with self._jobs_ready:
            self._jobs.append(_Job(clip, capture_time, jpeg))
            self.stats.writer_queue_frames += 1
            self._jobs_ready.notify()

    def _finish(self, clip: _Clip, cut_short: Optional[str] = None) -> None:
        del self._open[clip.key]
        clip.cut_short = cut_short
        if cut_short is not None and cut_short != "closed":
            self.stats.clips_cut_short += 1
        with self._jobs_ready:
            self._jobs.append(_Job(clip, finished=True))
            self._jobs_ready.notify()

    # --- the writer thread: files, sidecars, retention ---

    def _serve_jobs(self) -> None:
        while True:
            with self._jobs_ready:
                self._busy["writer"] = False
                self._jobs_ready.notify_all()
                self._jobs_ready.wait_for(lambda: self._jobs or self._buffer_done)
                if not self._jobs:
                    return
                job = self._jobs.popleft()
                self._busy["writer"] = True
                if job.jpeg is not None:
                    self.stats.writer_queue_frames -= 1
            if job.clip.failed is not None:
                continue
            try:
                if job.finished:
                    written = self._write_clip(job.clip)
                else:
                    self._write_frame(job.clip, job.capture_time, job.jpeg)
                    continue
            except Exception as exc:  # this clip is lost; the recorder goes on
                self._drop(job.clip, exc)
                continue
            if written is not None:
                self._after_clip(*written)

    def _write_frame(self, clip: _Clip, capture_time: float, jpeg: np.ndarray) -> None:
        if clip.writer is None:
            clip.temporary = temporary_beside(self.directory / (clip.stem + self.codec.suffix))
            # one encoder thread: clips are background work beside the inference threads
            clip.writer = open_video(clip.temporary, self.codec, clip.fps, threads=1)
            clip.first_time = capture_time
        clip.writer.write(cv2.imdecode(jpeg, cv2.IMREAD_COLOR), capture_time)
        clip.last_time = capture_time

    def _write_clip(self, clip: _Clip) -> Optional[Tuple[Path, Dict[str, Any]]]:
        """Finish the clip's file, rename it into place, write its sidecar; the video and
        sidecar dict, or None for a clip already dropped or that got no frame."""
        if clip.writer is None:  # no frame reached it
            return None
        writer, clip.writer = clip.writer, None
        try:
            writer.close()
        except BaseException:
            writer.abort()
            raise
        if not writer.reports_write_errors:
            readable = count_frames(clip.temporary)
            if readable != writer.frames:
                free = shutil.disk_usage(self.directory).free
                raise OSError(errno.EIO, f"only {readable} of {writer.frames} frames reached the disk "
                                         f"({free // 1024} KiB free)")
        video = self.directory / (clip.stem + self.codec.suffix)
        os.replace(clip.temporary, video)
        clip.temporary = None
        sidecar = self._sidecar(clip, video, writer.frames)
        try:
            write_text_atomic(self.directory / (clip.stem + SIDECAR_SUFFIX),
                              json.dumps(sidecar, indent=1, default=str) + "\n")
        except BaseException:
            video.unlink()
            raise
        self.stats.clips_written += 1
        return video, sidecar

    def _after_clip(self, video: Path, sidecar: Dict[str, Any]) -> None:
        if self._failing is not None:
            self.log(f"clips: written again after {self._dropped_while_failing} dropped")
            self._failing, self._dropped_while_failing = None, 0
        try:
            self._apply_retention(keep=video.stem)
        except OSError as exc:  # another process deleting the same clips: the next clip tries again
            self.log(f"clips: retention in {self.directory} failed ({exc.strerror or exc})")
        if self.on_clip is not None:
            try:
                self.on_clip(video, sidecar)
            except Exception as exc:
                self.log(f"clips: on_clip failed for {video.name} ({type(exc).__name__}: {exc})")

    def _sidecar(self, clip: _Clip, video: Path, frames: int) -> Dict[str, Any]:
        return {
            "video": video.name,
            "camera": self.camera,
            "event": clip.event,
            "last_event": clip.last_event if clip.last_event is not None else clip.event,
            "triggers": clip.triggers,
            "key": clip.key,
            "track_id": clip.track_id,
            "start": clip.first_time,
            "end": clip.last_time,
            "start_utc": _utc(clip.first_time),
            "end_utc": _utc(clip.last_time),
            "pre_seconds": self.pre_seconds,
            "post_seconds": self.post_seconds,
            "cut_short": clip.cut_short,
            "frames": frames,
            "codec": self.codec.name,
            "model_digest": self.model_digest,
        }

    def _drop(self, clip: _Clip, exc: BaseException) -> None:
        """Give up on `clip`: release its encoder, delete its temporary file, count it,
        and say why once while the same cause goes on (a full disk drops every clip)."""
        clip.failed = f"{type(exc).__name__}: {exc.strerror if isinstance(exc, OSError) and exc.strerror else exc}"
        cause = (type(exc).__name__, exc.errno) if isinstance(exc, OSError) and exc.errno else clip.failed
        if clip.writer is not None:
            clip.writer.abort()
            clip.writer = None
        if clip.temporary is not None:
            try:
                clip.temporary.unlink(missing_ok=True)
            except OSError:
                pass
            clip.temporary = None
        self.stats.clips_dropped += 1
        if cause != self._failing:
            self.log(f"clips: {clip.stem} dropped ({clip.failed}); the recorder goes on")
            self._failing, self._dropped_while_failing = cause, 0
        self._dropped_while_failing += 1

    def _apply_retention(self, keep: Optional[str]) -> None:
        """Delete the oldest clips (video and sidecar) while there are more than
        `max_clips` or they take more than `max_bytes`; never the clip `keep`."""
        if self.max_clips is None and self.max_bytes is None:
            return
        sizes: Dict[str, int] = {}
        for entry in os.scandir(self.directory):
            name = entry.name
            suffix = next((s for s in (SIDECAR_SUFFIX,) + VIDEO_SUFFIXES if name.endswith(s)), None)
            if name.startswith(CLIP_PREFIX) and suffix is not None and entry.is_file():
                stem = name[:-len(suffix)]
                sizes[stem] = sizes.get(stem, 0) + entry.stat().st_size
        total, deleted = sum(sizes.values()), 0
        for stem in sorted(sizes):  # names start with the clip's UTC start: oldest first
            if stem == keep:
                continue
            if (self.max_clips is None or len(sizes) - deleted <= self.max_clips) and \
                    (self.max_bytes is None or total <= self.max_bytes):
                break
            for suffix in VIDEO_SUFFIXES + (SIDECAR_SUFFIX,):  # the sidecar last: it marks a clip
                (self.directory / (stem + suffix)).unlink(missing_ok=True)
            total -= sizes[stem]
            deleted += 1


def _safe_name(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.]+", "_", str(text))[:40].strip("._") or "_"


def _utc(seconds: Optional[float]) -> Optional[str]:
    if seconds is None:
        return None
    return datetime.fromtimestamp(seconds, timezone.utc).isoformat(timespec="milliseconds").replace("+00:00", "Z")
