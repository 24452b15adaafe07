"""The result record: one JSON schema, versioned, for everything a run sends out (JSON
lines, MQTT, ZeroMQ, UDP). A frame gives one "frame" record, then one "event" record
per track event of that frame (edgecnn.runtime.tracking). Every record carries
"schema": SCHEMA_ID; a change that a reader could trip over gets a new version.

The detection fields map one-to-one onto ROS 2 vision_msgs/Detection2D (README,
"Result records"): header.stamp = capture_time, id = track_id,
bbox.center.position = center, bbox.size_x / size_y = size,
results[0].hypothesis.class_id = class_id (label is its name), .score = score.

    python -m edgecnn.runtime.schema      prints the JSON Schema document
"""
from __future__ import annotations

import json
from typing import Iterator, List, Optional

SCHEMA_ID = "edgecnn.result/2"

NUMBER_PAIR = {"type": "array", "items": {"type": "number"}, "minItems": 2, "maxItems": 2}
BOX = {"type": "array", "items": {"type": "number"}, "minItems": 4, "maxItems": 4,
        "description": "x1, y1, x2, y2 in frame pixels"}
_TIMING = {
    "schema": {"const": SCHEMA_ID},
    "frame": {"type": "integer", "minimum": 0, "description": "position in the source"},
    "capture_time": {"type": "number", "description": "seconds since the epoch when the frame was captured"},
    "camera": {"type": "string", "description": "the camera's name, in a run of several (edgecnn run --config)"},
}
DETECTION = {  # one detection: what a detector's frame record lists and its track events repeat
    "type": "object",
    "required": ["label", "class_id", "score", "box", "center", "size"],
    "properties": {
        "label": {"type": "string"}, "class_id": {"type": "integer", "minimum": 0},
        "score": {"type": "number", "minimum": 0, "maximum": 1}, "box": BOX,
        "center": {**NUMBER_PAIR, "description": "box centre x, y in pixels"},
        "size": {**NUMBER_PAIR, "description": "box width, height in pixels"},
        "track_id": {"type": "integer", "minimum": -1, "description": "-1: no track (tracked streams only)"},
        "age": {"type": "integer", "minimum": 0, "description": "frames since the track started"},
        "state": {"enum": ["tracked", "tentative", "untracked"]},
    },
    "additionalProperties": False,
}
_FRAME_COMMON = {
    **_TIMING, "type": {"const": "frame"},
    "frame_age_ms": {"type": "number", "description": "capture -> result ready"},
    "inference_ms": {"type": "number", "description": "the backend call alone"},
}


def frame_schema(task) -> dict:
    """A frame record of one task: the common fields and the task's own fragment."""
    return {
        "type": "object",
        "required": ["schema", "type", "frame", "capture_time", "frame_age_ms", "inference_ms", "task"],
        "properties": {**_FRAME_COMMON, "task": {"const": task.name}, **task.schema_fields()},
        "additionalProperties": False,
    }


EVENT_RECORD = {
    "type": "object",
    "required": ["schema", "type", "event", "frame", "capture_time", "track_id", "label", "class_id", "score",
                 "box", "center", "size", "age", "first_frame"],
    "properties": {
        **_TIMING, "type": {"const": "event"}, "event": {"enum": ["new", "update", "end"]},
        "track_id": {"type": "integer", "minimum": 1}, "label": {"type": "string"},
        "class_id": {"type": "integer", "minimum": 0}, "score": {"type": "number"},
        "box": BOX, "center": NUMBER_PAIR, "size": NUMBER_PAIR,
        "age": {"type": "integer", "minimum": 1}, "first_frame": {"type": "integer", "minimum": 0},
        "previous_label": {"type": "string", "description": "update: the class before"},
    },
    "additionalProperties": False,
}


_PLACE = {"track_id": {"type": "integer", "minimum": 1}, "label": {"type": "string"},
          "class_id": {"type": "integer", "minimum": 0}, "box": BOX, "center": NUMBER_PAIR, "size": NUMBER_PAIR}
ZONE_EVENT_RECORD = {
    "type": "object",
    "required": ["schema", "type", "event", "zone", "frame", "capture_time", "track_id", "label", "class_id", "box",
                 "center", "size", "entered_at", "seconds"],
    "properties": {
        **_TIMING, **_PLACE, "type": {"const": "event"}, "event": {"enum": ["enter", "exit", "dwell"]},
        "zone": {"type": "string"},
        "entered_at": {"type": "number", "description": "capture time of the first frame it was seen inside"},
        "seconds": {"type": "number", "minimum": 0, "description": "how long it has been inside"},
        "track_ended": {"type": "boolean", "description": "exit: its track ended, it was not seen leaving"},
    },
    "additionalProperties": False,
}
LINE_EVENT_RECORD = {
    "type": "object",
    "required": ["schema", "type", "event", "line", "direction", "frame", "capture_time", "track_id", "label",
                 "class_id", "box", "center", "size", "point"],
    "properties": {
        **_TIMING, **_PLACE, "type": {"const": "event"}, "event": {"const": "cross"}, "line": {"type": "string"},
        "direction": {"enum": ["in", "out"]},
        "point": {**NUMBER_PAIR, "description": "where the anchor's path met the line, frame pixels"},
    },
    "additionalProperties": False,
}
_PER_LABEL = {"type": "object", "additionalProperties": {"type": "integer", "minimum": 0}}
COUNTS_RECORD = {
    "type": "object",
    "required": ["schema", "type", "frame", "capture_time"],
    "description": "sent when a zone's occupancy or a line's counts change: the zones and lines that changed",
    "properties": {
        **_TIMING, "type": {"const": "counts"},
        "zones": {"type": "object", "additionalProperties": _PER_LABEL,
                  "description": "objects inside each zone now, per label"},
        "lines": {"type": "object", "additionalProperties": {
            "type": "object", "required": ["in", "out"], "properties": {"in": _PER_LABEL, "out": _PER_LABEL},
            "additionalProperties": False}, "description": "crossings of each line since the run began, per label"},
    },
    "additionalProperties": False,
}


