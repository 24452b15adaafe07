"""What is run on both sides and how the results become the summary.

Both sides run the same command lines (`edgecnn run --source demo`) and the same probe
(programs/probe.py: raw outputs, reference records, kernels). The demo source is live
and keeps only the newest frame, so the emulated run sees frames 0, ~40, ~80...; the
demo's frame t is a pure function of t, and the host reference is computed on exactly
the frames either side's run saw. A run on a 480-pixel demo (`litert-demo480`) is
recorded but not gated: OpenCV's aarch64 resize rounds differently from x86's at
non-integer scales.

Several cameras in one process (`edgecnn run --config`): two cameras reading folders of
demo scenes of different seeds (written as PNG on the host, read as files, so both
sides see every frame), run emulated and on x86 and compared camera by camera; the x86
run's records of each camera are also compared with a one-camera x86 run of its folder,
so that a record given to the wrong camera shows.
"""
from __future__ import annotations

import contextlib
import hashlib
import json
import os
import shutil
import subprocess
import time
from pathlib import Path
from typing import Dict, List, Optional, Tuple

from devices.emulated_pi.compare import compare_raw, compare_records, read_records
from devices.emulated_pi.steps import Failed, last_line, log, program, run_step, timed
from devices.emulated_pi.sysroot import CPUS, Layout

DEMO = (384, 0, 30.0)  # size, seed, fps: what `--source demo` opens
# The demo's 384-pixel frames meet the detector's 192x192 input at exactly 2x, where
# OpenCV's x86 and ARM resizes agree; RESIZED frames take a non-integer scale, as a
# camera's 640x480 would. Recorded, not gated: the two resizes round differently there.
RESIZED = 480
# In-process tests: every `edgecnn` subprocess pays 10-20 s of emulated start-up, so the
# command-line tests (test_info_files' four took 163 s, test_registries' one 24 s) are
# left to the demo runs.
PYTEST_FILES = ("tests/test_card_and_preprocess.py", "tests/test_registries.py", "tests/test_devices.py",
                "tests/test_bench_fingerprint.py", "tests/test_segment_runtime.py")


def host_environment(repo: Path) -> dict:
    """The host Python's environment: the checkout first on sys.path, as for the
    `python -m edgecnn` run in it (a program run as a file would otherwise import
    whichever edgecnn is installed)."""
    paths = [str(repo), os.environ.get("PYTHONPATH", "")]
    return {**os.environ, "PYTHONDONTWRITEBYTECODE": "1", "PYTHONPATH": os.pathsep.join(p for p in paths if p)}


def guest_environment(cpu: str) -> dict:
    """The emulated Python's environment. PYTHONSAFEPATH: neither a working directory
    inside the checkout nor a program's folder may come before the installed wheel."""
    env = {**os.environ, "QEMU_CPU": cpu, "PYTHONSAFEPATH": "1", "PYTHONDONTWRITEBYTECODE": "1",
           "PYTHONNOUSERSITE": "1"}
    env.pop("PYTHONPATH", None)
    return env


def summary_line(stderr: str) -> Optional[str]:
    return next((line.strip() for line in stderr.splitlines() if line.startswith("summary:")), None)


def run_probe(python: str, jobs: List[dict], report: Path, what: str, timeout: float, env: dict,
              cwd: Path) -> Tuple[dict, float]:
    argument = json.dumps({"demo": DEMO, "jobs": jobs, "report": str(report)})
    _, seconds = timed([python, program("probe"), argument], what, timeout, env=env, cwd=cwd)
    return json.loads(report.read_text()), seconds


def read_npz(host_python: str, path: Path) -> Dict[str, List[float]]:
    result = run_step([host_python, program("npz_to_json"), str(path)], f"reading {path.name}", 300)
    return json.loads(result.stdout)


def git_commit(repo: Path) -> Optional[str]:
    with contextlib.suppress(OSError, subprocess.SubprocessError):
        result = subprocess.run(["git", "-C", str(repo), "rev-parse", "--short", "HEAD"], capture_output=True,
                                text=True, timeout=30)
        if result.returncode == 0:
            dirty = subprocess.run(["git", "-C", str(repo), "status", "--porcelain", "--untracked-files=no"],
                                   capture_output=True, text=True, timeout=30).stdout.strip()
            return result.stdout.strip() + ("+changes" if dirty else "")
    return None


PER_FRAME_S = 60  # seconds an emulated frame may take at most (1-3 s seen)
CAMERA_SEEDS = {"cam_a": 1, "cam_b": 2}  # the two-camera config's cameras and their demo seeds


