"""devices/emulated_pi.py: the runtime on an emulated Raspberry Pi (qemu-user, arm64
Debian 12 userland) agrees with x86, and its missing prerequisites are one-line errors."""
import ast
import importlib.util
import json
import subprocess
import sys

import pytest

from conftest import ROOT, assert_one_line_error
from devices.emulated_pi.compare import compare_records

SCRIPT = ROOT / "devices" / "emulated_pi.py"
PROGRAMS = ROOT / "devices" / "emulated_pi" / "programs"
FRAMES = 6  # demo frames of each emulated run: under qemu each costs about a second


def run_script(*args, timeout=120):
    return subprocess.run([sys.executable, str(SCRIPT), *map(str, args)], capture_output=True, text=True,
                          timeout=timeout)


@pytest.mark.runtime
def test_missing_emulator_is_one_line_and_exit_2(tmp_path):
    empty = tmp_path / "no-tools"
    empty.mkdir()
    result = run_script("--workdir", tmp_path / "work", "--tools-path", empty)
    assert_one_line_error(result, 2, "no emulator: qemu-aarch64-static")
    assert not (tmp_path / "work").exists() or not any((tmp_path / "work").iterdir())


@pytest.mark.runtime
def test_unreachable_mirror_is_one_line_and_exit_2(tmp_path):
    tools = tmp_path / "tools"
    tools.mkdir()
    for name in ("apt-get", "dpkg-deb"):  # present, so the next check (the network) is reached
        (tools / name).write_text("#!/bin/sh\nexit 1\n")
        (tools / name).chmod(0o755)
    result = run_script("--workdir", tmp_path / "work", "--tools-path", tools, "--mirror", "http://127.0.0.1:9/debian")
    assert_one_line_error(result, 2, "no network access to the Debian mirror http://127.0.0.1:9/debian")


def _record(frame, *detections):
    return json.dumps({"frame": frame, "task": "detect", "detections": [
        {"label": label, "class_id": cls, "score": score, "box": box} for label, cls, score, box in detections]})


@pytest.mark.runtime
def test_compare_mode_joins_frames_and_applies_the_tolerances(tmp_path):
    circle = ("circle", 0, 0.9, [10.0, 10.0, 110.0, 110.0])
    reference = tmp_path / "x86.jsonl"
    reference.write_text("\n".join([_record(0, circle), _record(1, circle), _record(2, circle)]) + "\n")
    close = ("circle", 0, 0.905, [10.0, 10.0, 110.0, 110.2])  # IoU 0.998, score 0.005 apart
    borderline = ("triangle", 2, 0.255, [50.0, 50.0, 60.0, 60.0])  # at the threshold: not a disagreement
    device = tmp_path / "pi.jsonl"
    device.write_text("\n".join([_record(0, close, borderline), _record(2, circle)]) + "\n")  # frame 1 dropped
    result = run_script("--compare", reference, device, "--json", tmp_path / "summary.json")
    assert result.returncode == 0, result.stderr
    summary = json.loads((tmp_path / "summary.json").read_text())
    assert summary["agree"] and summary["frames_compared"] == 2 and summary["borderline_unpaired"] == 1
    assert summary["min_iou"] >= 0.99 and summary["max_score_diff"] <= 0.01

    shifted = ("circle", 0, 0.9, [12.0, 10.0, 112.0, 110.0])  # IoU 0.96
    wrong_class = ("rectangle", 1, 0.9, [10.0, 10.0, 110.0, 110.0])
    device.write_text("\n".join([_record(0, shifted), _record(1, wrong_class)]) + "\n")
    result = run_script("--compare", reference, device)
    assert result.returncode == 1
    summary = json.loads(result.stdout)
    assert not summary["agree"] and summary["problem_count"] == 3  # the shift; frame 1's circle and rectangle

    device.write_text("not json\n")
    assert_one_line_error(run_script("--compare", reference, device), 2, "not a JSON record")


