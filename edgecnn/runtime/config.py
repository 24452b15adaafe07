"""`edgecnn run --config FILE.yaml`: a whole setup in one reviewed, versioned file.

    model: shapes-int8.tflite          # optional: the bundled model otherwise
    backend: auto                      # the model's backend, threads, instances, conf, iou, batch
    cameras:
      front: {source: "rtsp://cam1/stream?transport=tcp", track: bytetrack, json: front.jsonl}
      rear:  {source: "/dev/video2?size=1280x720&fps=15", model: other}
    models:                            # more models, named; a camera names one (or a file)
      other: {path: other.tflite, conf: 0.4}
    json: all.jsonl                    # every camera's records in one file
    serve: 127.0.0.1:8080              # the web view of every camera
    publish: [mqtt://broker/shop]

The file is validated against a published JSON Schema (`python -m edgecnn.config`
prints it), assembled from the registries: each sink's options are keys of a camera or
of the whole run, each task's record options keys of `records`. An error names the
file, the line and the key in one line. A camera whose source cannot possibly work (a
malformed URI, a missing file) is an error at start; a camera that is merely offline is
retried until it opens.
"""
from __future__ import annotations

import json
import os
import re
from typing import Any, Dict, List, Optional, Tuple

from edgecnn.core.errors import UserError
from edgecnn.runtime.plan import DEFAULT_MODEL, CameraPlan, ModelPlan, RunPlan

SCHEMA_ID = "https://edgecnn.dev/schema/edgecnn.config/1.json"
NAME = r"^[A-Za-z0-9][A-Za-z0-9_.-]*$"  # a camera's or model's name: it appears in topics, files and URLs
MODEL_FIELDS = ("path", "backend", "threads", "instances", "conf", "iou", "batch", "verify", "task", "input_size", "layout",
                "mean", "std", "labels", "color", "preset", "head", "mask_threshold")


def _model_schema() -> dict:
    numbers = {"oneOf": [{"type": "number"}, {"type": "array", "items": {"type": "number"}, "minItems": 1,
                                                                "maxItems": 3}]}
    return {"type": "object", "additionalProperties": False, "properties": {
        "path": {"type": "string", "description": ".tflite or .onnx file (default: the bundled model)"},
        "backend": {"type": "string", "description": "NAME[:OPTION=VALUE,...] (edgecnn.runtime.backends)"},
        "threads": {"type": "integer", "minimum": 1},
        "instances": {"type": "integer", "minimum": 1, "description": "interpreters that infer different "
                      "cameras' frames at once (default: one per core for a model several cameras share, "
                      "unless threads or a batch are set)"},
        "conf": {"type": "number", "minimum": 0, "maximum": 1},
        "iou": {"type": "number", "minimum": 0, "maximum": 1},
        "batch": {"enum": ["auto", "on", "off"], "description": "infer its cameras' frames together"},
        "verify": {"type": "boolean", "description": "check the weights against the card's digest"},
        "task": {"type": "string"}, "input_size": {"type": ["integer", "string"]},
        "layout": {"enum": ["nchw", "nhwc"]}, "mean": numbers, "std": numbers,
        "labels": {"oneOf": [{"type": "string"}, {"type": "array", "items": {"type": "string"}}]},
        "color": {"enum": ["rgb", "bgr", "gray"]}, "preset": {"type": "string"}, "head": {"type": "string"},
        "mask_threshold": {"type": "number", "exclusiveMinimum": 0, "exclusiveMaximum": 1}}}


