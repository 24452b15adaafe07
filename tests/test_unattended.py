"""What a device that runs for weeks without a person watching meets, each case
asserting the exit code, the one line and what is left on disk: inputs that do not
decode are named, counted and said in the exit code; SIGTERM and SIGHUP end a run as
Ctrl-C does (summary written, video playable, nothing half-written left), a second
signal ends the draining; outputs never destroy inputs or each other; disk full,
unwritable places, wrong options and missing extras are one line; limits hold."""
import os
import signal
import struct
import subprocess
import sys
import time
import zlib

import cv2
import numpy as np
import pytest

from conftest import ROOT, assert_one_line_error, run_cli
from runtime_fixtures import VIDEO, VIDEO_FRAMES, detector_onnx

pytestmark = pytest.mark.runtime  # torch-free: also run where only edgecnn[runtime] is installed


def png_declaring(width: int, height: int) -> bytes:
    """A PNG whose header declares width x height (and holds no pixels)."""
    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IEND", b"")


@pytest.fixture
def folder_with_a_giant(tmp_path):
    folder = tmp_path / "frames"
    folder.mkdir()
    for i in range(10):
        cv2.imwrite(str(folder / f"f{i:02d}.png"), np.full((48, 64, 3), 20 * i, np.uint8))
    (folder / "f05b.png").write_bytes(png_declaring(100_000, 100_000))
    return folder


@pytest.mark.slow  # about 4-10 s: in CI, left out of the inner loop
def test_an_input_that_does_not_decode_is_named_counted_and_in_the_exit_code(folder_with_a_giant, tmp_path):
    out = tmp_path / "records.jsonl"
    result = run_cli("run", detector_onnx(), "--source", folder_with_a_giant, "--json", out)
    assert result.returncode == 4, result.stderr
    assert "f05b.png: declares 100000x100000 pixels, more than the limit" in result.stderr
    assert "summary: 10 frames" in result.stderr and "1 inputs skipped" in result.stderr
    assert len(out.read_text().splitlines()) == 10
    strict = run_cli("run", detector_onnx(), "--source", folder_with_a_giant, "--json", tmp_path / "s.jsonl",
                     "--strict")
    assert strict.returncode == 2 and strict.stderr.strip().splitlines()[-1].endswith("(--strict)")
    raised = run_cli("run", detector_onnx(), "--source", f"{folder_with_a_giant}?max_pixels=20000000000",
                     "--json", tmp_path / "r.jsonl")
    assert raised.returncode == 4 and "f05b.png: not a readable image; skipped" in raised.stderr  # OpenCV refuses it


def test_the_python_stream_counts_what_it_skips(folder_with_a_giant):
    import edgecnn

    model = edgecnn.load(str(detector_onnx()), log=None)
    messages = []
    stream = model.stream(str(folder_with_a_giant), log=messages.append)
    assert len(list(stream)) == 10 and stream.source.skipped == 1
    assert any("f05b.png" in m for m in messages)


def run_in_background(*args, env=None):
    return subprocess.Popen([sys.executable, "-m", "edgecnn", "run", *map(str, args)], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, cwd=ROOT, env={**os.environ, **(env or {})})


def wait_for_records(path, count, timeout=60):
    deadline = time.time() + timeout
    while time.time() < deadline:
        if path.exists() and len(path.read_text().splitlines()) >= count:
            return
        time.sleep(0.1)
    raise AssertionError(f"{path} did not reach {count} records")


def frames_in(video) -> int:
    capture, count = cv2.VideoCapture(str(video)), 0
    while capture.read()[0]:
        count += 1
    return count


@pytest.mark.slow(8)
@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGHUP])
def test_a_service_manager_signal_ends_the_run_cleanly(tmp_path, signum):
    video, records = tmp_path / "out.webm", tmp_path / "out.jsonl"
    process = run_in_background(detector_onnx(), "--source", "demo?fps=30&size=192", "--save", video,
                                "--json", records)
    wait_for_records(records, 15)
    process.send_signal(signum)
    out, err = process.communicate(timeout=60)
    assert process.returncode == 0, err
    assert f"stopping on {signal.Signals(signum).name}" in err and "summary:" in err
    frames = int(err.split("summary: ")[1].split(" frames")[0])
    assert frames_in(video) == frames == len(records.read_text().splitlines())
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.jsonl", "out.webm"]  # nothing partial left


@pytest.mark.slow(12)
def test_a_second_signal_ends_a_slow_drain_and_the_video_is_still_finalised(tmp_path):
    video, records = tmp_path / "out.webm", tmp_path / "out.jsonl"
    # a broker that never answers: its queue only fills, and draining it would wait its full time
    process = run_in_background(detector_onnx(), "--source", "demo?fps=30&size=192", "--save", video,
                                "--json", records, "--publish", "mqtt://127.0.0.1:9/robot", "--publish-retry")
    wait_for_records(records, 15)
    process.send_signal(signal.SIGTERM)
    time.sleep(0.5)
    began = time.time()
    process.send_signal(signal.SIGTERM)
    out, err = process.communicate(timeout=60)
    assert time.time() - began < 8  # not the whole drain
    assert process.returncode == 0 and "draining" in err, err
    assert frames_in(video) == int(err.split("summary: ")[1].split(" frames")[0])
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]