@pytest.mark.runtime
def test_the_package_runs_as_a_module_with_the_same_command_line(tmp_path):
    reference = tmp_path / "x86.jsonl"
    reference.write_text(_record(0, ("circle", 0, 0.9, [10.0, 10.0, 110.0, 110.0])) + "\n")
    result = subprocess.run([sys.executable, "-m", "devices.emulated_pi", "--compare", reference, reference],
                            capture_output=True, text=True, timeout=120, cwd=ROOT)
    assert result.returncode == 0 and json.loads(result.stdout)["agree"], result.stderr
    assert_one_line_error(subprocess.run([sys.executable, "-m", "devices.emulated_pi", "--cpu", "cortex-a53"],
                                         capture_output=True, text=True, timeout=120, cwd=ROOT),
                          2, "emulated_pi.py: argument --cpu: invalid choice")


@pytest.mark.runtime
def test_the_programs_are_python_files_that_say_why_they_exist():
    programs = sorted(PROGRAMS.glob("*.py"))
    assert {p.stem for p in programs} >= {"probe", "int8_onnx", "npz_to_json", "host_versions", "edgecnn_command"}
    for path in programs:
        tree = ast.parse(path.read_text(), str(path))
        assert ast.get_docstring(tree), path
        main_guard = [node for node in tree.body if isinstance(node, ast.If) and "__main__" in ast.unparse(node.test)]
        assert main_guard, f"{path}: importing it must not run it"


@pytest.mark.runtime
def test_npz_program_reads_raw_dumps_as_json(tmp_path):
    import numpy as np  # edgecnn[runtime] has it; the harness itself does not import it

    np.savez(tmp_path / "raw.npz", in0=np.arange(4, dtype=np.float32).reshape(2, 2), f0_o0=np.float32([0.5]))
    result = subprocess.run([sys.executable, str(PROGRAMS / "npz_to_json.py"), tmp_path / "raw.npz"],
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout) == {"in0": [0.0, 1.0, 2.0, 3.0], "f0_o0": [0.5]}


def _classify(frame, label, scores):
    return {"frame": frame, "task": "classify", "label": label, "score": max(scores.values()),
            "classes": [{"label": name, "class_id": i, "score": score}
                        for i, (name, score) in enumerate(scores.items())]}


def _segment(frame, **fractions):
    return {"frame": frame, "task": "segment", "size": [100, 100],
            "areas": [{"label": name, "class_id": i, "area": int(fraction * 10000), "fraction": fraction}
                      for i, (name, fraction) in enumerate(fractions.items()) if fraction]}


@pytest.mark.runtime
def test_classifier_records_compare_top_label_and_scores():
    reference = [_classify(0, "cat", {"cat": 0.7, "dog": 0.2, "fox": 0.1})]
    close = [_classify(0, "cat", {"cat": 0.695, "dog": 0.205, "fox": 0.1})]
    summary = compare_records(reference, close)
    assert summary["agree"] and summary["objects_paired"] == 3 and summary["max_score_diff"] == 0.005
    assert summary["min_iou"] is None  # no boxes compared

    apart = compare_records(reference, [_classify(0, "cat", {"cat": 0.68, "dog": 0.22, "fox": 0.1})])
    assert not apart["agree"] and apart["problem_count"] == 2 and "cat score 0.7 vs 0.68" in apart["problems"][0]
    swapped = compare_records(reference, [_classify(0, "dog", {"cat": 0.45, "dog": 0.45, "fox": 0.1})])
    assert "frame 0: top class cat vs dog" in swapped["problems"]


@pytest.mark.runtime
def test_segmenter_records_compare_labels_and_area_fractions():
    reference = [_segment(0, background=0.6, circle=0.3, square=0.1), _segment(1, background=0.9, circle=0.1)]
    device = [_segment(0, background=0.595, circle=0.305, square=0.1),
              _segment(1, background=0.895, circle=0.1, square=0.005)]  # a few pixels: within the tolerance
    summary = compare_records(reference, device)
    assert summary["agree"], summary["problems"]
    assert summary["frames_compared"] == 2 and summary["objects_paired"] == 5 and summary["borderline_unpaired"] == 1
    assert summary["max_area_fraction_diff"] == 0.005 and summary["min_iou"] is None

    shifted = compare_records(reference, [_segment(0, background=0.62, circle=0.28, square=0.1),
                                          _segment(1, background=0.85, circle=0.1, square=0.05)])
    assert not shifted["agree"] and shifted["problem_count"] == 4
    assert "frame 0: background covers 0.6 vs 0.62 of the frame" in shifted["problems"]
    assert "frame 1: square (0.05 of the frame) only in the device output" in shifted["problems"]


