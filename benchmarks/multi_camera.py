"""Several cameras in one process, measured (benchmarks/RESULTS.md, "Several cameras in
one process").

    python benchmarks/multi_camera.py throughput [--cameras 4] [--seconds 60] [--rounds 2]
                                                 [--sizes 320x240,1280x720] [--limit] [--steps 4,6,8,...]
    python benchmarks/multi_camera.py batching [--ultralytics /tmp/ultra] [--rounds 5] [--yolo-size 640]
    python benchmarks/multi_camera.py isolation [--seconds 40] [--freeze-at 10] [--freeze-for 10]
    python benchmarks/multi_camera.py pi [--cpu cortex-a76] [--frames 10] [--camera-frames 3] [--workdir DIR]

throughput: paced video files (`FILE?fps=15&loop=1`, a camera that never ends) through
the bundled detector, one `edgecnn run --config` process of N cameras against N
`edgecnn run --source` processes on the same files, in alternating rounds. Per camera:
delivered FPS, frame age p50/p99 and inference p50 from the JSON records captured in a
window that starts once every camera has given a result; per setup: the CPU seconds of
its processes in that window (/proc/PID/stat), their resident memory at its end and their
peak (VmRSS, VmHWM in /proc/PID/status, summed over the processes). --limit then raises
the number of cameras until a camera falls below 95% of the source rate or its frame
age p99 passes two frame periods (each failure retried once), for both setups.
320x240 is tests/data/tree.avi as it is (Cinepak); other sizes are an H.264 copy of it
made here with PyAV (libx264, a keyframe every 2 s, as a camera streams).

batching: per-frame inference cost at batch 1, 2 and 4 of the bundled detector as ONNX
with a dynamic batch (`edgecnn convert --dynamic-batch`) and of YOLO11n (built from
Ultralytics' yolo11n.yaml, random weights, exported here by torch.onnx.export with a
dynamic batch axis, opset 17; Ultralytics is not an edgecnn dependency: --ultralytics
names a folder where it is installed, `pip install --no-deps --target DIR
ultralytics==8.4.190 ultralytics-thop`), on onnxruntime and OpenVINO at 1 and 2 threads,
batch sizes alternating within each round. Then the runner's own decision, from the
line a real 4-camera `edgecnn run --config` logs for each file and backend.

isolation: four stand-in IP cameras (tests/mjpeg_server.py, HTTP MJPEG of tree.avi's
frames at 15 FPS) in one `edgecnn run --config` (`?timeout=2`); one camera is frozen
(connection kept, nothing sent) for a while and resumes. The other three's FPS and
frame age p99 before and during the freeze, per camera, from the records; the frozen
one's reconnects and states from the web view's /stats.json polled during the run, the
records and the summary.

pi: the emulated Raspberry Pi harness (devices/emulated_pi.py, which includes a
two-camera `edgecnn run --config` on folders of demo scenes, run emulated and on x86 and
compared per camera); its two-camera entry and timings.

Each prints one JSON record (also written to --json PATH) and a markdown table.
"""
from __future__ import annotations

import argparse
import importlib.util
import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from typing import Any, Dict, List, Optional, Sequence

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
TREE = ROOT / "tests" / "data" / "tree.avi"
PYTHON = sys.executable
WORK = Path(os.environ.get("EDGECNN_BENCH_WORK", Path.home() / ".cache" / "edgecnn-multi-camera"))
CLOCK_TICK = os.sysconf("SC_CLK_TCK")


# ------------------------------------------------------------------ the machine

def machine() -> Dict[str, Any]:
    """Date, commit, CPU model, cores and the SIMD flags that matter to inference."""
    text = Path("/proc/cpuinfo").read_text(errors="replace")
    model = next((line.split(":", 1)[1].strip() for line in text.splitlines() if line.startswith("model name")), "")
    flags = set(next((line.split(":", 1)[1].split() for line in text.splitlines() if line.startswith("flags")), []))
    wanted = ("sse4_2", "avx", "avx2", "fma", "avx512f", "avx512_vnni", "avx_vnni", "avx512_bf16", "amx_tile")
    commit = subprocess.run(["git", "-C", str(ROOT), "rev-parse", "--short", "HEAD"], capture_output=True,
                            text=True).stdout.strip()
    changed = subprocess.run(["git", "-C", str(ROOT), "status", "--porcelain", "--untracked-files=no", "edgecnn"],
                             capture_output=True, text=True).stdout.split("\n")
    return {"date": subprocess.run(["date"], capture_output=True, text=True).stdout.strip(), "commit": commit,
            "uncommitted_in_edgecnn": [line[3:] for line in changed if line.strip()],
            "cpu": model, "cores": os.cpu_count(), "flags": [f for f in wanted if f in flags]}


def load() -> List[float]:
    return [round(v, 2) for v in os.getloadavg()]