def result_schema() -> dict:
    """The JSON Schema document, assembled from the registered tasks' fragments: one
    frame record per task, the track, zone and line event records and the counts record."""
    from edgecnn.core.task import all_tasks

    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "$id": f"https://edgecnn.dev/schema/{SCHEMA_ID}.json",
        "title": "edgecnn result record",
        "oneOf": [*(frame_schema(task) for task in all_tasks()), EVENT_RECORD, ZONE_EVENT_RECORD, LINE_EVENT_RECORD,
                  COUNTS_RECORD],
    }


def frame_record(result, **options) -> dict:
    """options: what the result's to_dict takes beyond its defaults (a segmenter's masks=)."""
    return {"schema": SCHEMA_ID, "type": "frame", **result.to_dict(**options)}


def event_record(event, capture_time: float, camera: Optional[str] = None) -> dict:
    x1, y1, x2, y2 = event.box
    record = {"schema": SCHEMA_ID, "type": "event", "event": event.event, "frame": event.frame_index,
              "capture_time": round(capture_time, 4), "track_id": event.track_id, "label": event.label,
              "class_id": event.class_id, "score": round(event.score, 4), "box": [round(v, 1) for v in event.box],
              "center": [round((x1 + x2) / 2, 1), round((y1 + y2) / 2, 1)],
              "size": [round(x2 - x1, 1), round(y2 - y1, 1)], "age": event.age, "first_frame": event.first_frame}
    if event.previous_label is not None:
        record["previous_label"] = event.previous_label
    if camera is not None:
        record["camera"] = camera
    return record


def place_record(event, camera: Optional[str] = None) -> dict:
    """A zone event (enter, exit, dwell) or a line crossing (edgecnn.runtime.analytics) as
    its record."""
    found = event.to_dict()
    x1, y1, x2, y2 = found.pop("box")
    record = {"schema": SCHEMA_ID, "type": "event", "event": found.pop("event"), "frame": found.pop("frame"),
              "capture_time": found.pop("time"), **found, "box": [x1, y1, x2, y2],
              "center": [round((x1 + x2) / 2, 1), round((y1 + y2) / 2, 1)], "size": [round(x2 - x1, 1), round(y2 - y1, 1)]}
    if camera is not None:
        record["camera"] = camera
    return record


def counts_record(frame, camera: Optional[str] = None) -> Optional[dict]:
    """The zones and lines whose counts this frame changed (edgecnn.runtime.analytics
    .AnalyticsFrame), or None when none did."""
    if not frame.changed_zones and not frame.changed_lines:
        return None
    record = {"schema": SCHEMA_ID, "type": "counts", "frame": frame.frame_index, "capture_time": round(frame.time, 4)}
    if camera is not None:
        record["camera"] = camera
    if frame.changed_zones:
        record["zones"] = {name: dict(frame.occupancy[name]) for name in frame.changed_zones}
    if frame.changed_lines:
        record["lines"] = {name: {"in": dict(frame.line_counts[name]["in"]), "out": dict(frame.line_counts[name]["out"])}
                           for name in frame.changed_lines}
    return record


def records(result, **options) -> Iterator[dict]:
    """The frame's record, then one per track event of the frame, one per zone or line
    event, and the counts that changed."""
    camera = getattr(result, "camera", None)
    yield frame_record(result, **options)
    for event in getattr(result, "events", ()):
        yield event_record(event, result.capture_time, camera)
    analytics = getattr(result, "analytics", None)
    if analytics is not None:
        for event in analytics.events:
            yield place_record(event, camera)
        counts = counts_record(analytics, camera)
        if counts is not None:
            yield counts


def encode(record: dict) -> bytes:
    """The bytes every transport sends: compact UTF-8 JSON, no newline."""
    return json.dumps(record, separators=(",", ":")).encode()


def validate(record: dict) -> List[str]:
    """Problems of a record against the schema ([] if none); needs the jsonschema package
    (tests and readers; the runtime itself never validates what it writes)."""
    import jsonschema

    validator = jsonschema.Draft202012Validator(result_schema())
    return [error.message for error in validator.iter_errors(record)]


if __name__ == "__main__":
    print(json.dumps(result_schema(), indent=1))