class Sides:
    """The two Pythons of a run, their environments and where each side's files go."""

    def __init__(self, args, repo: Path, layout: Layout, host_python: str) -> None:
        self.args, self.repo, self.layout, self.host_python = args, repo, layout, host_python
        self.guest_python = str(layout.venv / "bin" / "python")
        self.out = layout.runs / args.cpu
        self.guest_env, self.host_env = guest_environment(args.cpu), host_environment(repo)
        self.raw_frames = list(range(args.raw_frames))

    def model(self, side: str, spec: dict) -> str:
        """The spec's model file; a bundled one from that side's package (the emulated
        one from the installed wheel)."""
        if not spec.get("bundled"):
            return spec["model"]
        package = self.layout.site / "edgecnn" if side == "emulated" else self.repo / "edgecnn"
        return str(package / "assets" / spec["bundled"])

    def specs(self, onnx_model: Path, summary: dict, timings: Dict[str, float]) -> List[dict]:
        """What is checked. cli: `edgecnn run --source demo` on both sides, records compared
        on every frame the emulated run saw; raw: outputs of the first demo frames (every
        spec); gate: counts toward "agree" (the 480-pixel run is for the record: see
        RESIZED). The bundled files are named, not left to `edgecnn run`'s per-device
        choice, so both sides run the same file: the int8 default end to end, the fp32
        one for raw outputs."""
        from edgecnn.assets import RUNTIME_DEFAULT, RUNTIME_FP32

        specs = [dict(name="litert", backend="litert", bundled=RUNTIME_DEFAULT.name, cli=True,
                      label=f"bundled {RUNTIME_DEFAULT.name}"),
                 dict(name="litert-fp32", backend="litert", bundled=RUNTIME_FP32.name,
                      label=f"bundled {RUNTIME_FP32.name}"),
                 dict(name="onnxruntime", backend="onnxruntime", model=str(onnx_model), label=onnx_model.name,
                      cli=True)]
        mark = time.perf_counter()
        int8 = make_int8_onnx(self.host_python, onnx_model, self.layout, self.host_env)
        timings["int8_model_s"] = round(time.perf_counter() - mark, 1)
        if int8.get("path"):
            specs.append(dict(name="onnxruntime-int8", backend="onnxruntime", model=int8["path"],
                              label=int8["label"], steps=int8["steps"]))
        else:
            summary["runs"]["onnxruntime-int8"] = {"checked": False, "reason": int8["reason"]}
        if self.raw_frames:
            specs.append(dict(name=f"litert-demo{RESIZED}", backend="litert", bundled=RUNTIME_FP32.name, gate=False,
                              demo=[RESIZED, DEMO[1], DEMO[2]], predict_raw=True,
                              label=f"bundled {RUNTIME_FP32.name} on {RESIZED}x{RESIZED} demo frames "
                                    f"(a non-integer downscale to its 192x192 input)"))
        return specs

    def run_demo(self, side: str, spec: dict, summary: dict) -> Tuple[List[dict], subprocess.CompletedProcess, float]:
        """`edgecnn run --source demo` with the spec's model and backend on one side."""
        name, backend, frames = spec["name"], spec["backend"], self.args.frames
        json_out = self.out / side / f"{name}.jsonl"
        options = ["run", self.model(side, spec), "--source", "demo", "--max-frames", str(frames),
                   "--backend", backend, "--json", str(json_out)]
        if side == "emulated":
            command = [str(self.layout.venv / "bin" / "edgecnn"), *options]
            summary["commands"][f"emulated_{name}"] = " ".join(["QEMU_CPU=" + self.args.cpu, *command])
            log(f"{self.args.cpu}: edgecnn run --backend {backend} ({spec['label']}), {frames} demo frames, emulated")
            result, seconds = timed(command, f"emulated edgecnn run --backend {backend}", 300 + PER_FRAME_S * frames,
                                    env=self.guest_env, cwd=self.out / "emulated")
        else:
            command = [self.host_python, "-m", "edgecnn", *options]
            summary["commands"][f"host_{name}"] = " ".join(command)
            result, seconds = timed(command, f"host edgecnn run --backend {backend}", 600, env=self.host_env,
                                    cwd=self.repo)
        return read_records(str(json_out)), result, seconds

    def jobs(self, side: str, specs: List[dict], predict: Dict[str, List[int]]) -> List[dict]:
        """The probe's jobs (programs/probe.py): raw outputs of every spec, kernels of the
        two end-to-end runs, and records of the frames in predict."""
        listed = []
        for spec in specs:
            name = spec["name"]
            job = {"name": name, "model": spec.get("model", ""), "bundled": spec.get("bundled"),
                   "backend": spec["backend"], "raw": self.raw_frames,
                   "raw_out": str(self.out / side / f"raw-{name}.npz"), "kernels": name in ("litert", "onnxruntime"),
                   "demo": spec.get("demo")}
            frames = predict.get(name) or (self.raw_frames if spec.get("predict_raw") else [])
            if frames:
                job.update(predict=frames, predict_out=str(self.out / side / f"reference-{name}.jsonl"))
            listed.append(job)
        return listed

    def run_cameras(self, summary: dict, timings: Dict[str, float]) -> dict:
        """`edgecnn run --config` of two cameras (folders of demo scenes) on both sides,
        compared per camera; the x86 records of each camera against a one-camera x86 run
        of its folder."""
        from edgecnn.assets import RUNTIME_DEFAULT

        frames, out = self.args.camera_frames, self.out
        folders = {name: out / "frames" / name for name in CAMERA_SEEDS}
        argument = json.dumps({"demo": [DEMO[0], DEMO[2]], "frames": frames,
                               "cameras": {name: {"seed": seed, "dir": str(folders[name])}
                                           for name, seed in CAMERA_SEEDS.items()}})
        run_step([self.host_python, program("demo_frames"), argument], "writing the cameras' demo frames", 300,
                 env=self.host_env)
        spec = dict(bundled=RUNTIME_DEFAULT.name)
        entry: dict = {"model": f"bundled {RUNTIME_DEFAULT.name}", "frames_per_camera": frames,
                       "seeds": dict(CAMERA_SEEDS)}
        records: Dict[str, Dict[str, List[dict]]] = {}
        for side in ("emulated", "host"):
            json_out = out / side / "cameras.jsonl"
            config = out / side / "cameras.yaml"  # JSON is YAML: the harness needs no YAML writer
            config.write_text(json.dumps({"model": {"path": self.model(side, spec), "backend": "litert"},
                                          "json": str(json_out),
                                          "cameras": {name: {"source": str(folder)}
                                                      for name, folder in folders.items()}}, indent=1) + "\n")
            options = ["run", "--config", str(config)]
            if side == "emulated":
                command = [str(self.layout.venv / "bin" / "edgecnn"), *options]
                summary["commands"]["emulated_multi_camera"] = " ".join(["QEMU_CPU=" + self.args.cpu, *command])
                log(f"{self.args.cpu}: edgecnn run --config ({len(folders)} cameras, {frames} frames each), emulated")
                result, seconds = timed(command, "emulated edgecnn run --config", 300 + PER_FRAME_S * frames
                                        * len(folders), env=self.guest_env, cwd=out / "emulated")
            else:
                command = [self.host_python, "-m", "edgecnn", *options]
                summary["commands"]["host_multi_camera"] = " ".join(command)
                result, seconds = timed(command, "host edgecnn run --config", 600, env=self.host_env, cwd=self.repo)
            entry[f"{side}_wall_s"] = seconds
            entry[f"{side}_summary"] = [line.strip() for line in result.stderr.splitlines()
                                        if line.startswith("summary")]
            records[side] = {name: [] for name in folders}
            for record in read_records(str(json_out)):
                records[side].setdefault(record.get("camera", "(none)"), []).append(record)
        timings["emulated_multi_camera_s"] = entry["emulated_wall_s"]
        entry["cameras"], checks = {}, []
        for name, folder in folders.items():
            single_out = out / "host" / f"single-{name}.jsonl"
            run_step([self.host_python, "-m", "edgecnn", "run", self.model("host", spec), "--backend", "litert",
                      "--source", str(folder), "--json", str(single_out)], f"host edgecnn run --source {name}", 600,
                     env=self.host_env, cwd=self.repo)
            emulated, host = records["emulated"][name], records["host"][name]
            compared = compare_records(host, emulated) if host and emulated else {"agree": False,
                                                                                   "problems": ["no records"]}
            alone = read_records(str(single_out))
            own = compare_records(alone, host) if host else {"agree": False, "problems": ["no records"]}
            compared["x86_config_vs_x86_one_camera"] = {k: own[k] for k in ("frames_compared", "agree", "problems")
                                                         if k in own}
            compared["frames_emulated"] = sorted(r["frame"] for r in emulated)
            every = compared.get("frames_compared") == frames == len(alone) and not compared.get("frames_device_only")
            compared["every_frame"] = every
            entry["cameras"][name] = compared
            checks += [compared["agree"], own["agree"], every]
        entry["agree"] = all(checks)
        return entry

    def judge(self, spec: dict, entry: dict, host_report: dict, emulated_records: Dict[str, List[dict]],
              host_records: Dict[str, List[dict]]) -> bool:
        """Compare one spec's outputs into its summary entry; whether they agree."""
        name, out = spec["name"], self.out
        checks = []
        if spec.get("cli"):
            reference = read_records(str(out / "host" / f"reference-{name}.jsonl"))
            entry["emulated_vs_x86"] = compare_records(reference, emulated_records[name])
            entry["x86_cli_vs_x86_reference"] = compare_records(reference, host_records[name])
            checks += [entry["emulated_vs_x86"]["agree"], entry["x86_cli_vs_x86_reference"]["agree"],
                       entry["emulated_vs_x86"]["frames_device_only"] == 0]
        if spec.get("predict_raw") and self.raw_frames:
            entry["detections_vs_x86"] = compare_records(
                *(read_records(str(out / side / f"reference-{name}.jsonl")) for side in ("host", "emulated")))
        if self.raw_frames:
            reference_raw = {"arrays": read_npz(self.host_python, out / "host" / f"raw-{name}.npz"),
                             "steps": spec.get("steps") or host_report["jobs"][name]["steps"],
                             "input_std": host_report["jobs"][name]["input_std"]}
            device_raw = {"arrays": read_npz(self.host_python, out / "emulated" / f"raw-{name}.npz")}
            entry["raw_outputs"] = {"outputs": host_report["jobs"][name]["outputs"],
                                    "quantization_steps": reference_raw["steps"],
                                    **compare_raw(reference_raw, device_raw)}
            checks.append(entry["raw_outputs"]["agree"])
        return all(checks)