def _place_schema(kind: str) -> dict:
    """A zone or a line: its points as text ('x,y x,y ...') or [[x, y], ...], or an
    object with points and options (edgecnn.runtime.analytics.specs)."""
    points = {"oneOf": [{"type": "string"}, {"type": "array", "items": {
        "type": "array", "items": {"type": "number"}, "minItems": 2, "maxItems": 2}}]}
    options = {"points": points, "camera": {"type": "string", "description": "top-level entries: the camera"},
               "labels": {"oneOf": [{"type": "string"}, {"type": "array", "items": {"type": "string"}}]},
               "anchor": {"type": "string"}, "fractions": {"type": "boolean"}}
    if kind == "zone":
        options.update({"min_time": {"type": "number", "minimum": 0}, "dwell": {"type": "number",
                                                                                  "exclusiveMinimum": 0},
                        "dwell_repeat": {"type": "boolean"}})
    else:
        options.update({"in": {"enum": ["left", "right"]}, "margin": {"type": "number", "minimum": 0},
                        "margin_fraction": {"type": "number", "minimum": 0, "exclusiveMaximum": 1}})
    return {"oneOf": [points, {"type": "object", "required": ["points"], "properties": options,
                               "additionalProperties": False}]}


def _option_schema(settings: Dict[str, Any]) -> dict:
    """A command-line option (argparse keyword arguments) as a JSON Schema property."""
    if settings.get("action") == "store_true":
        schema: dict = {"type": "boolean"}
    elif settings.get("action") == "append":
        schema = {"oneOf": [{"type": "string"}, {"type": "array", "items": {"type": "string"}, "minItems": 1}]}
    elif settings.get("type") is int:
        schema = {"type": "integer"}
    elif settings.get("type") is float:
        schema = {"type": "number"}
    else:
        schema = {"type": ["string", "integer"]}
    if settings.get("choices"):
        schema = {"enum": list(settings["choices"])}
    if settings.get("help"):
        schema["description"] = settings["help"]
    return schema


def _sink_properties(scope: str) -> Dict[str, dict]:
    from edgecnn.runtime.sinks import sink_types

    return {dest: _option_schema(settings) for kind in sink_types() if kind.options and
            (scope == "run" or kind.scope != "run") for dest, settings in kind.options.items()}


def config_schema() -> dict:
    """The JSON Schema of a config file, from the registries (sinks, tasks, trackers)."""
    from edgecnn.core.task import record_option_specs
    from edgecnn.runtime.trackers import tracker_names

    model = _model_schema()
    camera = {"type": "object", "required": ["source"], "additionalProperties": False, "properties": {
        "source": {"type": "string", "minLength": 1,
                   "description": "URI[?OPTION=VALUE&...] (edgecnn.runtime.sources): camera:N, /dev/videoN, "
                                  "rtsp://..., a file, a directory, demo"},
        "model": {"type": "string", "description": "a name under models, or a .tflite/.onnx file"},
        "track": {"oneOf": [{"type": "boolean"}, {"enum": tracker_names()}]},
        "realtime": {"type": "boolean", "description": "read a file at its frame rate, like a camera"},
        "max_frames": {"type": "integer", "minimum": 1},
        "zones": {"type": "object", "propertyNames": {"pattern": NAME}, "additionalProperties": _place_schema("zone")},
        "lines": {"type": "object", "propertyNames": {"pattern": NAME}, "additionalProperties": _place_schema("line")},
        **_sink_properties("camera")}}
    records = {"type": "object", "additionalProperties": False,
               "properties": {name: _option_schema(spec) for name, spec in record_option_specs().items()}}
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema", "$id": SCHEMA_ID,
        "title": "edgecnn run --config", "type": "object", "required": ["cameras"], "additionalProperties": False,
        "properties": {
            "model": {"oneOf": [{"type": "string"}, model]},
            **{key: model["properties"][key] for key in MODEL_FIELDS if key != "path"},
            "models": {"type": "object", "propertyNames": {"pattern": NAME}, "additionalProperties": model},
            "cameras": {"type": "object", "minProperties": 1, "propertyNames": {"pattern": NAME},
                        "additionalProperties": camera},
            "records": records,
            "zones": {"type": "object", "propertyNames": {"pattern": NAME}, "additionalProperties": _place_schema("zone"),
                      "description": "zones of the cameras they name (camera: NAME)"},
            "lines": {"type": "object", "propertyNames": {"pattern": NAME}, "additionalProperties": _place_schema("line"),
                      "description": "lines of the cameras they name (camera: NAME)"},
            "max_frames": {"type": "integer", "minimum": 1, "description": "per camera"},
            "strict": {"type": "boolean", "description": "an input that cannot be decoded ends the run"},
            "health": {"type": "string", "description": "HOST:PORT serving only /healthz and /metrics"},
            **_sink_properties("run")}}