def others_busy() -> List[str]:
    """The processes using the most CPU right now (ps), for the record."""
    out = subprocess.run(["ps", "-eo", "pcpu,etimes,args", "--sort=-pcpu"], capture_output=True, text=True).stdout
    lines = [line.strip() for line in out.splitlines()[1:6] if line.strip()]
    return [line[:160] for line in lines if float(line.split()[0]) >= 20.0]


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


# ------------------------------------------------------------------ processes

def cpu_seconds(pid: int) -> float:
    """utime + stime of the process (all its threads), from /proc/PID/stat."""
    stat = Path(f"/proc/{pid}/stat").read_text()
    fields = stat[stat.rindex(")") + 2:].split()
    return (int(fields[11]) + int(fields[12])) / CLOCK_TICK


def memory_mb(pid: int) -> Dict[str, float]:
    """Resident memory now and its peak (VmRSS, VmHWM), MB."""
    found = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        key, _, value = line.partition(":")
        if key in ("VmRSS", "VmHWM"):
            found[key] = int(value.split()[0]) / 1024
    return {"rss_mb": found.get("VmRSS", 0.0), "peak_mb": found.get("VmHWM", 0.0)}


def percentile(values: Sequence[float], q: float) -> Optional[float]:
    return round(float(np.percentile(np.asarray(values, np.float64), q)), 2) if len(values) else None


def read_records(path: Path) -> List[dict]:
    if not path.is_file():
        return []
    records = []
    for line in path.read_text().splitlines():
        if line.strip():
            try:
                record = json.loads(line)
            except ValueError:
                continue  # a line cut short by the stop
            if record.get("type", "frame") == "frame":
                records.append(record)
    return records


def cameras_seen(paths: Dict[str, Path], single: bool) -> set:
    """The cameras with at least one record so far."""
    seen = set()
    for name, path in paths.items():
        if not path.is_file():
            continue
        with open(path) as handle:
            for line in handle:
                if single:
                    match = re.search(r'"camera":"([^"]+)"', line)
                    if match:
                        seen.add(match.group(1))
                elif line.strip():
                    seen.add(name)
                    break
    return seen