def run_checks(args, repo: Path, layout: Layout, qemu: str, how: str, host_python: str, onnx_model: Path,
               installed: dict, timings: Dict[str, float], started: float) -> dict:
    """Run every check on both sides and return the summary."""
    sides = Sides(args, repo, layout, host_python)
    out, raw_frames = sides.out, sides.raw_frames
    shutil.rmtree(out, ignore_errors=True)
    for side in ("emulated", "host"):
        (out / side).mkdir(parents=True)
    summary: dict = {"cpu": args.cpu, "board": CPUS[args.cpu][0], "qemu": qemu, "qemu_from": how,
                     "workdir": str(layout.workdir), "commit": git_commit(repo), "frames": args.frames,
                     "raw_frames": raw_frames, "wheel": installed["wheel"], "commands": {}, "runs": {},
                     "timings_s": timings}
    specs = sides.specs(onnx_model, summary, timings)
    end_to_end = [spec for spec in specs if spec.get("cli")]

    emulated_records = {}
    for spec in end_to_end:
        name = spec["name"]
        emulated_records[name], result, seconds = sides.run_demo("emulated", spec, summary)
        summary["runs"][name] = {"model": spec["label"], "emulated_wall_s": seconds,
                                 "emulated_summary": summary_line(result.stderr),
                                 "emulated_frames": [r["frame"] for r in emulated_records[name]]}
    log(f"{args.cpu}: raw outputs of demo frames {raw_frames} and kernels, emulated")
    guest_report, timings["emulated_probe_s"] = run_probe(
        sides.guest_python, sides.jobs("emulated", specs, {}), out / "emulated" / "probe.json",
        "emulated raw outputs and kernels", 600 + 4 * PER_FRAME_S * len(raw_frames), sides.guest_env,
        out / "emulated")
    # The host: the same command lines, then the reference on every frame either side's run saw.
    host_records = {}
    for spec in end_to_end:
        name = spec["name"]
        host_records[name], result, seconds = sides.run_demo("host", spec, summary)
        summary["runs"][name].update(host_wall_s=seconds, host_summary=summary_line(result.stderr))
    predict = {name: sorted({r["frame"] for r in emulated_records[name]} | {r["frame"] for r in host_records[name]})
               for name in emulated_records}
    log("x86 reference on the same frames")
    host_report, timings["host_reference_s"] = run_probe(
        host_python, sides.jobs("host", specs, predict), out / "host" / "probe.json", "host reference", 900,
        sides.host_env, repo)

    agree = True
    for spec in specs:
        entry = summary["runs"].setdefault(spec["name"], {"model": spec["label"]})
        agrees = sides.judge(spec, entry, host_report, emulated_records, host_records)
        if spec.get("gate", True):
            entry["agree"] = agrees
            agree = agree and agrees
        else:
            entry["for_the_record"] = True
    if args.camera_frames:
        mark = time.perf_counter()
        summary["runs"]["multi-camera"] = sides.run_cameras(summary, timings)
        timings["multi_camera_total_s"] = round(time.perf_counter() - mark, 1)
        agree = agree and summary["runs"]["multi-camera"]["agree"]
    summary["kernels"] = {"emulated": kernels(guest_report), "x86": kernels(host_report)}
    summary["versions"] = {"emulated": guest_report.get("versions"), "x86": host_report.get("versions"),
                           "emulated_python": guest_report.get("python"),
                           "emulated_machine": guest_report.get("machine")}
    if not guest_report.get("edgecnn_file", "").startswith(str(layout.site)):
        agree = False
        summary["problem"] = f"the emulated Python imported edgecnn from {guest_report.get('edgecnn_file')}"
    summary["agree"] = agree
    if args.pytest:
        summary["pytest"] = run_pytest(repo, sides.guest_python, sides.guest_env, args)
    timings["total_s"] = round(time.perf_counter() - started, 1)
    return summary


