"""Event clips (edgecnn.runtime.clips): a synthetic stream whose frame i shows i (mod
256) in eight black or white stripes, its bits, so each frame read back from a clip
names its own index, and triggers at known frames."""
import errno
import importlib.util
import json
import sys
import time

import cv2
import numpy as np
import pytest

from edgecnn.core.errors import UserError
from edgecnn.runtime import clips as clips_module
from edgecnn.runtime.clips import ClipRecorder
from edgecnn.runtime.video_files import OpenCVWriter, browser_codec

pytestmark = pytest.mark.runtime  # torch-free: also run where only edgecnn[runtime] is installed

FPS = 10.0
START = 1_800_000_000.0  # capture times: seconds since the epoch, as results carry them


STRIPES = 8


def frame(index):
    bits = [(index % 2 ** STRIPES) >> bit & 1 for bit in range(STRIPES)]
    return np.repeat(np.repeat(np.array(bits, np.uint8) * 255, 160 // STRIPES)[None, :, None], 120, 0).repeat(3, 2)


def capture_time(index):
    return START + index / FPS


def feed(recorder, frames, triggers=(), **trigger_options):
    """Push `frames` in order, triggering after each index in `triggers` (its key and
    event are the index unless given), waiting for the recorder after each frame so that
    nothing is dropped however slow this machine is."""
    for index in frames:
        recorder.push(frame(index), capture_time(index))
        if index in triggers:
            recorder.trigger({"frame": index}, **trigger_options)
        assert recorder.wait_idle(30)


def frame_indices(path):
    """The index (mod 256) each frame of the video at `path` shows."""
    capture, indices = cv2.VideoCapture(str(path)), []
    width = 160 // STRIPES
    while True:
        ok, image = capture.read()
        if not ok:
            return indices
        centres = image[:, width // 2::width].mean(axis=(0, 2))
        indices.append(sum(int(level > 128) << bit for bit, level in enumerate(centres)))


def recorder(tmp_path, **options):
    options = {"camera": "door", "pre_seconds": 1.0, "post_seconds": 2.0, "log": lambda message: None, **options}
    return ClipRecorder(tmp_path / "clips", **options)


def written(tmp_path):
    """(video, sidecar dict) of each finished clip, oldest first."""
    sidecars = sorted((tmp_path / "clips").glob("clip-*.json"))
    return [(path.with_name(json.loads(path.read_text())["video"]), json.loads(path.read_text()))
            for path in sidecars]


def test_a_clip_covers_pre_and_post_seconds_around_its_trigger(tmp_path):
    clips = recorder(tmp_path)
    feed(clips, range(60), triggers={30})
    clips.close()
    [(video, sidecar)] = written(tmp_path)
    shown = frame_indices(video)
    # 1 s before frame 30 at 10 FPS is frame 20, 2 s after it frame 50; within one frame
    assert abs(shown[0] - 20) <= 1 and abs(shown[-1] - 50) <= 1, shown
    assert shown == list(range(shown[0], shown[-1] + 1))  # every frame between, in order
    assert sidecar["frames"] == len(shown)
    assert video.suffix == browser_codec().suffix


def test_a_continuing_event_extends_one_clip_and_other_keys_get_their_own(tmp_path):
    clips = recorder(tmp_path)
    feed(clips, range(20), triggers={10}, key="door")
    feed(clips, range(20, 30), triggers={25}, key="door")  # before frame 10's post window (frame 30) ends
    feed(clips, range(30, 90), triggers={40}, key="door")  # before frame 25's (frame 45) ends
    feed(clips, range(90, 100), triggers={91}, key="gate")
    clips.close()
    (door, door_sidecar), (gate, gate_sidecar) = written(tmp_path)
    shown = frame_indices(door)
    assert abs(shown[0] - 0) <= 1 and abs(shown[-1] - 60) <= 1, shown  # frame 10 - 1 s to frame 40 + 2 s
    assert shown == list(range(shown[0], shown[-1] + 1))
    assert door_sidecar["triggers"] == 3 and door_sidecar["event"] == {"frame": 10}
    assert door_sidecar["last_event"] == {"frame": 40} and door_sidecar["key"] == "door"
    assert door_sidecar["cut_short"] is None
    # the gate's event is 0.9 s from the end: the recorder closes it at the newest frame
    assert abs(frame_indices(gate)[0] - 81) <= 1 and frame_indices(gate)[-1] == 99
    assert gate_sidecar["cut_short"] == "closed" and gate_sidecar["key"] == "gate"


def test_a_trigger_after_the_post_window_starts_a_new_clip(tmp_path):
    clips = recorder(tmp_path)
    feed(clips, range(60), triggers={10, 35}, key="door")  # frame 10's window ends at frame 30
    clips.close()
    (first, _), (second, _) = written(tmp_path)
    assert frame_indices(first)[-1] in (29, 30, 31) and frame_indices(second)[0] in (24, 25, 26)


def test_the_sidecar_names_camera_event_track_times_codec_and_model(tmp_path):
    seen, lines = [], []
    clips = recorder(tmp_path, model_digest="sha256:1234", on_clip=lambda video, sidecar: seen.append(video),
                     log=lines.append)
    feed(clips, range(40), triggers={15}, key="lane", track_id=7)
    clips.close()
    [(video, sidecar)] = written(tmp_path)
    shown = frame_indices(video)
    assert sidecar["video"] == video.name and seen == [video]
    assert sidecar["camera"] == "door" and sidecar["event"] == {"frame": 15} and sidecar["track_id"] == 7
    assert sidecar["model_digest"] == "sha256:1234" and sidecar["codec"] == clips.codec.name
    assert sidecar["start"] == capture_time(shown[0]) and sidecar["end"] == capture_time(shown[-1])
    assert sidecar["start_utc"].startswith("2027-01-15T08:00:0") and sidecar["start_utc"].endswith("Z")
    assert sidecar["pre_seconds"] == 1.0 and sidecar["post_seconds"] == 2.0
    assert video.name.startswith("clip-20270115T08000") and "door" in video.name and "lane" in video.name
    assert clips.codec.description in lines[0]  # the log says which codec writes the clips


def test_retention_deletes_the_oldest_clips_and_their_sidecars_first(tmp_path):
    (tmp_path / "clips").mkdir()
    (tmp_path / "clips" / "notes.txt").write_text("not a clip")
    clips = recorder(tmp_path, max_clips=2)
    for start in range(0, 200, 40):  # five clips, each 3 s long, 4 s apart
        feed(clips, range(start, start + 40), triggers={start + 10}, key="door")
    clips.close()
    assert [sidecar["event"] for _, sidecar in written(tmp_path)] == [{"frame": 130}, {"frame": 170}]
    assert sorted(path.name for path in (tmp_path / "clips").iterdir()) == sorted(
        ["notes.txt"] + [name for video, _ in written(tmp_path) for name in (video.name, video.stem + ".json")])

    size_of_one = sum(path.stat().st_size for path in (tmp_path / "clips").glob("clip-*")) / 2
    clips = recorder(tmp_path, max_bytes=int(size_of_one * 1.5))  # retention applies at start too
    assert [sidecar["event"] for _, sidecar in written(tmp_path)] == [{"frame": 170}]
    feed(clips, range(200, 240), triggers={210}, key="door")
    clips.close()
    assert [sidecar["event"] for _, sidecar in written(tmp_path)] == [{"frame": 210}]
    assert (tmp_path / "clips" / "notes.txt").exists()


def test_a_full_disk_drops_that_clip_says_so_once_and_the_recorder_goes_on(tmp_path, monkeypatch):
    real_open_video, opened = clips_module.open_video, []

    def open_video_on_a_full_disk(path, codec, fps, threads=None):
        writer = real_open_video(path, codec, fps, threads)
        opened.append(path)
        if len(opened) <= 2:  # the first two clips meet a full disk after 3 frames
            real_write = writer.write

            def write(image, timestamp=None):
                if writer.frames == 3:
                    raise OSError(errno.ENOSPC, "No space left on device", str(path))
                real_write(image, timestamp)
            writer.write = write
        return writer

    monkeypatch.setattr(clips_module, "open_video", open_video_on_a_full_disk)
    lines = []
    clips = recorder(tmp_path, log=lines.append)
    feed(clips, range(150), triggers={10, 60, 110}, key="door")
    clips.close()
    dropped = [line for line in lines if "dropped (" in line]
    assert len(dropped) == 1 and "No space left on device" in dropped[0], lines
    assert [line for line in lines if "written again after 2 dropped" in line], lines
    assert clips.stats.clips_dropped == 2 and clips.stats.clips_written == 1
    assert [sidecar["event"] for _, sidecar in written(tmp_path)] == [{"frame": 110}]
    assert len(opened) == 3 and not any(path.exists() for path in opened)  # no temporary file left
    assert [path.name for path in (tmp_path / "clips").iterdir() if path.name.startswith(".")] == []


def test_frames_that_opencv_silently_failed_to_write_drop_the_clip(tmp_path, monkeypatch):
    """OpenCV's writer reports no error when the disk fills: the recorder counts the
    frames its file holds and drops a clip that lost some."""
    real_write = OpenCVWriter.write

    def write_that_loses_frames(self, image, timestamp=None):
        if self.frames < 5:
            real_write(self, image, timestamp)
        else:
            self.frames += 1  # accepted but never written, as on a full disk
    monkeypatch.setattr(OpenCVWriter, "write", write_that_loses_frames)
    lines = []
    clips = recorder(tmp_path, codec="vp8", log=lines.append)
    feed(clips, range(40), triggers={15})
    clips.close()
    assert written(tmp_path) == [] and clips.stats.clips_dropped == 1
    assert any("only 5 of 31 frames reached the disk" in line for line in lines), lines
    assert list((tmp_path / "clips").iterdir()) == []


def test_a_writer_slower_than_the_camera_cuts_clips_short_instead_of_growing_memory(tmp_path, monkeypatch):
    real_open_video = clips_module.open_video

    def slow_open_video(path, codec, fps, threads=None):
        writer = real_open_video(path, codec, fps, threads)
        real_write = writer.write
        writer.write = lambda image, timestamp=None: (time.sleep(0.05), real_write(image, timestamp))
        return writer

    monkeypatch.setattr(clips_module, "open_video", slow_open_video)
    lines = []
    clips = recorder(tmp_path, pre_seconds=0.5, post_seconds=30.0, log=lines.append)
    for index in range(400):  # 40 s of frames handed over in well under 40 s
        clips.push(frame(index), capture_time(index))
        if index == 10:
            clips.trigger({"frame": index})
        time.sleep(0.002)
        # bounded: the ring (pre + 1 s) and WRITER_LAG_BUFFERS more of it, and the frame on its way
        assert clips.stats.writer_queue_frames <= (1 + clips_module.WRITER_LAG_BUFFERS) * 1.5 * FPS + 3
    clips.close()
    [(video, sidecar)] = written(tmp_path)
    assert sidecar["cut_short"] == "writer_behind" and len(frame_indices(video)) < 300
    assert [line for line in lines if "behind the camera" in line], lines


def test_an_unwritable_clip_directory_is_a_one_line_user_error(tmp_path):
    (tmp_path / "file").write_text("")
    with pytest.raises(UserError, match=r"cannot write clips into .*file/clips") as raised:
        ClipRecorder(tmp_path / "file" / "clips", log=lambda message: None)
    assert "\n" not in str(raised.value)
    with pytest.raises(UserError, match="pre_seconds"):
        ClipRecorder(tmp_path / "clips", pre_seconds=5, buffer_seconds=2, log=lambda message: None)


def test_clips_are_h264_with_pyav_and_vp8_without_it(tmp_path, monkeypatch):
    expected = "h264" if importlib.util.find_spec("av") is not None else "vp8"
    assert browser_codec().name == expected and browser_codec().browser_playable

    monkeypatch.setitem(sys.modules, "av", None)  # as where PyAV is not installed
    lines = []
    clips = ClipRecorder(tmp_path / "clips", log=lines.append)
    clips.close()
    assert clips.codec.name == "vp8" and "pip install 'edgecnn[video]'" in lines[0]
    with pytest.raises(UserError, match=r"H.264 needs PyAV: pip install 'edgecnn\[video\]'"):
        ClipRecorder(tmp_path / "clips", codec="h264", log=lines.append)
    with pytest.raises(UserError, match="unknown clip codec 'h265'"):
        ClipRecorder(tmp_path / "clips", codec="h265", log=lines.append)