def stop(processes: List[subprocess.Popen], timeout: float = 40.0) -> None:
    """SIGTERM (what a service manager sends; the runner drains and writes its summary)."""
    for process in processes:
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
    deadline = time.monotonic() + timeout
    for process in processes:
        try:
            process.wait(max(0.1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def window_stats(records: List[dict], start: float, end: float) -> Dict[str, Any]:
    inside = [r for r in records if start <= r["capture_time"] < end]
    ages = [r["frame_age_ms"] for r in inside]
    return {"frames": len(inside), "fps": round(len(inside) / (end - start), 2), "age_p50_ms": percentile(ages, 50),
            "age_p99_ms": percentile(ages, 99),
            "inference_p50_ms": percentile([r["inference_ms"] for r in inside], 50)}


# ------------------------------------------------------------------ throughput

def video_source(size: str) -> Path:
    """tree.avi as it is (320x240), or an H.264 copy at another size (made once, cached)."""
    if size == "320x240":
        return TREE
    width, height = (int(v) for v in size.split("x"))
    target = WORK / f"tree-{width}x{height}.mp4"
    if target.is_file():
        return target
    import av
    import cv2

    WORK.mkdir(parents=True, exist_ok=True)
    capture, frames = cv2.VideoCapture(str(TREE)), []
    while True:
        ok, image = capture.read()
        if not ok:
            break
        frames.append(cv2.resize(image, (width, height), interpolation=cv2.INTER_CUBIC))
    capture.release()
    staging = target.with_name(target.stem + ".tmp.mp4")
    with av.open(str(staging), "w") as output:
        stream = output.add_stream("libx264", rate=15)
        stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
        stream.options = {"preset": "veryfast", "g": "30"}
        for image in frames:
            for packet in stream.encode(av.VideoFrame.from_ndarray(image, format="bgr24")):
                output.mux(packet)
        for packet in stream.encode():
            output.mux(packet)
    staging.replace(target)
    return target


def run_cameras(setup: str, count: int, source: str, seconds: float, settle: float, fps: float,
                work: Path, threads: Optional[int] = None) -> Dict[str, Any]:
    """One setup (single: one `edgecnn run --config` of `count` cameras; separate: `count`
    `edgecnn run --source` processes) for `seconds` once every camera has given a result."""
    import yaml

    work.mkdir(parents=True, exist_ok=True)
    names = [f"cam{i}" for i in range(count)]
    stderr_paths, processes = [], []
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    if setup == "single":
        json_paths = {"all": work / f"single-{count}.jsonl"}
        config = work / f"single-{count}.yaml"
        document = {"cameras": {name: {"source": source} for name in names}, "json": str(json_paths["all"])}
        if threads:
            document["threads"] = threads
        config.write_text(yaml.safe_dump(document, sort_keys=False))
        commands = [[PYTHON, "-m", "edgecnn", "run", "--config", str(config)]]
    else:
        json_paths = {name: work / f"separate-{count}-{name}.jsonl" for name in names}
        extra = ["--threads", str(threads)] if threads else []
        commands = [[PYTHON, "-m", "edgecnn", "run", "--source", source, "--json", str(json_paths[name]), *extra]
                    for name in names]
    for path in json_paths.values():
        path.unlink(missing_ok=True)
    load_before = load()
    launched = time.time()
    for index, command in enumerate(commands):
        stderr_paths.append(work / f"{setup}-{count}-{index}.stderr")
        processes.append(subprocess.Popen(command, cwd=ROOT, env=env, stdout=subprocess.DEVNULL,
                                          stderr=open(stderr_paths[-1], "w")))
    try:
        deadline = time.monotonic() + 60 + 5 * count
        while len(cameras_seen(json_paths, setup == "single")) < count:
            if any(p.poll() is not None for p in processes) or time.monotonic() > deadline:
                tails = [Path(p).read_text()[-600:] for p in stderr_paths]
                raise SystemExit(f"{setup} x{count}: not every camera started: {tails}")
            time.sleep(0.2)
        ready = time.time() - launched
        time.sleep(settle)
        start = time.time()
        cpu_start = [cpu_seconds(p.pid) for p in processes]
        time.sleep(seconds)
        end = time.time()
        cpu_end = [cpu_seconds(p.pid) for p in processes]
        memory = [memory_mb(p.pid) for p in processes]
        load_after = load()
    finally:
        stop(processes)
    stderr = [Path(p).read_text() for p in stderr_paths]
    records: Dict[str, List[dict]] = {name: [] for name in names}
    if setup == "single":
        for record in read_records(json_paths["all"]):
            records.setdefault(record.get("camera", "?"), []).append(record)
    else:
        for name in names:
            records[name] = read_records(json_paths[name])
    dropped = {}
    if setup == "single":
        for match in re.finditer(r"^summary (\S+) \((\w+)\): .*?(\d+) dropped", stderr[0], re.M):
            dropped[match.group(1)] = int(match.group(3))
    else:
        for name, text in zip(names, stderr):
            match = re.search(r"^summary: .*?(\d+) dropped", text, re.M)
            dropped[name] = int(match.group(1)) if match else None
    cameras = {name: {**window_stats(records[name], start, end), "dropped_whole_run": dropped.get(name)}
               for name in names}
    period_ms = 1000.0 / fps
    fps_values = [c["fps"] for c in cameras.values()]
    p99s = [c["age_p99_ms"] if c["age_p99_ms"] is not None else float("inf") for c in cameras.values()]
    batching_line = next((line for line in stderr[0].splitlines() if line.startswith("model ")), None)
    cpu = sum(cpu_end) - sum(cpu_start)
    result = {
        "setup": setup, "cameras": count, "processes": len(processes), "source": source,
        "window_s": round(end - start, 2), "ready_after_s": round(ready, 1),
        "fps_total": round(sum(fps_values), 2), "fps_min": min(fps_values), "fps_max": max(fps_values),
        "age_p50_ms_max": max((c["age_p50_ms"] or 0.0) for c in cameras.values()), "age_p99_ms_max": max(p99s),
        "inference_p50_ms_median": percentile([c["inference_p50_ms"] or 0.0 for c in cameras.values()], 50),
        "dropped_whole_run": sum(v or 0 for v in dropped.values()),
        "cpu_s": round(cpu, 2), "cpu_cores": round(cpu / (end - start), 3),
        "rss_mb": round(sum(m["rss_mb"] for m in memory), 1),
        "peak_rss_mb": round(sum(m["peak_mb"] for m in memory), 1),
        "load_before": load_before, "load_after": load_after,
        "passes": min(fps_values) >= 0.95 * fps and max(p99s) <= 2 * period_ms,
        "per_camera": cameras}
    if batching_line:
        result["runner_log"] = batching_line
    log(f"  {setup} x{count}: {result['fps_total']} FPS total (min {result['fps_min']}), age p99 max "
        f"{result['age_p99_ms_max']} ms, CPU {result['cpu_cores']} cores, RSS {result['rss_mb']} MB "
        f"(peak {result['peak_rss_mb']}), load {load_before} -> {load_after}"
        f"{'' if result['passes'] else '  BELOW THE THRESHOLD'}")
    return result


def throughput(args) -> Dict[str, Any]:
    report: Dict[str, Any] = {"benchmark": "throughput", "machine": machine(), "fps": args.fps,
                              "threads": args.threads,
                              "seconds": args.seconds, "settle_s": args.settle, "sizes": {}}
    log(f"load {load()}; busy: {others_busy()}")
    for size in args.sizes.split(","):
        path = video_source(size)
        source = f"{path}?fps={args.fps:g}&loop=1"
        entry: Dict[str, Any] = {"file": str(path), "source": source, "comparison": [], "limit_runs": []}
        report["sizes"][size] = entry
        if not args.skip_comparison:
            for round_index in range(args.rounds):
                order = ("single", "separate") if round_index % 2 == 0 else ("separate", "single")
                for setup in order:
                    run = run_cameras(setup, args.cameras, source, args.seconds, args.settle, args.fps,
                                      WORK / size / f"round{round_index}", args.threads)
                    run["round"] = round_index
                    entry["comparison"].append(run)
        if args.limit:
            entry["limit"] = find_limits(args, size, source, entry["limit_runs"])
    return report


def find_limits(args, size: str, source: str, runs: List[dict]) -> Dict[str, Optional[int]]:
    """Raise the camera count until a setup fails twice in a row at the same count."""
    active = {"single": True, "separate": True}
    limits: Dict[str, Optional[int]] = {"single": None, "separate": None}
    for step, count in enumerate(int(v) for v in args.steps.split(",")):
        order = ["single", "separate"] if step % 2 == 0 else ["separate", "single"]
        for setup in order:
            if not active[setup]:
                continue
            outcome = run_cameras(setup, count, source, args.limit_seconds, args.settle, args.fps,
                                  WORK / size / "limit", args.threads)
            outcome["try"] = 1
            runs.append(outcome)
            if not outcome["passes"]:
                again = run_cameras(setup, count, source, args.limit_seconds, args.settle, args.fps,
                                    WORK / size / "limit", args.threads)
                again["try"] = 2
                runs.append(again)
                if not again["passes"]:
                    active[setup] = False
                    continue
            limits[setup] = count
        if not any(active.values()):
            break
    return limits


def throughput_tables(report: Dict[str, Any]) -> str:
    out = []
    for size, entry in report["sizes"].items():
        if entry["comparison"]:
            out.append(f"\n{size} ({Path(entry['file']).name}, `{Path(entry['source']).name}`), "
                       f"{report['seconds']:g} s window:\n")
            out.append("| round | setup | processes | FPS per camera (min-max) | total FPS | frame age p50 / p99 "
                       "(worst camera) | inference p50 | CPU in window (cores) | RSS at end, sum | peak RSS, sum "
                       "| load before -> after |")
            out.append("|---|---|---|---|---|---|---|---|---|---|---|")
            for run in entry["comparison"]:
                out.append(f"| {run['round']} | {run['setup']} | {run['processes']} | {run['fps_min']:.2f}-"
                           f"{run['fps_max']:.2f} | {run['fps_total']:.2f} | {run['age_p50_ms_max']:.1f} / "
                           f"{run['age_p99_ms_max']:.1f} ms | {run['inference_p50_ms_median']:.2f} ms | "
                           f"{run['cpu_s']:.1f} s ({run['cpu_cores']:.2f}) | {run['rss_mb']:.0f} MB | "
                           f"{run['peak_rss_mb']:.0f} MB | {run['load_before'][0]:.2f} -> "
                           f"{run['load_after'][0]:.2f} |")
        if entry.get("limit_runs"):
            out.append(f"\n{size}: cameras at {report['fps']:g} FPS until one falls below 95% of the rate or its "
                       f"frame age p99 passes 2 periods ({2000 / report['fps']:.0f} ms); limit: "
                       f"{entry.get('limit')}\n")
            out.append("| cameras | setup | try | FPS min | total FPS | frame age p99 (worst) | CPU (cores) | "
                       "RSS sum | passes | load before -> after |")
            out.append("|---|---|---|---|---|---|---|---|---|---|")
            for run in entry["limit_runs"]:
                out.append(f"| {run['cameras']} | {run['setup']} | {run['try']} | {run['fps_min']:.2f} | "
                           f"{run['fps_total']:.1f} | {run['age_p99_ms_max']:.1f} ms | {run['cpu_cores']:.2f} | "
                           f"{run['rss_mb']:.0f} MB | {'yes' if run['passes'] else 'no'} | "
                           f"{run['load_before'][0]:.2f} -> {run['load_after'][0]:.2f} |")
    return "\n".join(out)


# ------------------------------------------------------------------ batching

def yolo_onnx(args) -> None:
    """(Run with Ultralytics on PYTHONPATH.) YOLO11n from its yaml, random weights, fused,
    exported with a dynamic batch axis."""
    import torch

    sys.path.insert(0, str(ROOT / "benchmarks"))
    from peer_metric import torchvision_metadata

    with torchvision_metadata():
        from ultralytics import YOLO

        model = YOLO("yolo11n.yaml").model
    model.eval()
    model = model.fuse(verbose=False)
    for module in model.modules():
        if type(module).__name__ == "Detect":
            module.export, module.format = True, "onnx"  # the decoded (batch, 4 + classes, anchors) output alone
    sample = torch.zeros(1, 3, args.imgsz, args.imgsz)
    with torch.no_grad():
        model(sample)
        torch.onnx.export(model, (sample,), args.out, dynamo=False, opset_version=17, input_names=["images"],
                          output_names=["output0"], dynamic_axes={"images": {0: "batch"}, "output0": {0: "batch"}})
    print(args.out)


def batch_models(args) -> Dict[str, Path]:
    WORK.mkdir(parents=True, exist_ok=True)
    detector = WORK / "detector" / "shapes_detector-fp32.onnx"
    if not detector.is_file():
        subprocess.run([PYTHON, "-m", "edgecnn", "convert", str(ROOT / "edgecnn" / "assets" / "shapes_detector.pt"),
                        "--to", "onnx", "--dynamic-batch", "--out", str(detector.parent)], check=True, cwd=ROOT,
                       stdout=subprocess.DEVNULL)
    models = {"shapes detector (192x192)": detector}
    if args.ultralytics:
        yolo = WORK / f"yolo11n-{args.yolo_size}-dynamic.onnx"
        if not yolo.is_file():
            env = {**os.environ, "PYTHONPATH": os.pathsep.join([args.ultralytics, str(ROOT)]), "YOLO_OFFLINE": "1"}
            subprocess.run([PYTHON, str(Path(__file__).resolve()), "yolo-onnx", "--out", str(yolo), "--imgsz",
                            str(args.yolo_size)], check=True, env=env, cwd=WORK)
        models[f"YOLO11n ({args.yolo_size}x{args.yolo_size})"] = yolo
    return models


def batching(args) -> Dict[str, Any]:
    from edgecnn.runtime.backends import open_backend, timed_runs

    report: Dict[str, Any] = {"benchmark": "batching", "machine": machine(), "rounds": args.rounds, "results": [],
                              "runner_lines": []}
    log(f"load {load()}; busy: {others_busy()}")
    models = batch_models(args)
    report["models"] = {name: str(path) for name, path in models.items()}
    rng = np.random.default_rng(0)
    for name, path in models.items():
        for backend_name in args.backends.split(","):
            for threads in (int(t) for t in args.threads.split(",")):
                backend = open_backend(str(path), backend_name, threads)
                shape = tuple(abs(d) for d in backend.input_shape)
                single = rng.standard_normal((1, *shape[1:])).astype(np.float32)
                blobs = {b: np.concatenate([single] * b) for b in (1, 2, 4)}
                for blob in blobs.values():
                    timed_runs(backend.infer, blob, 3)
                one = float(np.median(timed_runs(backend.infer, blobs[1], 5)))
                runs = int(min(100, max(8, args.target_ms / max(one, 0.05) / 4)))
                rounds: Dict[int, List[float]] = {1: [], 2: [], 4: []}
                load_before = load()
                for index in range(args.rounds):
                    order = [1, 2, 4][index % 3:] + [1, 2, 4][:index % 3]
                    for size in order:
                        rounds[size].append(float(np.median(timed_runs(backend.infer, blobs[size], runs))))
                call = {b: float(np.median(v)) for b, v in rounds.items()}
                ratios = [rounds[4][i] / (4 * rounds[1][i]) for i in range(args.rounds)]
                entry = {"model": name, "backend": backend_name, "threads": threads, "runs_per_round": runs,
                         "call_ms": {str(b): round(v, 3) for b, v in call.items()},
                         "per_frame_ms": {str(b): round(v / b, 3) for b, v in call.items()},
                         "batch2_vs_2_singles": round(call[2] / (2 * call[1]), 3),
                         "batch4_vs_4_singles": round(float(np.median(ratios)), 3),
                         "batch4_vs_4_singles_rounds": [round(r, 3) for r in ratios],
                         "load_before": load_before, "load_after": load()}
                entry["pays"] = entry["batch4_vs_4_singles"] < 0.8
                report["results"].append(entry)
                log(f"  {name}, {backend_name}, {threads} thread(s): per frame {entry['per_frame_ms']} ms, "
                    f"batch 4 = {entry['batch4_vs_4_singles']}x four singles, load {entry['load_after']}")
                del backend
    for name, path in models.items():
        for backend_name in args.backends.split(","):
            for threads in (int(t) for t in args.threads.split(",")):
                report["runner_lines"].append({"model": name, "backend": backend_name, "threads": threads,
                                               **runner_decision(path, backend_name, threads, name)})
    return report


def runner_decision(path: Path, backend: str, threads: int, name: str) -> Dict[str, Any]:
    """What a real 4-camera `edgecnn run --config` on this file logs about batching."""
    import yaml

    work = WORK / "runner"
    work.mkdir(parents=True, exist_ok=True)
    tag = f"{path.stem}-{backend}-{threads}"
    config = work / f"{tag}.yaml"
    model: Dict[str, Any] = {"path": str(path), "backend": backend, "threads": threads}
    if "YOLO" in name:  # a file with no card: Ultralytics' pixel scale and COCO's 80 classes
        model.update(task="detect", preset="unit", labels=[f"class{i}" for i in range(80)])
    config.write_text(yaml.safe_dump({"model": model, "max_frames": 20, "json": str(work / f"{tag}.jsonl"),
                                      "cameras": {f"cam{i}": {"source": f"{TREE}?fps=15&loop=1"} for i in range(4)}},
                                     sort_keys=False))
    result = subprocess.run([PYTHON, "-m", "edgecnn", "run", "--config", str(config)], cwd=ROOT, capture_output=True,
                            text=True, timeout=600, env={**os.environ, "PYTHONPATH": str(ROOT)})
    line = next((l for l in result.stderr.splitlines() if l.startswith("model ")), None)
    summaries = [l for l in result.stderr.splitlines() if l.startswith("summary")]
    return {"command": f"edgecnn run --config {config.name}", "exit": result.returncode, "line": line,
            "summary": summaries, "error": None if result.returncode == 0 else result.stderr.strip()[-400:],
            "load": load()}


def batching_tables(report: Dict[str, Any]) -> str:
    out = ["| model | backend | threads | ms per call: batch 1 / 2 / 4 | ms per frame: batch 1 / 2 / 4 | "
           "batch 2 / two singles | batch 4 / four singles (rounds) | load |",
           "|---|---|---|---|---|---|---|---|"]
    for e in report["results"]:
        c, f = e["call_ms"], e["per_frame_ms"]
        out.append(f"| {e['model']} | {e['backend']} | {e['threads']} | {c['1']:.2f} / {c['2']:.2f} / {c['4']:.2f} | "
                   f"{f['1']:.2f} / {f['2']:.2f} / {f['4']:.2f} | {e['batch2_vs_2_singles']:.2f}x | "
                   f"**{e['batch4_vs_4_singles']:.2f}x** ({min(e['batch4_vs_4_singles_rounds']):.2f}-"
                   f"{max(e['batch4_vs_4_singles_rounds']):.2f}) | {e['load_after'][0]:.2f} |")
    out += ["", "What a 4-camera `edgecnn run --config` logs:", ""]
    for line in report["runner_lines"]:
        out.append(f"- {line['model']}, {line['backend']}, {line['threads']} thread(s): "
                   f"`{line['line'] or line['error']}` (load {line['load'][0]:.2f})")
    return "\n".join(out)


# ------------------------------------------------------------------ isolation

def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def isolation(args) -> Dict[str, Any]:
    import yaml

    spec = importlib.util.spec_from_file_location("mjpeg_server", ROOT / "tests" / "mjpeg_server.py")
    mjpeg = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mjpeg)
    log(f"load {load()}; busy: {others_busy()}")
    frames = mjpeg.video_frames(str(TREE))
    names = [f"cam{i}" for i in range(args.cameras)]
    frozen_name = names[1]
    cameras = {name: mjpeg.MjpegCamera(frames, fps=args.fps) for name in names}
    work = WORK / "isolation"
    work.mkdir(parents=True, exist_ok=True)
    records_path, config = work / "records.jsonl", work / "isolation.yaml"
    port = free_port()
    config.write_text(yaml.safe_dump({
        "cameras": {name: {"source": f"{camera.url}?timeout={args.timeout:g}"} for name, camera in cameras.items()},
        "json": str(records_path), "serve": f"127.0.0.1:{port}"}, sort_keys=False))
    records_path.unlink(missing_ok=True)
    stderr_path = work / "isolation.stderr"
    load_before = load()
    process = subprocess.Popen([PYTHON, "-m", "edgecnn", "run", "--config", str(config)], cwd=ROOT,
                               stdout=subprocess.DEVNULL, stderr=open(stderr_path, "w"),
                               env={**os.environ, "PYTHONPATH": str(ROOT)})
    polls: List[dict] = []
    try:
        deadline = time.monotonic() + 120
        while len(cameras_seen({"all": records_path}, True)) < len(names):
            if process.poll() is not None or time.monotonic() > deadline:
                raise SystemExit(f"isolation: not every camera started: {stderr_path.read_text()[-800:]}")
            time.sleep(0.2)
        time.sleep(args.settle)
        start = time.time()
        freeze, resume, end = start + args.freeze_at, start + args.freeze_at + args.freeze_for, start + args.seconds
        phase = 0
        while time.time() < end:
            now = time.time()
            if phase == 0 and now >= freeze:
                cameras[frozen_name].frozen.set()
                phase = 1
            elif phase == 1 and now >= resume:
                cameras[frozen_name].frozen.clear()
                phase = 2
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/stats.json", timeout=2) as answer:
                    snapshot = json.loads(answer.read())
                polls.append({"t": round(now - start, 2), "states": snapshot.get("states"),
                              "reconnects": {n: c.get("reconnects") for n, c in snapshot.get("cameras", {}).items()}})
            except OSError as exc:
                polls.append({"t": round(now - start, 2), "error": str(exc)})
            time.sleep(max(0.0, 0.5 - (time.time() - now)))
        load_after = load()
    finally:
        stop([process])
        for camera in cameras.values():
            camera.stop()
    stderr = stderr_path.read_text()
    by_camera: Dict[str, List[dict]] = {name: [] for name in names}
    for record in read_records(records_path):
        by_camera.setdefault(record.get("camera", "?"), []).append(record)
    period_ms = 1000.0 / args.fps
    per_camera = {}
    for name in names:
        before, during = window_stats(by_camera[name], freeze - args.freeze_for, freeze), \
            window_stats(by_camera[name], freeze, resume)
        after = window_stats(by_camera[name], resume, end)
        entry = {"before": before, "during": during, "after": after}
        summary = re.search(rf"^summary {name} \((\w+)\): (.*)$", stderr, re.M)
        entry["summary"] = summary.group(0) if summary else None
        if name == frozen_name:
            later = sorted(r["capture_time"] for r in by_camera[name] if r["capture_time"] >= resume)
            entry["back_after_resume_s"] = round(later[0] - resume, 2) if later else None
            entry["records_during_freeze"] = during["frames"]
            entry["states_seen"] = sorted({p["states"][name] for p in polls if p.get("states")})
            reconnecting = [p["t"] for p in polls if p.get("states", {}).get(name) == "reconnecting"]
            entry["reconnecting_from_to_s"] = [min(reconnecting), max(reconnecting)] if reconnecting else None
            entry["reconnects_polled"] = max((p["reconnects"].get(name) or 0) for p in polls if p.get("reconnects"))
            entry["log"] = [line for line in stderr.splitlines() if name in line and "summary" not in line
                            and "running" not in line][:12]
            entry["recovered"] = bool(later) and during["frames"] == 0
        else:
            fps_change = (during["fps"] / before["fps"] - 1) if before["fps"] else None
            entry["fps_change"] = round(fps_change, 4) if fps_change is not None else None
            entry["age_p99_change_ms"] = round(during["age_p99_ms"] - before["age_p99_ms"], 2) \
                if during["age_p99_ms"] is not None and before["age_p99_ms"] is not None else None
            entry["meets"] = fps_change is not None and abs(fps_change) <= 0.05 and \
                entry["age_p99_change_ms"] is not None and abs(entry["age_p99_change_ms"]) <= period_ms
        per_camera[name] = entry
    others = [per_camera[n] for n in names if n != frozen_name]
    return {"benchmark": "isolation", "machine": machine(), "fps": args.fps, "timeout_s": args.timeout,
            "frozen": frozen_name, "freeze_at_s": args.freeze_at, "freeze_for_s": args.freeze_for,
            "seconds": args.seconds, "load_before": load_before, "load_after": load_after,
            "others_meet": all(o["meets"] for o in others), "frozen_recovered": per_camera[frozen_name]["recovered"],
            "final_summary": [l for l in stderr.splitlines() if l.startswith("summary")],
            "per_camera": per_camera, "polls": polls}


def isolation_tables(report: Dict[str, Any]) -> str:
    out = [f"| camera | FPS before / during / after | frame age p50 before / during | p99 before / during (change) | "
           f"FPS change | meets |", "|---|---|---|---|---|---|"]
    for name, e in report["per_camera"].items():
        b, d, a = e["before"], e["during"], e["after"]
        frozen = name == report["frozen"]

        def ms(v):
            return "-" if v is None else f"{v:.1f}"

        change = "-" if frozen else f"{e['age_p99_change_ms']:+.1f} ms"
        fps_change = "-" if frozen else f"{e['fps_change'] * 100:+.1f}%"
        verdict = f"back {e['back_after_resume_s']} s after the resume" if frozen else ("yes" if e["meets"] else "no")
        out.append(f"| {name}{' (frozen)' if frozen else ''} | {b['fps']:.2f} / {d['fps']:.2f} / {a['fps']:.2f} | "
                   f"{ms(b['age_p50_ms'])} / {ms(d['age_p50_ms'])} | {ms(b['age_p99_ms'])} / {ms(d['age_p99_ms'])} "
                   f"({change}) | {fps_change} | {verdict} |")
    frozen = report["per_camera"][report["frozen"]]
    out += ["", f"Frozen camera: states seen {frozen['states_seen']}, reconnecting in /stats.json from "
                f"{frozen['reconnecting_from_to_s']} s, reconnects {frozen['reconnects_polled']}; summary: "
                f"`{frozen['summary']}`"]
    return "\n".join(out)


# ------------------------------------------------------------------ the emulated Pi

def pi(args) -> Dict[str, Any]:
    log(f"load {load()}; busy: {others_busy()}")
    out = WORK / "pi-summary.json"
    command = [PYTHON, str(ROOT / "devices" / "emulated_pi.py"), "--cpu", args.cpu, "--frames", str(args.frames),
               "--camera-frames", str(args.camera_frames), "--json", str(out)]
    if args.workdir:
        command += ["--workdir", args.workdir]
    started = time.perf_counter()
    result = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=3600)
    summary = json.loads(out.read_text()) if out.is_file() else {"error": result.stderr.strip()[-800:]}
    return {"benchmark": "pi", "machine": machine(), "command": " ".join(command[1:]), "exit": result.returncode,
            "wall_s": round(time.perf_counter() - started, 1), "load_after": load(), "summary": summary}


