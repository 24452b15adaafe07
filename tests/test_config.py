"""`edgecnn run --config FILE.yaml`: the schema it is validated against, one-line errors
naming the file, the line and the key, `--check` that opens nothing, and runs of several
cameras in one process whose every record names its camera."""
import json
import subprocess
import sys
import textwrap

import pytest

from conftest import assert_one_line_error, run_cli
from edgecnn.core.errors import UserError
from runtime_fixtures import VIDEO, VIDEO_FRAMES, detector_onnx

pytestmark = pytest.mark.runtime  # torch-free: also run where only edgecnn[runtime] is installed


def write(tmp_path, text, name="cameras.yaml"):
    path = tmp_path / name
    path.write_text(textwrap.dedent(text))
    return path


def test_the_schema_is_published_and_follows_the_registries():
    out = subprocess.run([sys.executable, "-m", "edgecnn.config"], capture_output=True, text=True, check=True)
    schema = json.loads(out.stdout)
    camera = schema["properties"]["cameras"]["additionalProperties"]["properties"]
    assert {"source", "model", "track", "json", "save", "zones", "lines", "clips"} <= set(camera)
    assert "serve" not in camera and "publish" not in camera  # run-wide outputs only
    assert {"serve", "publish", "json", "health", "records"} <= set(schema["properties"])
    assert "masks" in schema["properties"]["records"]["properties"]  # the segment task's record option
    import jsonschema

    jsonschema.Draft202012Validator.check_schema(schema)


@pytest.mark.parametrize("text, line, message", [
    ("cameras:\n  front: {source: demo\n", 2, "not valid YAML"),
    ("cameras:\n  front:\n    source: demo\n    sauce: x\n", 4, "cameras.front.sauce: unknown key 'sauce'; known:"),
    ("cameras:\n  front:\n    source: demo\n    max_frames: many\n", 4, "cameras.front.max_frames: 'many' is not"),
    ("cameras:\n  front: {source: demo}\n  front: {source: demo}\n", 3, "cameras.front appears twice (first at line 2)"),
    ("cameras:\n  front: {source: demo, model: nope}\n", 2, "cameras.front.model: no model named 'nope'"),
    ("model: x.tflite\ncameras:\n  front:\n    source: demo\n    serve: 127.0.0.1:0\n", 5,
     "cameras.front.serve: unknown key 'serve'"),
    ("cameras: {}\n", 1, "cameras"),
    ("camera:\n  front: {source: demo}\n", 1, "unknown key 'camera'"),
    ("cameras:\n  front: {source: demo, track: sort}\n", 2, "cameras.front.track"),
    ("cameras:\n  'front door': {source: demo}\n", 2, "not a valid name"),
])
def test_a_bad_config_is_one_line_naming_file_line_and_key(tmp_path, text, line, message):
    path = write(tmp_path, text)
    result = run_cli("run", "--config", path, "--check")
    assert_one_line_error(result, contains=f"{path}:{line}:")
    assert message in result.stderr, result.stderr


def test_check_validates_deeply_and_opens_nothing(tmp_path):
    path = write(tmp_path, f"""
        model: {detector_onnx()}
        cameras:
          dock: {{source: "/dev/video9?size=1280x720&fps=15", track: true}}
          yard: {{source: "rtsp://127.0.0.1:9/live?transport=tcp"}}
          film: {{source: {VIDEO}, json: film.jsonl}}
        """)
    result = run_cli("run", "--config", path, "--check")
    assert result.returncode == 0, result.stderr
    assert "valid, 3 camera(s), 1 model(s)" in result.stdout and "camera dock: v4l2 source" in result.stdout
    assert not (tmp_path / "film.jsonl").exists()
    bad_option = write(tmp_path, "cameras:\n  dock: {source: '/dev/video9?sizes=2'}\n", "bad.yaml")
    assert_one_line_error(run_cli("run", "--config", bad_option, "--check"),
                          contains=f"{bad_option}:2: cameras.dock: source v4l2 has no option 'sizes'")
    missing = write(tmp_path, "model: absent.tflite\ncameras:\n  a: {source: demo}\n", "missing.yaml")
    assert_one_line_error(run_cli("run", "--config", missing, "--check"),
                          contains=f"{missing}:1: models.default: {tmp_path / 'absent.tflite'}: no such model file")


def test_errors_at_start_name_the_camera_and_refuse_shared_or_input_outputs(tmp_path):
    broken = tmp_path / "broken.onnx"
    broken.write_bytes(b"not onnx" * 50)
    cases = {
        f"model: {broken}\ncameras:\n  a: {{source: demo}}\n": f"{broken}",
        "cameras:\n  a: {source: nothing.mp4}\n": "cameras.a: ",
        "cameras:\n  a: {source: demo, json: same.jsonl}\n  b: {source: demo, json: same.jsonl}\n":
            "same.jsonl is also camera a's json",
        f"cameras:\n  a: {{source: {VIDEO}, save: {VIDEO}}}\n": "is an input of this run",
    }
    for index, (text, message) in enumerate(cases.items()):
        path = write(tmp_path, text, f"case{index}.yaml")
        result = run_cli("run", "--config", path, "--max-frames", "2")
        assert_one_line_error(result, contains=message)
    assert VIDEO.stat().st_size > 100_000  # the input survived
    with pytest.raises(UserError, match="--source is given per camera"):
        from edgecnn.cli import main

        try:
            main(["run", "--config", str(write(tmp_path, "cameras:\n  a: {source: demo}\n", "ok.yaml")),
                  "--source", "demo"])
        except SystemExit:
            raise UserError("--source is given per camera")