# ------------------------------------------------------------------ reading with lines

def _read_yaml(path: str) -> Tuple[Any, Dict[Tuple, int]]:
    """The document and the line (1-based) of every key path in it; duplicate keys are
    an error (YAML itself lets the last one win silently)."""
    import yaml

    try:
        with open(path, encoding="utf-8") as handle:
            text = handle.read()
    except OSError as exc:
        raise UserError(f"{path}: cannot read the config: {exc.strerror or exc}") from None
    except UnicodeDecodeError:
        raise UserError(f"{path}: not a text file") from None
    try:
        loader = yaml.SafeLoader(text)
        try:
            node = loader.get_single_node()
            data = loader.construct_document(node) if node is not None else None
        finally:
            loader.dispose()
    except yaml.MarkedYAMLError as exc:
        mark = exc.context_mark or exc.problem_mark  # where the unfinished construct began, if any
        line = f":{mark.line + 1}" if mark is not None else ""
        raise UserError(f"{path}{line}: not valid YAML: {exc.problem or exc.context}") from None
    except yaml.YAMLError as exc:
        raise UserError(f"{path}: not valid YAML: {str(exc).splitlines()[0]}") from None
    lines: Dict[Tuple, int] = {(): 1}

    def walk(current, at: Tuple) -> None:
        if isinstance(current, yaml.MappingNode):
            seen: Dict[Any, int] = {}
            for key_node, value_node in current.value:
                key = key_node.value
                if key in seen:
                    raise UserError(f"{path}:{key_node.start_mark.line + 1}: {_dotted(at + (key,))} appears twice "
                                    f"(first at line {seen[key]})")
                seen[key] = key_node.start_mark.line + 1
                lines[at + (key,)] = key_node.start_mark.line + 1
                walk(value_node, at + (key,))
        elif isinstance(current, yaml.SequenceNode):
            for index, item in enumerate(current.value):
                lines[at + (index,)] = item.start_mark.line + 1
                walk(item, at + (index,))

    if node is not None:
        walk(node, ())
    return data, lines


def _dotted(keys) -> str:
    return ".".join(str(k) for k in keys) or "(the document)"


def _where(path: str, lines: Dict[Tuple, int], keys) -> str:
    keys = tuple(keys)
    while keys not in lines and keys:
        keys = keys[:-1]
    return f"{path}:{lines.get(keys, 1)}"


def validate(data: Any, path: str, lines: Dict[Tuple, int]) -> None:
    """One line for the first problem (the one nearest the top of the file)."""
    import jsonschema

    validator = jsonschema.Draft202012Validator(config_schema())
    errors = sorted(validator.iter_errors(data), key=lambda e: (
        lines.get(tuple(e.absolute_path), 1), len(e.absolute_path), e.validator != "additionalProperties"))
    if not errors:
        return
    error = errors[0]
    keys = list(error.absolute_path)
    if error.validator == "additionalProperties":
        extra = sorted(set(error.instance) - set(error.schema.get("properties", {})))
        keys, message = keys + extra[:1], (f"unknown key {extra[0]!r}; known: "
                                           f"{', '.join(error.schema.get('properties', {}))}")
    elif "propertyNames" in error.schema_path:
        keys, message = keys + [error.instance], (f"{error.instance!r} is not a valid name (letters, digits, '_', "
                                                  f"'-', '.')")
    elif error.validator in ("oneOf", "anyOf"):
        message = f"{json.dumps(error.instance)[:60]} is not a valid value here"
    else:
        message = error.message
    raise UserError(f"{_where(path, lines, keys)}: {_dotted(keys)}: {message}")


# ------------------------------------------------------------------ the plan

