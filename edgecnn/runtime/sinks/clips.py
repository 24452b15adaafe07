"""`--clips DIR` (and `clips: DIR` per camera in a config): a video of each event, from
`--clips-pre` seconds before it to `--clips-post` seconds after, extended while the event
goes on (its object stays in view, or it makes further events), written atomically with
a JSON sidecar (edgecnn.runtime.clips.ClipRecorder).

The events that make clips: a zone's enter, exit and dwell and a line's cross where the
camera has zones or lines; where it has none, a track's `new` (an object appeared, as
Frigate records on detection). A clip is keyed by its track, so one object going in
and out of several zones makes one clip that its events extend."""
from __future__ import annotations

from edgecnn.core.errors import UserError
from edgecnn.runtime.sinks import Sink, SinkContext, SinkType


class ClipSink(Sink):
    name = "clips"

    def __init__(self, values: dict, context: SinkContext) -> None:
        from edgecnn.runtime.clips import ClipRecorder

        card = context.cards.get(context.camera or "", {}) if hasattr(context, "cards") else {}
        megabytes = values.get("clips_max_mb")
        self.recorder = ClipRecorder(values["clips"], camera=context.camera or context.source_name,
                                     pre_seconds=float(values.get("clips_pre") or 5.0),
                                     post_seconds=float(values.get("clips_post") or 5.0),
                                     max_clips=values.get("clips_max"),
                                     max_bytes=int(megabytes * 1024 * 1024) if megabytes else None,
                                     model_digest=(card or {}).get("weights_digest", ""), log=context.log)
        self.camera = context.camera
        self.open_tracks = set()  # tracks whose clips their presence keeps extending

    def write(self, image, result) -> None:
        self.recorder.push(image, result.capture_time)
        analytics = getattr(result, "analytics", None)
        if analytics is not None:
            triggers = analytics.events
        else:
            triggers = [event for event in getattr(result, "events", ()) if event.event == "new"]
        for event in triggers:
            found = event.to_dict() if hasattr(event, "to_dict") else {
                "event": event.event, "track_id": event.track_id, "label": event.label, "frame": event.frame_index}
            if self.camera:
                found["camera"] = self.camera
            self.recorder.trigger(found, key=f"track-{event.track_id}", track_id=event.track_id,
                                  at=result.capture_time)
            self.open_tracks.add(event.track_id)
        seen = set(int(t) for t in getattr(result, "track_ids", None) if t >= 0) \
            if getattr(result, "track_ids", None) is not None else set()
        for track in list(self.open_tracks):  # the event goes on while its object is in view
            if track in seen:
                self.recorder.extend(f"track-{track}", result.capture_time)
        for event in getattr(result, "events", ()):
            if event.event == "end":
                self.open_tracks.discard(event.track_id)

    def close(self, completed: bool = True) -> None:
        self.recorder.close()


def _check(values: dict) -> None:
    for option in ("clips_pre", "clips_post", "clips_max", "clips_max_mb"):
        if values.get(option) is not None and not values.get("clips"):
            raise UserError(f"--{option.replace('_', '-')} is for --clips DIR")
        if values.get(option) is not None and not float(values[option]) >= 0:
            raise UserError(f"--{option.replace('_', '-')} must be 0 or more, got {values[option]}")


SINK = SinkType(
    name="clips",
    options={"clips": dict(default=None, metavar="DIR", help="write a video of each event (a zone's enter, exit, "
                           "dwell, a line's cross; without zones or lines, each new track) with a JSON sidecar"),
             "clips_pre": dict(default=None, type=float, metavar="S", help="seconds before the event (default 5)"),
             "clips_post": dict(default=None, type=float, metavar="S", help="seconds after it, extended while it "
                                "goes on (default 5)"),
             "clips_max": dict(default=None, type=int, metavar="N", help="keep at most N clips, the oldest deleted"),
             "clips_max_mb": dict(default=None, type=float, metavar="MB", help="keep at most MB megabytes of clips")},
    opener=ClipSink,
    checker=_check,
    writes_into=lambda values: [values["clips"]],
    queue_size=32,
)
