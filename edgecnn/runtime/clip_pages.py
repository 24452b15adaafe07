"""The web view's event clips (edgecnn.runtime.sinks.webview serves them): `/clips` lists
the finished clips in the run's clip directories, newest first, from each clip's JSON
sidecar (camera, event, start, duration, frames) with a player, and `/clips/NAME` is
one clip's video.

Only a finished clip can be asked for by name: a plain file (not a link) directly in
one of those directories, named as edgecnn.runtime.clips names clips (clip-....mp4 or
.webm: no path, no '..'), with its sidecar beside it (the recorder writes the sidecar
last, so a clip still being written, or half deleted by retention, is not one).
Nothing else in those directories, and nothing outside them, is served.
"""
from __future__ import annotations

import html
import json
import os
import re
import stat
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Dict, Iterable, List, Optional
from urllib.parse import quote

from edgecnn.runtime.camera_pages import STYLE
from edgecnn.runtime.clips import CLIP_PREFIX, SIDECAR_SUFFIX, VIDEO_SUFFIXES

CONTENT_TYPES = {".mp4": "video/mp4", ".webm": "video/webm"}
CLIP_NAME = re.compile(r"clip-[A-Za-z0-9_.-]+\.(?:mp4|webm)")  # what ClipRecorder's names are made of
MAX_LISTED = 500  # the newest clips a page lists (a directory without retention may hold thousands)
MAX_SIDECAR_BYTES = 64 * 1024  # a sidecar is about 1 KB; anything far larger is not one


@dataclass
class ClipEntry:
    """One finished clip, as the list shows it."""

    name: str  # the video's file name: /clips/NAME
    camera: str
    event: str  # the event that opened it, in words
    events: int  # triggers that made or extended it
    start: float  # capture time of its first frame (seconds since the epoch)
    seconds: float  # first to last frame
    frames: int


def _regular_file(path: Path) -> bool:
    """A plain file, not a link (a link could point anywhere) and not a directory."""
    try:
        return stat.S_ISREG(os.lstat(path).st_mode)
    except OSError:
        return False


def find_clip(directories: Iterable[str], name: str) -> Optional[Path]:
    """The path of finished clip `name` in one of `directories`, or None for any name that
    is not one (the caller answers 404 without saying why)."""
    if not CLIP_NAME.fullmatch(name) or ".." in name:
        return None
    for directory in dict.fromkeys(directories):
        folder = Path(directory)
        video = folder / name
        if _regular_file(video) and _regular_file(video.with_suffix(SIDECAR_SUFFIX)) \
                and video.resolve().parent == folder.resolve():
            return video
    return None


def content_type(path: Path) -> str:
    return CONTENT_TYPES[path.suffix]


def describe(event: Any) -> str:
    """A clip's first event in words: "cross door in (person #7)", "enter dock
    (car #3)", "new (cup #12)"."""
    if not isinstance(event, dict):
        return ""
    what = " ".join(str(event[key]) for key in ("event", "zone", "line", "direction") if event.get(key))
    if not what:
        what = str(event.get("kind") or "event")
    who = " ".join(part for part in (str(event.get("label") or ""),
                                     f"#{event['track_id']}" if event.get("track_id") is not None else "") if part)
    return f"{what} ({who})" if who else what


def _entry(video: Path, sidecar: Dict[str, Any], fallback_camera: str) -> Optional[ClipEntry]:
    start, end, frames = sidecar.get("start"), sidecar.get("end"), sidecar.get("frames")
    if not isinstance(start, (int, float)) or not isinstance(end, (int, float)) or not isinstance(frames, int):
        return None
    return ClipEntry(name=video.name, camera=str(sidecar.get("camera") or fallback_camera),
                     event=describe(sidecar.get("event")), events=int(sidecar.get("triggers") or 1),
                     start=float(start), seconds=max(0.0, float(end) - float(start)), frames=frames)


