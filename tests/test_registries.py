"""The seams: tasks, detector heads and sinks are found in their registries; an unknown
name is one line that lists the known ones; letterbox preprocessing and its inverse."""
import numpy as np
import pytest

from conftest import assert_one_line_error, run_cli
from edgecnn.core.card import ModelCard
from edgecnn.core.errors import UserError
from edgecnn.core.preprocess import LETTERBOX_PAD, preprocess
from edgecnn.runtime.heads import get_head, head_names
from edgecnn.runtime.nms import to_frame
from edgecnn.runtime.runner import RunOptions, run
from edgecnn.runtime.sinks import get_sink, sink_names
from edgecnn.core.task import get_task, task_names
from runtime_fixtures import detector_onnx, without_card

pytestmark = pytest.mark.runtime  # torch-free: also run where only edgecnn[runtime] is installed


def test_registries_list_what_their_folders_hold():
    assert task_names() == ["classify", "detect", "segment"]
    assert {"ltrb-sigmoid", "yolo-v8", "yolo-v5", "yolo-end2end", "tflite-ssd", "ssd-jetson"} <= set(head_names())
    assert set(sink_names()) >= {"callback", "jsonl", "video", "webview", "window"}
    assert get_task("detect").primary_metric == "map50_95" and get_task("classify").primary_metric == "top1"
    assert get_task("segment").primary_metric == "miou"
    assert get_head("ltrb-sigmoid").preprocessing == "resize"


@pytest.mark.parametrize("lookup, kind", [(get_task, "task"), (get_head, "detector head"), (get_sink, "sink")])
def test_an_unknown_name_lists_the_known_ones(lookup, kind):
    with pytest.raises(UserError, match=f"unknown {kind} 'nope'; known: "):
        lookup("nope")


def test_unknown_names_on_the_command_line_are_one_line(tmp_path):
    plain = without_card(detector_onnx(), tmp_path / "plain.onnx")
    flags = ["--source", "demo", "--max-frames", "1", "--mean", "127.5", "--std", "127.5",
             "--labels", "circle,rectangle,triangle"]
    assert_one_line_error(run_cli("run", plain, *flags, "--task", "detect", "--head", "nope"),
                          contains="unknown detector head 'nope'; known: ltrb-sigmoid")
    result = run_cli("run", plain, *flags, "--task", "nope")
    assert_one_line_error(result, contains="invalid choice: 'nope'")
    assert "classify" in result.stderr and "detect" in result.stderr
    with pytest.raises(UserError, match="unknown sink option 'nope'; known: .*json"):
        run(RunOptions(source="demo", max_frames=1, sinks={"nope": 1}), log=lambda m: None)


def test_a_card_naming_an_unknown_head_is_refused():
    with pytest.raises(UserError, match="detector output format 'nope' is not supported .*ltrb-sigmoid"):
        ModelCard(task="detect", labels=["a"], input_size=(64, 64), head={"format": "nope"})


def test_letterbox_pads_with_114_and_boxes_map_back_onto_the_frame():
    card = ModelCard(task="detect", labels=["a"], input_size=(64, 64), layout="nhwc", mean=(0.0,), std=(1.0,))
    frame = np.full((100, 200, 3), 200, np.uint8)  # h 100, w 200: scale 0.32, 32 rows of image, 16 of pad each side
    blob = preprocess(frame, card, "letterbox")[0]
    assert blob.shape == (64, 64, 3)
    assert (blob[:16] == LETTERBOX_PAD).all() and (blob[48:] == LETTERBOX_PAD).all() and (blob[17:47] == 200).all()
    corners = np.array([[0, 16, 64, 48], [32, 32, 48, 40]], np.float32)  # the whole image; a box inside it
    np.testing.assert_allclose(to_frame(corners, (64, 64), (100, 200), "letterbox"),
                               [[0, 0, 200, 100], [100, 50, 150, 75]], atol=1e-4)
    np.testing.assert_allclose(to_frame(corners, (64, 64), (100, 200), "resize"),
                               [[0, 25, 200, 75], [100, 50, 150, 62.5]], atol=1e-4)