def _model_plan(spec: Any, base: str) -> ModelPlan:
    from edgecnn.runtime.card_options import CardOptions

    spec = {"path": spec} if isinstance(spec, str) else dict(spec or {})

    def listed(value):
        return ",".join(str(v) for v in value) if isinstance(value, list) else value

    path = spec.get("path")
    card = CardOptions(task=spec.get("task"), input_size=None if spec.get("input_size") is None else
                       str(spec["input_size"]), layout=spec.get("layout"), mean=listed(spec.get("mean")),
                       std=listed(spec.get("std")), labels=listed(spec.get("labels")), color=spec.get("color"),
                       head=spec.get("head"), preset=spec.get("preset"), mask_threshold=spec.get("mask_threshold"))
    return ModelPlan(path=_relative_to(path, base), backend=spec.get("backend", "auto"), threads=spec.get("threads"),
                     conf=spec.get("conf", 0.25), iou=spec.get("iou"), card=card, batch=spec.get("batch", "auto"),
                     verify=spec.get("verify", True), instances=spec.get("instances"))


def _relative_to(path: Optional[str], base: str) -> Optional[str]:
    """A file named in the config is found beside the config (unless absolute)."""
    if path is None:
        return None
    expanded = os.path.expanduser(path)
    return expanded if os.path.isabs(expanded) else os.path.normpath(os.path.join(base, expanded))


def _source_relative(source: str, base: str) -> str:
    """A file source is beside the config too; URIs, devices and pipelines stay as given."""
    if re.match(r"^[A-Za-z][A-Za-z0-9+.-]*:", source) or source.isdigit() or " ! " in source \
            or source.startswith("/") or source == "demo" or source.startswith("demo?"):
        return source
    return os.path.normpath(os.path.join(base, source)) if not source.startswith("~") else os.path.expanduser(source)


def plan_from_config(data: Dict[str, Any], path: str, lines: Dict[Tuple, int]) -> RunPlan:
    from edgecnn.runtime.sinks import sink_types

    base = os.path.dirname(os.path.abspath(path))
    top_model = data.get("model")
    default = {**{k: data[k] for k in MODEL_FIELDS if k != "path" and k in data},
               **({"path": top_model} if isinstance(top_model, str) else dict(top_model or {}))}
    models = {DEFAULT_MODEL: _model_plan(default, base)}
    locations = {f"models.{DEFAULT_MODEL}": _where(path, lines, ("model",))}
    for name, spec in (data.get("models") or {}).items():
        if name == DEFAULT_MODEL:
            raise UserError(f"{_where(path, lines, ('models', name))}: models.{name}: {DEFAULT_MODEL!r} is the "
                            f"top-level model's name; choose another")
        models[name] = _model_plan(spec, base)
        locations[f"models.{name}"] = _where(path, lines, ("models", name))
    run_options = {dest for kind in sink_types() for dest in kind.options}
    cameras = {}
    for name, spec in data["cameras"].items():
        model = spec.get("model", DEFAULT_MODEL)
        if model not in models:
            if not model.lower().endswith((".tflite", ".onnx")):
                raise UserError(f"{_where(path, lines, ('cameras', name, 'model'))}: cameras.{name}.model: "
                                f"no model named {model!r}; known: {', '.join(models)} (or name a .tflite/.onnx "
                                f"file)")
            models[model] = _model_plan({**{k: v for k, v in default.items() if k != "path"}, "path": model}, base)
            locations[f"models.{model}"] = _where(path, lines, ("cameras", name, "model"))
        track = spec.get("track")
        cameras[name] = CameraPlan(
            source=_source_relative(spec["source"], base), model=model,
            track=("bytetrack" if track is True else None) if isinstance(track, bool) else track,
            realtime=bool(spec.get("realtime", False)),
            sinks=_beside(base, {k: _sink_value(k, v) for k, v in spec.items() if k in run_options}),
            zones=dict(spec.get("zones") or {}), lines=dict(spec.get("lines") or {}),
            max_frames=spec.get("max_frames", data.get("max_frames")))
        locations[f"cameras.{name}"] = _where(path, lines, ("cameras", name, "source"))
    for kind in ("zones", "lines"):  # top-level entries name their camera
        for place, spec in (data.get(kind) or {}).items():
            where = _where(path, lines, (kind, place))
            camera = spec.get("camera") if isinstance(spec, dict) else None
            if camera not in cameras:
                raise UserError(f"{where}: {kind}.{place}: " + (f"names no camera; give camera: NAME" if camera is None
                                else f"no camera named {camera!r}; known: {', '.join(cameras)}"))
            found = getattr(cameras[camera], kind)
            if place in found:
                raise UserError(f"{where}: {kind}.{place}: camera {camera} already has a {kind[:-1]} named {place}")
            found[place] = {k: v for k, v in spec.items() if k != "camera"}
    plan = RunPlan(models=models, cameras=cameras,
                   sinks=_beside(base, {k: _sink_value(k, v) for k, v in data.items() if k in run_options}),
                   records=dict(data.get("records") or {}), retry_at_start=True, strict=bool(data.get("strict")),
                   health=data.get("health"), source_file=path, locations=locations)
    return plan