def pi_tables(report: Dict[str, Any]) -> str:
    run = report["summary"].get("runs", {}).get("multi-camera", {})
    out = ["| camera (demo seed) | frames emulated / x86 | objects paired | min IoU | max score diff | emulated vs x86 "
           "| x86 config vs x86 one-camera run |", "|---|---|---|---|---|---|---|"]
    for name, entry in sorted((run.get("cameras") or {}).items()):
        own = entry.get("x86_config_vs_x86_one_camera", {})
        out.append(f"| {name} ({run['seeds'].get(name)}) | {entry.get('frames_device')} / "
                   f"{entry.get('frames_reference')} | {entry.get('objects_paired')} | {entry.get('min_iou')} | "
                   f"{entry.get('max_score_diff')} | "
                   f"{'agree' if entry.get('agree') else 'DISAGREE'} | {'agree' if own.get('agree') else 'DISAGREE'} "
                   f"({own.get('frames_compared')} frames) |")
    timings = report["summary"].get("timings_s", {})
    out += ["", f"Emulated `edgecnn run --config`: {run.get('emulated_wall_s')} s; x86: {run.get('host_wall_s')} s; "
                f"whole harness {timings.get('total_s')} s. Emulated summary lines: {run.get('emulated_summary')}"]
    return "\n".join(out)


