"""Every registered plug-in (backend, source, head, sink, tracker, publisher, task,
command) declares what its registry needs, and gives a one-line error for a bad
option: run over whatever the folders hold, so a new plug-in is checked the day it is
added."""
import dataclasses
import inspect

import numpy as np
import pytest

from edgecnn.core.errors import UserError
from edgecnn.core.task import Metric, Task, all_tasks, task_names
from edgecnn.runtime.backends import BackendType, backend_names, get_backend, parse_backend
from edgecnn.runtime.heads import Decoded, Head, all_heads, head_names
from edgecnn.runtime.publishers import PublisherType, _PUBLISHERS
from edgecnn.runtime.sinks import SinkType, sink_names, sink_types
from edgecnn.runtime.sources import SourceType, get_source, source_names
from edgecnn.runtime.trackers import TrackerType, get_tracker, tracker_names

pytestmark = pytest.mark.runtime  # torch-free: also run where only edgecnn[runtime] is installed


def one_line(exc: BaseException) -> bool:
    text = str(exc)
    return bool(text.strip()) and "\n" not in text.strip()


@pytest.mark.parametrize("name", backend_names())
def test_backend_declares_formats_options_and_refuses_unknown_options(name):
    kind = get_backend(name)
    assert isinstance(kind, BackendType) and kind.name == name
    assert kind.formats and kind.precisions and kind.module and kind.install and callable(kind.opener)
    assert set(kind.precisions) <= {"fp32", "fp16", "bf16", "int8"}
    assert all(option.help for option in kind.options.values())
    with pytest.raises(UserError) as error:
        parse_backend(f"{name}:no_such_option=1")
    assert one_line(error.value) and f"backend {name} has no option 'no_such_option'; known: " in str(error.value)
    for option in kind.options:
        assert option in str(error.value)


@pytest.mark.parametrize("name", source_names())
def test_source_declares_how_it_is_named_and_refuses_unknown_options(name):
    kind = get_source(name)
    assert isinstance(kind, SourceType) and kind.name == name and callable(kind.opener)
    assert kind.schemes or kind.claims is not None, "a source is named by a scheme or claims a path kind"
    assert kind.summary and kind.example
    assert all(option.help for option in kind.options.values())
    if kind.options:
        option = next(iter(kind.options))
        with pytest.raises(UserError) as bad_value:
            kind.split(f"{kind.schemes[0] if kind.schemes else 'x'}0?{option}=")
        assert one_line(bad_value.value) and f"option {option}" in str(bad_value.value)
    uri = {"camera": "camera:0", "v4l2": "/dev/video0", "picamera2": "picamera2:0", "stream": "rtsp://h/s",
           "gstreamer": "a ! appsink", "demo": "demo"}.get(name)
    if uri is None:  # a path kind: its own claim decides, so ask it with a path it takes
        return
    assert kind.named_by(uri) or kind.claims(uri)
    if kind.url_query:  # a network URL keeps keys it does not know (they belong to the server): below
        return
    with pytest.raises(UserError) as error:
        kind.split(f"{uri}?no_such_option=1")
    assert one_line(error.value) and f"source {name} has no option 'no_such_option'" in str(error.value)


def test_network_sources_pass_unknown_query_keys_to_the_server():
    for kind in (get_source(name) for name in source_names()):
        if kind.url_query:
            target, options = kind.split("rtsp://h/s?channel=2")
            assert target == "rtsp://h/s?channel=2" and options == {}


@pytest.mark.parametrize("name", head_names())
def test_head_declares_its_layout_and_checks_outputs_in_one_line(name):
    from edgecnn.core.card import ModelCard
    from edgecnn.core.preprocess import FITS

    head = next(h for h in all_heads() if h.name == name)
    assert isinstance(head, Head) and head.preprocessing in FITS
    config = head.config("")
    assert config["format"] == name
    card = ModelCard(task="segment" if head.has_masks else "detect", labels=["a", "b"], input_size=(64, 64),
                     layout="nhwc", head=config)
    with pytest.raises(UserError) as error:
        head.check(card, [(1, 1, 1, 1, 1)], "model.onnx")
    assert one_line(error.value) and "model.onnx" in str(error.value)
    assert isinstance(head.output_names(card), list)
    assert isinstance(head.matches([(1, 7)]), bool)
    assert inspect.signature(head.decode).parameters.keys() == {"card", "outputs"}


def test_decoded_carries_boxes_scores_masks_and_keypoints():
    decoded = Decoded(np.zeros((3, 4), np.float32), np.eye(3, dtype=np.float32),
                      keypoints=np.zeros((3, 17, 3), np.float32))
    boxes, scores = decoded  # unpacks as the pair
    kept = decoded.take(np.array([2, 0]))
    assert len(kept) == 2 and kept.keypoints.shape == (2, 17, 3) and kept.masks is None


@pytest.mark.parametrize("name", sink_names())
def test_sink_declares_its_options_for_the_command_line(name):
    kind = next(k for k in sink_types() if k.name == name)
    assert isinstance(kind, SinkType) and (kind.opener is not None or not kind.options)  # a sink code opens itself
    assert kind.queue_size >= 1
    for dest, settings in kind.options.items():
        assert dest.isidentifier() and "help" in settings, (name, dest)


@pytest.mark.parametrize("name", tracker_names())
def test_tracker_follows_a_box_and_says_what_ended(name):
    kind = get_tracker(name)
    assert isinstance(kind, TrackerType) and kind.name == name
    tracker = kind.create(30.0)
    box = np.array([[10, 10, 50, 50]], np.float32)
    ids = []
    for _ in range(5):
        track_ids, ages, states, ended = tracker.update(box, np.array([0.9], np.float32), np.array([0]))
        assert len(track_ids) == len(ages) == len(states) == 1 and isinstance(ended, list)
        ids.append(int(track_ids[0]))
    assert ids[-1] > 0 and len(set(ids[1:])) == 1


@pytest.mark.parametrize("kind", _PUBLISHERS.all(), ids=lambda kind: kind.name)
def test_publisher_declares_its_schemes_and_extra(kind):
    from edgecnn.runtime.publishers import publisher_for

    assert isinstance(kind, PublisherType) and kind.schemes and callable(kind.opener) and kind.extra
    for scheme in kind.schemes:
        assert publisher_for(scheme) is kind
    with pytest.raises(UserError) as error:
        publisher_for("nope")
    assert one_line(error.value)


@pytest.mark.parametrize("name", task_names())
def test_task_declares_metrics_capabilities_schema_and_options(name):
    from edgecnn.runtime.schema import frame_schema

    task = next(t for t in all_tasks() if t.name == name)
    assert isinstance(task, Task) and task.name == name and task.people_name
    assert task.primary_metric in task.metrics and list(task.metrics)[0] == task.primary_metric
    assert all(isinstance(metric, Metric) and metric.label for metric in task.metrics.values())
    assert all(isinstance(flag, bool) for flag in (task.trackable, task.has_masks, task.has_keypoints))
    assert frame_schema(task)["properties"]["task"] == {"const": name}
    for option, settings in task.record_options.items():
        assert option.isidentifier() and "help" in settings
    if task.train_options is not None:
        assert dataclasses.is_dataclass(task.train_options)
        for option in dataclasses.fields(task.train_options):
            assert "help" in option.metadata, (name, option.name)


def test_commands_are_named_and_documented():
    from edgecnn.commands import Command, commands

    paths = [command.path for command in commands()]
    assert len(paths) == len(set(paths)) and ("bench", "report") in paths and ("run",) in paths
    for command in commands():
        assert isinstance(command, Command) and command.help and callable(command.add) and callable(command.run)