def make_int8_onnx(host_python: str, onnx_model: Path, layout: Layout, env: dict) -> dict:
    """An int8 (QDQ) copy of the ONNX detector made on the host by onnxruntime's static
    quantization, cached by the source's hash; its output quantization steps come from
    the DequantizeLinear nodes that produce the outputs. Needs onnx on the host."""
    digest = hashlib.sha256(onnx_model.read_bytes()).hexdigest()[:12]
    target = layout.workdir / "int8" / f"{onnx_model.stem}-int8-{digest}.onnx"
    steps_file = target.with_suffix(".steps.json")
    label = f"{onnx_model.stem} int8 QDQ (onnxruntime.quantization of {onnx_model.name})"
    if not (target.is_file() and steps_file.is_file()):
        target.parent.mkdir(parents=True, exist_ok=True)
        result = subprocess.run([host_python, program("int8_onnx"), str(onnx_model), str(target), str(steps_file)],
                                capture_output=True, text=True, timeout=900, env=env)
        if result.returncode == 3:
            return {"reason": last_line(result.stdout)}
        if result.returncode != 0:
            raise Failed(f"making the int8 ONNX detector failed: {last_line(result.stderr)}")
    return {"path": str(target), "label": label, "steps": json.loads(steps_file.read_text())}


def kernels(report: dict) -> dict:
    """The kernels that loaded on one side, from its probe report."""
    litert, onnx = report["jobs"].get("litert", {}), report["jobs"].get("onnxruntime", {})
    ops = litert.get("ops_after_invoke", {})
    messages = litert.get("native_messages", [])
    return {"litert_xnnpack": any("XNNPACK" in line for line in messages) or "DELEGATE" in ops,
            "litert_native_messages": messages, "litert_ops_after_invoke": ops,
            "litert_runtime_backend_ops": litert.get("runtime_backend_ops"),
            "onnxruntime_providers_session": onnx.get("providers_session"),
            "onnxruntime_providers_available": onnx.get("providers_available"),
            "cpu_features": litert.get("hwcaps"),
            "device_profile": {k: litert.get("device_profile", {}).get(k) for k in ("kind", "model", "machine",
                                                                                   "isa_flags")}}


def run_pytest(repo: Path, guest_python: str, guest_env: dict, args) -> dict:
    """The torch-free tests of a few files, in the emulated venv against the installed
    wheel (PYTHONSAFEPATH keeps the checkout's edgecnn/ off sys.path)."""
    command = [guest_python, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-m", "runtime",
               "-k", "not command_line", *PYTEST_FILES]
    log(f"{args.cpu}: pytest -m runtime -k 'not command_line' {' '.join(PYTEST_FILES)}, emulated")
    started = time.perf_counter()
    try:
        result = subprocess.run(command, capture_output=True, text=True, timeout=1800, env=guest_env, cwd=repo)
    except subprocess.TimeoutExpired:
        raise Failed("emulated pytest: timed out after 1800 s") from None
    seconds = round(time.perf_counter() - started, 1)
    failures = [line.split(" - ")[0] for line in result.stdout.splitlines() if line.startswith(("FAILED ", "ERROR "))]
    return {"command": "QEMU_CPU=" + args.cpu + " " + " ".join(command), "wall_s": seconds,
            "result": last_line(result.stdout), "failures": failures, "passed": result.returncode == 0}