def _beside(base: str, values: Dict[str, Any]) -> Dict[str, Any]:
    """Sink values with the files they write found beside the config (unless absolute)."""
    from edgecnn.runtime.sinks import sink_types

    files = {path for kind in sink_types() for path in kind.outputs(values)}
    return {dest: _relative_to(value, base) if isinstance(value, str) and value in files else value
            for dest, value in values.items()}


def _sink_value(dest: str, value: Any) -> Any:
    """A config value as the command line would give it (a publish list, paths as text)."""
    from edgecnn.runtime.sinks import sink_types

    settings = next(kind.options[dest] for kind in sink_types() if dest in kind.options)
    if settings.get("action") == "append":
        return [value] if isinstance(value, str) else list(value)
    return value


def load_config(path: str) -> RunPlan:
    """The plan a config file describes; UserError naming the file, line and key."""
    data, lines = _read_yaml(path)
    if data is None:
        raise UserError(f"{path}: the config is empty; it needs at least cameras:")
    validate(data, path, lines)
    return plan_from_config(data, path, lines)


def check_plan(plan: RunPlan) -> List[str]:
    """What `--check` verifies without opening anything: every source URI parses with its
    options, every model file exists and is a model file, every sink's options can work.
    Returns one line per camera for the report."""
    from edgecnn.runtime.model_file import model_format
    from edgecnn.runtime.runner import check_sink_values, record_options
    from edgecnn.runtime.sources import source_for

    locations = plan.locations
    record_options(plan.records)
    check_sink_values(plan.sinks)
    if plan.health is not None:
        from edgecnn.runtime.http_server import parse_address

        parse_address(plan.health, f"{plan.source_file}: health")
    for name, model in plan.models.items():
        where = locations.get(f"models.{name}", plan.source_file)
        if model.path is not None:
            try:
                model_format(model.path)
            except UserError as exc:
                raise UserError(f"{where}: models.{name}: {exc}") from None
            if not os.path.isfile(model.path):
                raise UserError(f"{where}: models.{name}: {model.path}: no such model file")
        from edgecnn.runtime.backends import parse_backend

        try:
            parse_backend(model.backend)
        except UserError as exc:
            raise UserError(f"{where}: models.{name}.backend: {exc}") from None
    report = []
    for name, camera in plan.cameras.items():
        where = locations.get(f"cameras.{name}", plan.source_file)
        try:
            kind = source_for(camera.source)
            kind.split(camera.source)
            check_sink_values(camera.sinks, f"camera {name}: ")
            from edgecnn.runtime.analytics.specs import build

            build(camera.zones, camera.lines)  # points, polygons, options: the labels are checked at start
        except UserError as exc:
            raise UserError(f"{where}: cameras.{name}: {exc}") from None
        report.append(f"camera {name}: {kind.name} source, model {camera.model}"
                      + (f", tracked by {camera.track}" if camera.track else ""))
    return report


def main() -> None:
    """`python -m edgecnn.config`: print the JSON Schema of a config file."""
    print(json.dumps(config_schema(), indent=1))
