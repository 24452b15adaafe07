"""The source seam: where frames come from. A source kind is one module here exposing
`SOURCE`, a `SourceType`: the URI schemes or path kinds it claims, the options it
takes, and how it opens. Every source takes its options in one grammar,

    URI?OPTION=VALUE&OPTION=VALUE        camera:0?size=1280x720&fps=15&format=MJPG

and an option a source does not declare is an error naming the ones it does (a
network stream's own query keys stay in its URL: they belong to the server).

    camera:N | N            camera N, opened the way this board opens cameras (v4l2, picamera2, gstreamer)
    /dev/videoN | v4l2:N    that V4L2 device
    picamera2:N             a Raspberry Pi camera through picamera2 (libcamera)
    rtsp:// http(s):// ...  network streams (OpenCV's FFmpeg)
    "... ! ..."             a GStreamer pipeline string ending in appsink
    demo                    a built-in moving synthetic scene (the shapes the bundled detector knows)
    file.mp4 / .avi         a video file
    img.png, DIR, *.jpg     an image, every image in a directory, a glob

Live sources (cameras, streams, pipelines, demo, and files read in real time) keep only
the newest frame, so the age of each answer stays bounded; files otherwise give every
frame in order, decoded ahead in a thread.
"""
from __future__ import annotations

import re
import sys
from dataclasses import dataclass, field
from typing import Any, Callable, Dict, Iterator, List, Optional, Tuple
from urllib.parse import parse_qsl

import numpy as np

from edgecnn.core.errors import UserError
from edgecnn.core.registry import Registry

_SOURCES = Registry("edgecnn.runtime.sources", "SOURCE", "source")
_URI_SCHEME = re.compile(r"^([A-Za-z][A-Za-z0-9+.-]*)://")


@dataclass
class Frame:
    image: np.ndarray  # BGR uint8 (or grey)
    index: int  # position in the source (gaps: frames dropped by a live source)
    capture_time: float  # wall clock, seconds since the epoch
    capture_clock: float  # time.perf_counter() at capture, for ages
    blob: Optional[np.ndarray] = None  # model input, when the source's thread made it ahead
    # seconds into a video file (index / its frame rate); None for every other source
    media_time: Optional[float] = None


def stderr_log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


class Source:
    """Iterate to get frames; `close()` (or a with-block) stops capture threads."""

    name: str = ""
    live: bool = False
    fps: float = 0.0  # nominal frame rate (0: unknown)
    dropped: int = 0  # frames captured but replaced by a newer one before use
    reconnects: int = 0
    skipped: int = 0  # inputs that could not be decoded (named in the log as they happen)
    status: str = "running"
    # Files: the model's preprocessing, run in the decode thread so it overlaps inference.
    prepare: Optional[Callable[[np.ndarray], np.ndarray]] = None

    def __iter__(self) -> Iterator[Frame]:
        raise NotImplementedError

    def close(self) -> None:
        pass

    def __enter__(self) -> "Source":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


# ------------------------------------------------------------------ options

@dataclass
class SourceOption:
    """One option a source takes: `parse` turns the text value into what the source uses
    (raising ValueError with the reason); `help` says what it does."""

    help: str
    parse: Callable[[str], Any] = str


def parse_size(text: str) -> Tuple[int, int]:
    """'1280x720' -> (width, height)."""
    parts = text.lower().split("x")
    if len(parts) != 2 or not all(p.isdigit() and int(p) > 0 for p in parts):
        raise ValueError(f"expected WIDTHxHEIGHT like 1280x720, got {text!r}")
    return int(parts[0]), int(parts[1])