def list_clips(directories: Dict[str, str], camera: Optional[str] = None, limit: int = MAX_LISTED
               ) -> List[ClipEntry]:
    """The finished clips of every directory ({camera: directory}, "" for the run's own),
    newest first, at most `limit`; `camera`: only that camera's. A directory not made
    yet, an unreadable or malformed sidecar, or a sidecar whose video is gone is skipped."""
    candidates = []  # (name, directory, camera of the directory)
    for key, directory in directories.items():
        try:
            names = os.listdir(directory)
        except OSError:
            continue
        for name in names:
            if name.startswith(CLIP_PREFIX) and name.endswith(SIDECAR_SUFFIX):
                candidates.append((name, directory, key))
    # names begin with the clip's UTC start: the newest sort last, whatever their camera
    candidates.sort(key=lambda item: item[0], reverse=True)
    entries: List[ClipEntry] = []
    for name, directory, key in candidates:
        if len(entries) >= limit:
            break
        sidecar_path = Path(directory) / name
        sidecar = _read_sidecar(sidecar_path)
        if sidecar is None:
            continue
        video_name = str(sidecar.get("video") or "")
        stem = name[:-len(SIDECAR_SUFFIX)]
        if not any(video_name == stem + suffix for suffix in VIDEO_SUFFIXES) or \
                find_clip([directory], video_name) is None:
            continue
        entry = _entry(Path(directory) / video_name, sidecar, key)
        if entry is not None and (camera is None or entry.camera == camera):
            entries.append(entry)
    entries.sort(key=lambda entry: entry.start, reverse=True)
    return entries


def _read_sidecar(path: Path) -> Optional[Dict[str, Any]]:
    if not _regular_file(path):
        return None
    try:
        with open(path, "rb") as file:
            data = file.read(MAX_SIDECAR_BYTES + 1)
        found = json.loads(data) if len(data) <= MAX_SIDECAR_BYTES else None
    except (OSError, ValueError):
        return None
    return found if isinstance(found, dict) else None


def _utc(seconds: float) -> str:
    return datetime.fromtimestamp(seconds, timezone.utc).strftime("%Y-%m-%d %H:%M:%S UTC")


def with_query(path: str, query: str, **parameters: str) -> str:
    """`path` with `parameters` (URL-escaped here) and the view's query ("" or
    "?token=...", already escaped)."""
    parts = [f"{key}={quote(value, safe='')}" for key, value in parameters.items()]
    if query:
        parts.append(query.lstrip("?"))
    return path + ("?" + "&".join(parts) if parts else "")


PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>edgecnn: clips{title}</title>
<style>{style}
.clips th {{ text-align: left; color: #aaa; font-weight: normal; padding: 2px 10px; }}
.clips tr.playing td {{ background: #263238; }}
#player {{ width: 100%; max-width: 960px; background: #000; border: 1px solid #444; }}
button.play {{ background: #1e88e5; color: #fff; border: 0; border-radius: 4px; padding: 2px 10px; cursor: pointer; }}
</style></head>
<body><p><a href="{home}">&larr; live view</a>{all_link}</p>
<h1>clips{title}</h1>
<section><video id="player" controls muted playsinline preload="metadata"></video>
<p id="now-playing">{hint}</p></section>
<table class="clips" id="clips"><thead><tr><th>start</th><th>camera</th><th>event</th><th>events</th>
<th>seconds</th><th>frames</th><th>video</th></tr></thead>
<tbody>
{rows}
</tbody></table>
<script>
const player = document.getElementById("player");
for (const button of document.querySelectorAll("button.play")) {{
  button.addEventListener("click", () => {{
    for (const row of document.querySelectorAll("tr.playing")) row.classList.remove("playing");
    const row = button.closest("tr");
    row.classList.add("playing");
    document.getElementById("now-playing").textContent = row.dataset.clip;
    player.src = button.dataset.src;
    player.play().catch(() => {{}});
  }});
}}
</script></body></html>
"""

ROW = """<tr data-clip="{name}"><td>{start}</td><td>{camera}</td><td>{event}</td><td>{events}</td><td>{seconds}</td>
<td>{frames}</td><td><button class="play" data-src="{url}">play</button> <a href="{url}">{name}</a></td></tr>"""


def clips_page(entries: List[ClipEntry], query: str, camera: Optional[str] = None, limit: int = MAX_LISTED) -> str:
    """The list with a player; `query`: "" or "?token=..." (already URL-escaped), added to
    every link; `camera`: the one camera shown, if the list is filtered."""
    rows = [ROW.format(name=html.escape(e.name), start=html.escape(_utc(e.start)), camera=html.escape(e.camera),
                       event=html.escape(e.event), events=e.events, seconds=f"{e.seconds:.1f}", frames=e.frames,
                       url=html.escape(with_query("/clips/" + quote(e.name, safe=""), query)))
            for e in entries]
    if not rows:
        rows = ['<tr><td colspan="7">no clips yet</td></tr>']
    hint = "choose a clip to play" + (f" (the newest {limit} are listed)" if len(entries) >= limit else "")
    return PAGE.format(title=html.escape(f": camera {camera}" if camera else ""), style=STYLE,
                       home=html.escape(with_query("/", query)), hint=html.escape(hint), rows="\n".join(rows),
                       all_link=(f' &middot; <a href="{html.escape(with_query("/clips", query))}">all cameras</a>'
                                 if camera else ""))