# ------------------------------------------------------------------ main

def main(argv: Optional[Sequence[str]] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    t = sub.add_parser("throughput", help="one process of N cameras against N processes")
    t.add_argument("--cameras", type=int, default=4)
    t.add_argument("--fps", type=float, default=15.0)
    t.add_argument("--seconds", type=float, default=60.0, help="measured window per run")
    t.add_argument("--settle", type=float, default=3.0, help="seconds after every camera's first result")
    t.add_argument("--rounds", type=int, default=2, help="alternating rounds of the two setups")
    t.add_argument("--sizes", default="320x240,1280x720", help="frame sizes (320x240: tree.avi as it is)")
    t.add_argument("--limit", action="store_true", help="also find each setup's limit in cameras")
    t.add_argument("--skip-comparison", action="store_true", help="only the limit search")
    t.add_argument("--steps", default="4,6,8,10,12,14,16,20,24,28,32,40,48")
    t.add_argument("--limit-seconds", type=float, default=30.0)
    t.add_argument("--threads", type=int, default=None, help="inference threads of every process (default: "
                   "edgecnn's)")
    b = sub.add_parser("batching", help="per-frame inference cost at batch 1, 2 and 4")
    b.add_argument("--ultralytics", default=None, help="folder where ultralytics is installed (for YOLO11n)")
    b.add_argument("--yolo-size", type=int, default=640)
    b.add_argument("--backends", default="onnxruntime,openvino")
    b.add_argument("--threads", default="1,2")
    b.add_argument("--rounds", type=int, default=6)
    b.add_argument("--target-ms", type=float, default=600.0, help="time per batch size and round, roughly")
    y = sub.add_parser("yolo-onnx", help="(internal: run with Ultralytics on PYTHONPATH)")
    y.add_argument("--out", required=True)
    y.add_argument("--imgsz", type=int, default=640)
    i = sub.add_parser("isolation", help="one camera frozen while the others run")
    i.add_argument("--cameras", type=int, default=4)
    i.add_argument("--fps", type=float, default=15.0)
    i.add_argument("--seconds", type=float, default=40.0)
    i.add_argument("--freeze-at", type=float, default=10.0)
    i.add_argument("--freeze-for", type=float, default=10.0)
    i.add_argument("--timeout", type=float, default=2.0, help="the streams' ?timeout=")
    i.add_argument("--settle", type=float, default=3.0)
    p = sub.add_parser("pi", help="the emulated Raspberry Pi's two-camera job")
    p.add_argument("--cpu", default="cortex-a76")
    p.add_argument("--frames", type=int, default=10, help="the harness's demo frames per one-camera run")
    p.add_argument("--camera-frames", type=int, default=3, help="frames per camera of the two-camera run")
    p.add_argument("--workdir", default=None, help="the harness's --workdir (its default otherwise)")
    for each in (t, b, i, p):
        each.add_argument("--json", metavar="PATH", help="also write the JSON record here")
    args = parser.parse_args(argv)
    if args.command == "yolo-onnx":
        yolo_onnx(args)
        return 0
    sys.path.insert(0, str(ROOT))
    WORK.mkdir(parents=True, exist_ok=True)
    run, table = {"throughput": (throughput, throughput_tables), "batching": (batching, batching_tables),
                  "isolation": (isolation, isolation_tables), "pi": (pi, pi_tables)}[args.command]
    report = run(args)
    text = json.dumps(report, indent=1)
    print(text)
    if args.json:
        Path(args.json).write_text(text + "\n")
    print(table(report))
    return 0


if __name__ == "__main__":
    sys.exit(main())