@pytest.mark.slow  # about 4-10 s: in CI, left out of the inner loop
def test_outputs_never_destroy_inputs_or_each_other(tmp_path):
    copy = tmp_path / "tree.avi"
    copy.write_bytes(VIDEO.read_bytes())
    size = copy.stat().st_size
    for flag in ("--json", "--save"):
        result = run_cli("run", detector_onnx(), "--source", copy, flag, copy)
        assert_one_line_error(result, contains="is an input of this run")
        assert "running" not in result.stderr  # refused before the model loaded
    assert_one_line_error(run_cli("run", detector_onnx(), "--source", copy, "--json", detector_onnx()),
                          contains="is an input of this run")
    assert copy.stat().st_size == size and frames_in(copy) == VIDEO_FRAMES
    shared = tmp_path / "shared.jsonl"
    first = run_in_background(detector_onnx(), "--source", "demo?fps=30&size=192", "--json", shared)
    try:
        wait_for_records(shared, 5)
        second = run_cli("run", detector_onnx(), "--source", "demo", "--max-frames", "3", "--json", shared)
        assert_one_line_error(second, contains=f"is being written by another edgecnn run (process {first.pid})")
    finally:
        first.send_signal(signal.SIGTERM)
        first.communicate(timeout=60)
    lines = shared.read_text().splitlines()
    assert lines and all(line.endswith("}") for line in lines)  # no torn line, nothing interleaved


@pytest.mark.slow  # about 4-10 s: in CI, left out of the inner loop
def test_what_a_user_can_cause_is_one_line(tmp_path):
    (tmp_path / "VIDEO").write_text("a file where a directory should be")
    at_start = [  # refused before the model loads
        (["--save", "/proc/edgecnn.webm"], "cannot write /proc/edgecnn.webm"),
        (["--json", tmp_path / "VIDEO" / "x.jsonl"], "cannot write"),
    ]
    for args, message in at_start:
        assert_one_line_error(run_cli("run", detector_onnx(), "--source", "demo", "--max-frames", "3", *args),
                              contains=message)
    during = [  # found once running: the run's own lines, then the error as its last and only error line
        (["--json", "/dev/full"], "edgecnn: error: cannot write /dev/full: No space left on device"),
        (["--task", "segment", "--json", tmp_path / "seg.jsonl"], "its head ltrb-sigmoid makes boxes, not masks"),
    ]
    for args, message in during:
        result = run_cli("run", detector_onnx(), "--source", "demo", "--max-frames", "3", *args)
        lines = result.stderr.strip().splitlines()
        assert result.returncode == 2 and message in lines[-1] and "Traceback" not in result.stderr
        assert sum("error" in line for line in lines) == 1, result.stderr
    assert not (tmp_path / "seg.jsonl").exists()


def test_torch_side_commands_name_their_extra_and_info_works_without_torch(tmp_path):
    blocked = "import sys; sys.modules['torch'] = None; from edgecnn.cli import main; main(sys.argv[1:])"
    for command, extra in (("train", "train"), ("prune", "train"), ("quantize", "convert"), ("convert", "convert"),
                           ("shapes", "train")):
        args = {"train": [], "prune": ["m.pt", "--target-macs", "0.5", "--out", tmp_path / "p.pt"],
                "quantize": ["m.pt", "--out", tmp_path / "q.pt2"], "convert": ["m.pt"],
                "shapes": ["--out", tmp_path / "s"]}[command]
        result = subprocess.run([sys.executable, "-c", blocked, command, *map(str, args)], capture_output=True,
                                text=True, cwd=ROOT)
        assert_one_line_error(result, contains=f"pip install 'edgecnn[{extra}]'")
    info = subprocess.run([sys.executable, "-c", blocked, "info"], capture_output=True, text=True, cwd=ROOT)
    assert info.returncode == 0 and "task          detect" in info.stdout, info.stderr


@pytest.mark.slow  # about 4-10 s: in CI, left out of the inner loop
def test_limits_hold_threads_and_an_unwritable_cache(tmp_path):
    result = run_cli("run", "--source", "demo", "--max-frames", "2", "--threads", "10000", "--json", os.devnull,
                     env={"XDG_CACHE_HOME": "/proc/edgecnn-cache"})
    assert result.returncode == 0, result.stderr
    cores = os.cpu_count()
    assert f"--threads 10000 is more than the {cores} cores here; using {cores}" in result.stderr
    assert result.stderr.count("cannot write the choice cache") == 1
