"""What goes into a release, decided on the desktop before anything is copied: the
config as the device will read it, the model files beside it, the extras it needs, and
where its /healthz will answer.

The copied config is rewritten:
    model files (and label files)  models/NAME, beside the copied config: the release's copies
    outputs named by relative paths  /var/lib/SERVICE/...: the service's StateDirectory,
                                   kept across releases; absolute ones stay and become
                                   the unit's ReadWritePaths
    health                         added (127.0.0.1:PORT, default_health_port) where the config has none
Sources name things on the device (camera:0, /dev/video0, rtsp://...); a file named
relative to the config on this machine is refused, since the device has no such file.
"""
from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Dict, List, Optional, Tuple

from edgecnn.core.errors import UserError

DEFAULT_HEALTH_PORT = 8095  # /healthz and /metrics on the device's loopback, unless the config names one
NAMED_PORTS = 900  # a service deployed with --name gets one of the next ports, chosen by its name


def default_health_port(service: str) -> int:
    """The default service's port, or one of the NAMED_PORTS after it chosen by the
    service's name: two services on one device do not ask for the same port."""
    if service == "edgecnn":
        return DEFAULT_HEALTH_PORT
    return DEFAULT_HEALTH_PORT + 1 + int(hashlib.sha256(service.encode()).hexdigest(), 16) % NAMED_PORTS
MODEL_SUFFIXES = (".tflite", ".onnx")


@dataclass
class Release:
    config_text: str  # config.yaml as the device reads it
    files: List[Tuple[str, Path]]  # (name in the release, file here): models and label files
    models: List[str]  # the model files here, for the trust check
    extras: List[str]  # edgecnn[...] extras the config needs on the device
    health_url: str  # the health server's root as the device reaches it
    read_write_paths: List[str] = field(default_factory=list)
    digest: str = ""  # of the config and every file: names the release
    # sources that are files on the device, which only the device can check (`run --check` there before the
    # switch); everything else was checked here by the same edgecnn the device runs
    device_sources: List[str] = field(default_factory=list)


def _base(config_path: str) -> str:
    return os.path.dirname(os.path.abspath(config_path))


def _local(path: str, base: str) -> str:
    expanded = os.path.expanduser(path)
    return expanded if os.path.isabs(expanded) else os.path.normpath(os.path.join(base, expanded))


class _Copies:
    """Local files to copy, each under a unique name in models/."""

    def __init__(self) -> None:
        self.by_local: Dict[str, str] = {}

    def add(self, local: str) -> str:
        if local not in self.by_local:
            name = os.path.basename(local)
            taken = set(self.by_local.values())
            stem, number = name, 1
            while f"models/{name}" in taken:
                number += 1
                name = f"{number}-{stem}"
            self.by_local[local] = f"models/{name}"
        return self.by_local[local]


def _rewrite_model(spec: Any, base: str, copies: _Copies) -> Any:
    """A model entry (a path, or a mapping with path and labels) naming the copies."""
    if isinstance(spec, str):
        return copies.add(_local(spec, base))
    if isinstance(spec, dict):
        spec = dict(spec)
        if isinstance(spec.get("path"), str):
            spec["path"] = copies.add(_local(spec["path"], base))
        labels = spec.get("labels")
        if isinstance(labels, str) and "," not in labels and os.path.isfile(_local(labels, base)):
            spec["labels"] = copies.add(_local(labels, base))
    return spec


def _rewrite_outputs(values: Dict[str, Any], state_dir: str, writable: List[str]) -> Dict[str, Any]:
    """Sink options whose value is a file the run writes: relative ones into the state
    directory; the directories of absolute ones become writable."""
    from edgecnn.runtime.sinks import sink_types

    outputs = {path for kind in sink_types() for path in kind.outputs(values) if path != "-"}
    rewritten = dict(values)
    for key, value in values.items():
        if isinstance(value, str) and value in outputs:
            expanded = os.path.expanduser(value)
            if os.path.isabs(expanded):
                writable.append(os.path.dirname(expanded) or "/")
            else:
                rewritten[key] = os.path.join(state_dir, os.path.normpath(expanded))
    return rewritten


def _check_source(name: str, source: str, base: str, where: str) -> None:
    from edgecnn.runtime.config import _source_relative

    if _source_relative(source, base) != source:
        raise UserError(f"{where}: cameras.{name}.source: {source!r} is a file beside the config here; sources are "
                        f"read on the device: name the device's absolute path (or a camera, a stream, demo)")