@pytest.mark.runtime
def test_records_of_different_tasks_or_with_nothing_to_compare_disagree():
    detect = json.loads(_record(0, ("circle", 0, 0.9, [10.0, 10.0, 110.0, 110.0])))
    mixed = compare_records([detect], [_segment(0, background=1.0)])
    assert not mixed["agree"] and mixed["problems"] == ["frame 0: task detect vs segment"]
    assert "max_area_fraction_diff" not in compare_records([detect], [detect])  # detector summaries are unchanged
    bare = {"frame": 0, "task": "depth", "depth": [1.0]}
    nothing = compare_records([bare], [bare])
    assert not nothing["agree"]
    assert nothing["problems"] == ["frame 0: a depth record with no detections, classes or areas to compare"]
    assert not compare_records([detect], [{**detect, "frame": 1}])["agree"]  # no frame in common


@pytest.mark.slow(260)
def test_emulated_pi_agrees_with_x86(tmp_path):
    """The whole check, a two-camera config run included, with a few torch-free test
    files run emulated (about 4-6 min: the sysroot and wheels are cached in
    /tmp/edgecnn-emulated-pi after the first run).
    A missing prerequisite fails the test with the script's one-line message; it is
    never skipped."""
    out = tmp_path / "summary.json"
    result = run_script("--frames", FRAMES, "--cpu", "cortex-a76", "--pytest", "--json", out, timeout=1500)
    if result.returncode == 2:
        pytest.fail(result.stderr.strip())
    assert out.is_file(), result.stderr[-2000:]
    summary = json.loads(out.read_text())
    assert result.returncode == 0 and summary["agree"], json.dumps(summary["runs"], indent=1)[:6000]
    assert summary["versions"]["emulated_machine"] == "aarch64"
    for name in ("litert", "onnxruntime"):
        run = summary["runs"][name]
        agreement = run["emulated_vs_x86"]
        assert agreement["frames_compared"] == FRAMES and agreement["frames_device_only"] == 0
        assert agreement["min_iou"] >= 0.99 and agreement["max_score_diff"] <= 0.01
        assert run["raw_outputs"]["relative_error_fp32"] <= 1e-4
    # the int8 default end to end above; its quantized outputs within a step, and the fp32 file's raw outputs
    assert summary["runs"]["litert"]["raw_outputs"]["max_quantization_steps"] <= 1.0
    assert summary["runs"]["litert-fp32"]["agree"] and summary["runs"]["litert-fp32"]["raw_outputs"][
        "relative_error_fp32"] <= 1e-4
    if importlib.util.find_spec("onnx") is not None:  # the int8 file is made with onnx on the host
        assert summary["runs"]["onnxruntime-int8"]["raw_outputs"]["max_quantization_steps"] <= 1.0
    assert summary["pytest"]["passed"], summary["pytest"]  # the torch-free tests, run emulated
    kernels = summary["kernels"]["emulated"]
    assert kernels["litert_xnnpack"] and "CPUExecutionProvider" in kernels["onnxruntime_providers_session"]
    assert kernels["device_profile"]["kind"] == "raspberry-pi" and "asimddp" in kernels["cpu_features"]
    # two cameras in one `edgecnn run --config`, read as files: every frame of each, per camera as on x86
    cameras = summary["runs"]["multi-camera"]
    assert cameras["agree"] and set(cameras["cameras"]) == {"cam_a", "cam_b"}, json.dumps(cameras, indent=1)[:3000]
    for entry in cameras["cameras"].values():
        assert entry["every_frame"] and entry["frames_compared"] == 3 and entry["objects_paired"] > 0
        assert entry["min_iou"] >= 0.99 and entry["max_score_diff"] <= 0.01
        assert entry["x86_config_vs_x86_one_camera"]["agree"]  # each record went to its own camera