@pytest.mark.slow  # about 4-10 s: in CI, left out of the inner loop
def test_several_cameras_in_one_process_name_their_records(tmp_path):
    path = write(tmp_path, f"""
        model: {detector_onnx()}
        cameras:
          film: {{source: {VIDEO}, json: film.jsonl}}
          scene: {{source: "demo?fps=50&size=192", track: bytetrack, max_frames: 30}}
        records: {{}}
        """)
    every = tmp_path / "every.jsonl"
    result = run_cli("run", "--config", path, "--json", every)
    assert result.returncode == 0, result.stderr
    film = [json.loads(line) for line in (tmp_path / "film.jsonl").read_text().splitlines()]
    assert [r["frame"] for r in film] == list(range(VIDEO_FRAMES)) and {r["camera"] for r in film} == {"film"}
    records = [json.loads(line) for line in every.read_text().splitlines()]
    frames = [r for r in records if r["type"] == "frame"]
    assert {r["camera"] for r in frames} == {"film", "scene"}
    assert sum(r["camera"] == "scene" for r in frames) == 30
    assert any(r["type"] == "event" and r["camera"] == "scene" for r in records)
    from edgecnn.runtime.schema import validate

    assert all(validate(r) == [] for r in records)
    assert "summary film (ended)" in result.stderr and "summary scene" in result.stderr
    assert "model default: 2 cameras in turn" in result.stderr  # the start's decision, and the summary's
    summary_line = next(line for line in result.stderr.splitlines() if line.startswith("summary: 2 cameras"))
    assert "model default: 2 cameras in turn" in summary_line


@pytest.mark.slow  # about 4-10 s: in CI, left out of the inner loop
def test_a_shared_model_runs_one_instance_per_core_and_keeps_each_cameras_frames_in_order(tmp_path):
    """Without threads or instances named, a model three cameras share gets one
    interpreter per core (at most one per camera); a camera is in one lane at a time,
    so its frames reach its tracker and files in order."""
    import os

    from conftest import run_cli_batch

    cameras = """
        cameras:
          film: {{source: {video}, json: film{i}.jsonl}}
          a: {{source: "demo?fps=200&size=128&seed=1", track: bytetrack, max_frames: 40, json: a{i}.jsonl}}
          b: {{source: "demo?fps=200&size=128&seed=2", max_frames: 40, json: b{i}.jsonl}}
        """
    configs = [write(tmp_path, f"model: {detector_onnx()}\n{extra}" + textwrap.dedent(cameras).format(video=VIDEO, i=i),
                     f"c{i}.yaml") for i, extra in enumerate(["", "instances: 3\n", "threads: 2\n"])]
    auto, three, named = run_cli_batch(*(["run", "--config", c] for c in configs), cwd=tmp_path)
    cores = min(os.cpu_count() or 1, 3)
    expected = [f"model default: 3 cameras in turn on {cores} instances of {max(1, (os.cpu_count() or 1) // cores)}"
                if cores > 1 else "model default: 3 cameras in turn (", "model default: 3 cameras in turn on 3 instances",
                "model default: 3 cameras in turn ("]
    for i, (result, line) in enumerate(zip((auto, three, named), expected)):
        assert result.returncode == 0, result.stderr
        assert line in result.stderr, result.stderr
        files = {name: [json.loads(r) for r in (tmp_path / f"{name}{i}.jsonl").read_text().splitlines()]
                 for name in ("film", "a", "b")}
        assert [r["frame"] for r in files["film"]] == list(range(VIDEO_FRAMES))
        for name in ("a", "b"):
            frames = [r["frame"] for r in files[name] if r.get("type", "frame") == "frame"]
            assert len(frames) == 40 and frames == sorted(frames) and len(set(frames)) == 40, (name, frames)
    assert "on 3 instances" in next(line for line in three.stderr.splitlines() if line.startswith("summary: 3"))


def test_the_python_api_streams_several_cameras_in_one_loop():
    import edgecnn

    model = edgecnn.load(str(detector_onnx()), log=None)
    seen = {}
    with model.stream({"left": "demo?fps=60&size=128&seed=1", "right": "demo?fps=60&size=128&seed=2"},
                      max_frames=10) as stream:
        for image, result in stream:
            seen[result.camera] = seen.get(result.camera, 0) + 1
    assert seen == {"left": 10, "right": 10}