def health_address(data: Dict[str, Any], port: int, where: str) -> Tuple[str, str]:
    """(the config's health value, the URL the device reaches it at)."""
    from edgecnn.runtime.http_server import parse_address

    value = data.get("health") or f"127.0.0.1:{port}"
    host, bound_port = parse_address(value, f"{where}: health")
    if bound_port == 0:
        raise UserError(f"{where}: health: port 0 picks a port at random; a deployed service needs a fixed one")
    if host in ("0.0.0.0", ""):
        host = "127.0.0.1"
    elif host == "::":
        host = "::1"
    shown = f"[{host}]" if ":" in host else host
    return value, f"http://{shown}:{bound_port}/"


def device_only_sources(plan) -> List[str]:
    """Sources that are absolute paths naming nothing here: the device's own files."""
    paths = [camera.source.split("?")[0] for camera in plan.cameras.values()]
    return [path for path in paths if os.path.isabs(path) and not path.startswith("/dev/")
            and not os.path.exists(path)]


def _desktop_view(plan):
    """The plan as the desktop can check it: the device's own files left out (the
    device checks them before the switch)."""
    import copy

    view = copy.deepcopy(plan)
    for camera in view.cameras.values():
        if camera.source.split("?")[0] in device_only_sources(plan):
            camera.source = "demo"
    return view


def needed_extras(plan) -> List[str]:
    """The edgecnn[...] extras beyond runtime that this plan imports on the device."""
    extras = {"runtime"}
    if any(camera.track for camera in plan.cameras.values()):
        extras.add("track")
    for uri in plan.sinks.get("publish") or []:
        from edgecnn.runtime.publishers import parse_uri, publisher_for

        kind = publisher_for(parse_uri(uri).scheme)
        if kind.modules:
            extras.add(kind.extra)
    if any(str(model.backend).startswith("openvino") for model in plan.models.values()):
        extras.add("openvino")
    saves = [camera.sinks.get("save") for camera in plan.cameras.values()] + [plan.sinks.get("save")]
    if any(isinstance(save, str) and save.lower().endswith(".mp4") for save in saves):
        extras.add("video")  # H.264 that browsers play, as on the desktop with the extra installed
    return sorted(extras)


def prepare_release(config_path: str, service: str, health_port: Optional[int] = None) -> Release:
    """Validate the config here (the desktop's edgecnn: load_config, check_plan) and
    make the release's files. Nothing touches the device."""
    import yaml

    from edgecnn.deploy.layout import STATE_BASE
    from edgecnn.runtime.config import check_plan, load_config

    plan = load_config(config_path)
    check_plan(_desktop_view(plan))
    with open(config_path, encoding="utf-8") as handle:
        data = yaml.safe_load(handle)
    base, where = _base(config_path), config_path
    state_dir = os.path.join(STATE_BASE, service)
    copies, writable = _Copies(), []
    if data.get("model") is not None:
        data["model"] = _rewrite_model(data["model"], base, copies)
    for name, spec in (data.get("models") or {}).items():
        data["models"][name] = _rewrite_model(spec, base, copies)
    if isinstance(data.get("labels"), str) and os.path.isfile(_local(data["labels"], base)):
        data["labels"] = copies.add(_local(data["labels"], base))
    for name, camera in data["cameras"].items():
        _check_source(name, camera["source"], base, plan.locations.get(f"cameras.{name}", where))
        model = camera.get("model")
        if isinstance(model, str) and model.lower().endswith(MODEL_SUFFIXES):
            camera["model"] = copies.add(_local(model, base))
        data["cameras"][name] = _rewrite_outputs(camera, state_dir, writable)
    data = _rewrite_outputs(data, state_dir, writable)
    port = default_health_port(service) if health_port is None else health_port
    data["health"], health_url = health_address(data, port, where)
    text = f"# written by edgecnn deploy from {os.path.basename(config_path)}\n" + \
        yaml.safe_dump(data, sort_keys=False, default_flow_style=False)
    files = [(name, Path(local)) for local, name in copies.by_local.items()]
    digest = hashlib.sha256(text.encode())
    for name, path in sorted(files):
        digest.update(name.encode() + b"\0" + hashlib.sha256(path.read_bytes()).digest())
    models = [local for local in copies.by_local if local.lower().endswith(MODEL_SUFFIXES)]
    return Release(config_text=text, files=files, models=models, extras=needed_extras(plan),
                   health_url=health_url, read_write_paths=sorted(set(writable)), digest=digest.hexdigest(),
                   device_sources=device_only_sources(plan))


def one_camera_config(model: Optional[str], source: str, options: Dict[str, Any]) -> Dict[str, Any]:
    """`edgecnn deploy HOST --model FILE --source URI ...`: the one-camera command line as
    a config (the same path to the device as --config)."""
    data: Dict[str, Any] = {}
    if model is not None:
        data["model"] = os.path.abspath(model)
    data.update({key: value for key, value in options.items() if value is not None and key != "camera"})
    camera = {"source": source, **(options.get("camera") or {})}
    data["cameras"] = {"camera": camera}
    return data