def parse_fps(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise ValueError(f"expected a number of frames per second, got {text!r}") from None
    if not value > 0:
        raise ValueError(f"needs fps > 0, got {text}")
    return value


def parse_switch(text: str) -> bool:
    lowered = text.lower()
    if lowered in ("1", "true", "yes", "on"):
        return True
    if lowered in ("0", "false", "no", "off"):
        return False
    raise ValueError(f"expected 1 or 0 (true/false), got {text!r}")


def parse_fourcc(text: str) -> str:
    if len(text) != 4 or not text.isascii():
        raise ValueError(f"a pixel format is a four-character code like MJPG or YUYV, got {text!r}")
    return text.upper()


def parse_count(text: str) -> int:
    if not text.isdigit():
        raise ValueError(f"expected a whole number, got {text!r}")
    return int(text)


@dataclass
class SourceContext:
    """What an opener may need from the run: the log, and whether files are read in real
    time (`--realtime`)."""

    log: Callable[[str], None] = stderr_log
    realtime: bool = False


@dataclass
class SourceType:
    """One kind of source. `schemes`: URI prefixes it claims ("demo", "camera:",
    "rtsp://"); `claims(text)`: for path kinds, whether it takes a URI no scheme claims
    (asked in `priority` order). `opener(target, options, context)` opens the URI with
    its options already parsed (target: the URI without them)."""

    name: str
    opener: Callable[[str, Dict[str, Any], SourceContext], Source]
    schemes: Tuple[str, ...] = ()
    claims: Optional[Callable[[str], bool]] = None
    priority: int = 50
    options: Dict[str, SourceOption] = field(default_factory=dict)
    live: bool = True
    # a network URL: its query may hold the server's own keys, kept in the URL
    url_query: bool = False
    summary: str = ""
    example: str = ""

    def named_by(self, text: str) -> bool:
        """Whether one of its schemes names the URI: "camera:" and "rtsp://" as prefixes,
        a bare word ("demo") alone or before its options."""
        return any(text.startswith(scheme) if scheme.endswith(":") or scheme.endswith("//")
                   else text == scheme or text.startswith(scheme + "?") for scheme in self.schemes)

    def split(self, text: str) -> Tuple[str, Dict[str, Any]]:
        """(target, parsed options) of a URI this source takes; UserError for an option it
        does not declare or a bad value."""
        target, raw = split_query(text, self.options if self.url_query else None)
        parsed: Dict[str, Any] = {}
        for key, value in raw:
            option = self.options.get(key)
            if option is None:
                raise UserError(f"source {self.name} has no option {key!r}; known: "
                                f"{', '.join(self.options) or 'none'}")
            if key in parsed:
                raise UserError(f"source {self.name}: option {key} given twice")
            try:
                parsed[key] = option.parse(value)
            except ValueError as exc:
                raise UserError(f"source {self.name}: option {key}: {exc}") from None
        return target, parsed


def split_query(text: str, keep_unknown_of: Optional[Dict[str, SourceOption]] = None) -> Tuple[str, List[tuple]]:
    """'URI?a=1&b=2' -> ('URI', [('a', '1'), ('b', '2')]). A '?' starts options only when
    what follows is KEY=VALUE pairs (a glob's '?' is a wildcard). keep_unknown_of: a
    network URL's declared options; its other keys stay in the URL."""
    base, mark, query = text.rpartition("?")
    if not mark or not query or not all("=" in item for item in query.split("&") if item):
        return text, []
    pairs = parse_qsl(query, keep_blank_values=True)
    if keep_unknown_of is None:
        return base, pairs
    ours = [(k, v) for k, v in pairs if k in keep_unknown_of]
    theirs = [item for item in query.split("&") if item and item.partition("=")[0] not in keep_unknown_of]
    return base + ("?" + "&".join(theirs) if theirs else ""), ours


# ------------------------------------------------------------------ the registry

def source_names() -> List[str]:
    return _SOURCES.names()


def get_source(name: str) -> SourceType:
    return _SOURCES.get(name)


def source_types() -> List[SourceType]:
    return _SOURCES.all()


def source_for(text: str) -> SourceType:
    """The source kind that takes a URI: a scheme that names it, else the first path kind
    (by priority) that claims it; UserError listing the known ones otherwise."""
    kinds = source_types()
    for kind in kinds:
        if kind.named_by(text):
            return kind
    for kind in sorted((k for k in kinds if k.claims is not None), key=lambda k: k.priority):
        if kind.claims(text):
            return kind
    known = "; ".join(f"{kind.example or kind.name}" for kind in kinds)
    scheme = _URI_SCHEME.match(text)
    if scheme:
        raise UserError(f"unknown source scheme {scheme.group(1)!r}; known: {known}")
    raise UserError(f"{text}: no such file, directory or source (sources: {known})")


def open_source(uri, *, realtime: bool = False, log: Callable[[str], None] = stderr_log) -> Source:
    """The source a URI names, opened with its options (see the module docstring)."""
    from edgecnn.core.redact import redact

    text = str(uri).strip()
    if not text:
        raise UserError("an empty source; give a camera index, a file, a URL or demo")
    kind = source_for(text)
    target, options = kind.split(text)
    try:
        return kind.opener(target, options, SourceContext(log=log, realtime=realtime))
    except UserError as exc:
        raise UserError(redact(str(exc))) from None
