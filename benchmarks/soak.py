"""Safe to leave running: one `edgecnn run` process, long, with every output on and faults
injected, its resources sampled and every record accounted for (benchmarks/RESULTS.md,
"Soak and faults").

The run: a stand-in IP camera (tests/mjpeg_server.py: HTTP MJPEG on 127.0.0.1 at --fps,
looping the demo scene's frames or tests/data/tree.avi's) read as
`http://127.0.0.1:PORT/stream.mjpg?timeout=2`, with tracking, JSON lines, the annotated
video, MQTT to a real mosquitto broker (--publish-retry) and the web view with a token,
all in one `edgecnn run` subprocess, ended with SIGTERM after --minutes.

Faults, spread evenly over the run after the warm-up: the broker killed (SIGKILL) and
started again on the same port --broker-restarts times, down --broker-down seconds each;
the camera frozen (connection kept, nothing sent) --freezes times for --freeze-seconds
each; --web-clients clients of the web view, in turn: one that connects and resets, one
that sends half a request and resets, one that sends a whole request and resets without
reading, one that watches the video for a moment and resets (resets: SO_LINGER 0, so the
close sends RST), and one that fetches /stats.json with the token as a browser would.

Measured: every --sample-seconds, the process's RSS, open descriptors and threads from
/proc; their least-squares slope after the warm-up (goal: under 1% of the mean per 10
minutes, either way). A paho subscriber counts every message on PREFIX/#. After the
run: the summary printed and exit code 0; the JSON lines hold every frame record the
summary counts (less the JSON sink's counted drops); MQTT messages received plus the
publisher's counted drops add up to the records sent (the JSON lines' records); the
video plays to its last frame (frames read by cv2.VideoCapture = the summary's frames
less the video sink's counted drops); no partial file is left beside the outputs.

    python benchmarks/soak.py [--minutes 30] [--warmup-minutes 2] [--broker-restarts 5] [--freezes 5]
        [--web-clients 100] [--fps 15] [--scene demo|tree] [--save .mp4|.webm] [--out DIR] [--report FILE]

It prints the JSON record, then a markdown table; the exit code is 0 when every goal
is met, 1 otherwise.
"""
from __future__ import annotations

import argparse
import collections
import getpass
import http.client
import importlib.util
import json
import os
import re
import secrets
import shutil
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Dict, List, Optional

import cv2
import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
PREFIX = "soak"
QUIET_AFTER = 20.0  # seconds after a fault ends before a sample counts as quiet (the publisher reconnects, queues drain)
SIMD_FLAGS = ("sse4_2", "avx", "avx2", "fma", "f16c", "avx512f", "avx512bw", "avx512vl", "avx512_vnni",
              "avx512_bf16", "avx_vnni", "amx_tile", "amx_int8", "amx_bf16")


def load_camera_module():
    """tests/mjpeg_server.py by path (tests/ is not a package)."""
    spec = importlib.util.spec_from_file_location("mjpeg_server", ROOT / "tests" / "mjpeg_server.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def scene_frames(scene: str, frames: int, fps: float, camera_module) -> List[bytes]:
    if scene == "tree":
        return camera_module.video_frames(ROOT / "tests" / "data" / "tree.avi")
    from edgecnn.runtime.demo import DemoCapture

    capture = DemoCapture(384, 0, fps, 3)
    return [cv2.imencode(".jpg", capture.read()[1])[1].tobytes() for _ in range(frames)]


# ---------------------------------------------------------------------------- the broker and its subscriber


class Broker:
    """mosquitto on 127.0.0.1:port (as tests/test_publish.py starts it), killed and
    started again on the same port."""

    def __init__(self, directory: Path) -> None:
        self.executable = shutil.which("mosquitto") or "/usr/sbin/mosquitto"
        if not Path(self.executable).exists():
            raise SystemExit("needs the mosquitto broker (apt-get install -y mosquitto)")
        self.port = free_port()
        self.config = directory / "mosquitto.conf"
        self.config.write_text(f"listener {self.port} 127.0.0.1\npersistence false\nuser {getpass.getuser()}\n"
                               f"allow_anonymous true\n")
        self.log = open(directory / "mosquitto.log", "ab")
        self.process: Optional[subprocess.Popen] = None

    def start(self) -> None:
        self.process = subprocess.Popen([self.executable, "-c", str(self.config)], stdout=self.log,
                                        stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=0.2).close()
                return
            except OSError:
                time.sleep(0.05)
        raise RuntimeError("mosquitto did not start")

    def kill(self) -> None:
        self.process.kill()
        self.process.wait(timeout=10)

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            self.process.wait(timeout=10)
        self.log.close()


class Counter:
    """Every message on PREFIX/#, over any number of subscriber connections: records by
    frame (frame records) and by (frame, track, event) (event records), the rest by
    topic."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.frames: List[int] = []
        self.events: List[tuple] = []
        self.other: Dict[str, List[str]] = collections.defaultdict(list)
        self.messages = 0
        self.unparsed = 0

    def add(self, topic: str, payload: bytes) -> None:
        with self.lock:
            self.messages += 1
            if topic == f"{PREFIX}/frames":
                try:
                    self.frames.append(json.loads(payload)["frame"])
                except (ValueError, KeyError):
                    self.unparsed += 1
            elif topic == f"{PREFIX}/events":
                try:
                    record = json.loads(payload)
                    self.events.append((record["frame"], record["track_id"], record["event"]))
                except (ValueError, KeyError):
                    self.unparsed += 1
            else:
                self.other[topic].append(payload.decode(errors="replace"))


class Subscriber:
    """One paho connection subscribed to PREFIX/# (QoS 1); a new one after each broker
    restart, made as soon as the broker listens (the publisher's backoff is 1 s doubling,
    so this one subscribes first: the times are recorded to show it)."""

    def __init__(self, port: int, counter: Counter) -> None:
        import paho.mqtt.client as mqtt

        self.counter = counter
        ready = threading.Event()
        self.client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2)
        self.client.on_connect = lambda c, u, f, r, p: c.subscribe(f"{PREFIX}/#", qos=1)
        self.client.on_subscribe = lambda *args: ready.set()
        self.client.on_message = lambda c, u, message: counter.add(message.topic, message.payload)
        self.client.connect("127.0.0.1", port)
        self.client.loop_start()
        if not ready.wait(10):
            raise RuntimeError("the subscriber could not subscribe")
        self.subscribed = time.monotonic()

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


# ---------------------------------------------------------------------------- the web clients


def reset(sock: socket.socket) -> None:
    """Close with SO_LINGER 0: the kernel sends RST instead of FIN."""
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    finally:
        sock.close()


WEB_KINDS = ("connect-reset", "partial-request-reset", "request-reset", "viewer-reset", "stats")


def web_client(kind: str, port: int, token: str) -> Dict:
    """One client of the web view; returns what it saw."""
    host = f"127.0.0.1:{port}"
    if kind == "stats":
        connection = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
        try:
            connection.request("GET", f"/stats.json?token={token}")
            response = connection.getresponse()
            body = response.read()
        finally:
            connection.close()
        result = {"kind": kind, "status": response.status}
        if response.status == 200:
            stats = json.loads(body)
            result.update(frames=stats.get("frames"), sink_dropped=stats.get("sink_dropped"), web=stats.get("web"),
                          state=stats.get("state"))
        return result
    sock = socket.create_connection(("127.0.0.1", port), timeout=10)
    got = 0
    try:
        if kind == "connect-reset":
            time.sleep(0.1)
        elif kind == "partial-request-reset":
            sock.sendall(f"GET /stats.json?token={token} HTTP/1.1\r\nHost: {host}\r\n".encode())
            time.sleep(0.2)
        elif kind == "request-reset":
            sock.sendall(f"GET /stats.json?token={token} HTTP/1.1\r\nHost: {host}\r\n\r\n".encode())
        elif kind == "viewer-reset":
            sock.sendall(f"GET /stream.mjpg?token={token} HTTP/1.1\r\nHost: {host}\r\n\r\n".encode())
            deadline = time.monotonic() + 3
            while time.monotonic() < deadline and got < 40_000:
                data = sock.recv(65536)
                if not data:
                    break
                got += len(data)
    finally:
        reset(sock)
    return {"kind": kind, "bytes_read": got}


# ---------------------------------------------------------------------------- /proc


def proc_sample(pid: int) -> Optional[Dict]:
    try:
        status = Path(f"/proc/{pid}/status").read_text()
        descriptors = os.listdir(f"/proc/{pid}/fd")
        stat = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (FileNotFoundError, ProcessLookupError):
        return None
    fields = dict(line.split(":", 1) for line in status.splitlines() if ":" in line)
    kinds: Dict[str, int] = collections.Counter()
    for fd in descriptors:
        try:
            target = os.readlink(f"/proc/{pid}/fd/{fd}")
        except OSError:
            continue
        kinds[target.split(":")[0] if target.split(":")[0] in ("socket", "pipe", "anon_inode") else
              ("/dev" if target.startswith("/dev/") else "file")] += 1
    ticks = os.sysconf("SC_CLK_TCK")
    return {"rss_kb": int(fields["VmRSS"].split()[0]), "rss_anon_kb": int(fields["RssAnon"].split()[0]),
            "rss_file_kb": int(fields["RssFile"].split()[0]), "fds": len(descriptors), "threads": int(fields["Threads"]),
            "fd_kinds": dict(kinds), "cpu_s": (int(stat[11]) + int(stat[12])) / ticks}


def trend(times_min: List[float], values: List[float]) -> Dict:
    """Least-squares slope per 10 minutes, as a value and as % of the mean; min, max, mean."""
    t, v = np.asarray(times_min, float), np.asarray(values, float)
    slope = float(np.polyfit(t, v, 1)[0]) * 10 if len(t) >= 2 and np.ptp(t) > 0 else 0.0
    mean = float(v.mean())
    return {"slope_per_10min": round(slope, 3), "slope_pct_of_mean_per_10min": round(100 * slope / mean, 3)
            if mean else 0.0, "min": float(v.min()), "max": float(v.max()), "mean": round(mean, 2),
            "first": float(v[0]), "last": float(v[-1]), "samples": len(v)}


# ---------------------------------------------------------------------------- the run's stderr


def parse_stderr(lines: List[str]) -> Dict:
    summary = next((line for _, line in lines if line.startswith("summary:")), None)
    out: Dict = {"summary_line": summary}
    if summary is not None:
        out["frames"] = int(re.search(r"summary: (\d+) frames", summary).group(1))
        dropped = re.search(r", (\d+) dropped", summary)
        out["source_dropped"] = int(dropped.group(1)) if dropped else None
        reconnects = re.search(r", (\d+) reconnects", summary)
        out["reconnects"] = int(reconnects.group(1)) if reconnects else 0
        out["sink_dropped"] = {name: int(n) for name, n in re.findall(r", (\S+) sink dropped (\d+)", summary)}
        fps = re.search(r"frames, ([\d.]+) FPS", summary)
        out["fps"] = float(fps.group(1)) if fps else None
        for key, pattern in (("age_p50_ms", r"p50 ([\d.]+) ms p99"), ("age_p99_ms", r"p99 ([\d.]+) ms, inference"),
                             ("inference_p50_ms", r"inference p50 ([\d.]+) ms")):
            found = re.search(pattern, summary)
            out[key] = float(found.group(1)) if found else None
    published = next((line for _, line in lines if re.match(r"publish \S+: \d+ records sent", line)), None)
    out["publisher_line"] = published
    if published is not None:
        found = re.match(r"publish \S+: (\d+) records sent, (\d+) undeliverable", published)
        out["publisher_sent"], out["publisher_undeliverable"] = int(found.group(1)), int(found.group(2))
    out["web_line"] = next((line for _, line in lines if line.startswith("web view:") and "requests" in line), None)
    out["drain_line"] = next((line for _, line in lines if line.startswith("drained")), None)
    out["publisher_reconnect_times"] = [t for t, line in lines if line.startswith("publish ") and
                                        line.endswith(": reconnected")]
    out["publisher_lost_times"] = [t for t, line in lines if line.startswith("publish ") and "connection lost" in line]
    out["source_lost_times"] = [t for t, line in lines if "no frame (device gone?)" in line]
    out["tracebacks"] = sum("Traceback" in line for _, line in lines)
    out["native_warnings"] = [line for _, line in lines if line.startswith("[ WARN")][:5]
    out["native_warning_count"] = sum(line.startswith("[ WARN") for _, line in lines)
    return out


# ---------------------------------------------------------------------------- the soak


class Soak:
    def __init__(self, args) -> None:
        self.args = args
        self.work = Path(args.out) if args.out else Path(tempfile.mkdtemp(prefix="edgecnn-soak-"))
        self.outputs = self.work / "outputs"  # the run's outputs and nothing else: what is left there is checked
        self.logs = self.work / "logs"
        for folder in (self.outputs, self.logs):
            folder.mkdir(parents=True, exist_ok=True)
        self.token = secrets.token_hex(16)
        self.counter = Counter()
        self.samples: List[Dict] = []
        self.stderr: List[tuple] = []  # (seconds since launch, line)
        self.faults: List[Dict] = []
        self.web: List[Dict] = []
        self.broker_up = True
        self.frozen = False
        self.fault_ended = -1e9  # when the last fault ended (seconds since launch)
        self.subscriber: Optional[Subscriber] = None
        self.stop = threading.Event()

    def t(self) -> float:
        return time.monotonic() - self.launched

    def _read_stderr(self, stream) -> None:
        with open(self.logs / "run.stderr", "w") as log:
            for line in stream:
                line = line.rstrip("\n")
                self.stderr.append((round(self.t(), 2), line))
                log.write(f"{self.t():9.2f} {line}\n")
                log.flush()

    def _sample(self) -> None:
        while not self.stop.is_set():
            sample = proc_sample(self.process.pid)
            if sample is None:
                return
            now = self.t()
            sample.update(t_s=round(now, 1), broker_up=self.broker_up, frozen=self.frozen,
                          quiet=self.broker_up and not self.frozen and now - self.fault_ended >= QUIET_AFTER)
            self.samples.append(sample)
            self.stop.wait(self.args.sample_seconds)

    def _schedule(self, count: int, phase: float) -> List[float]:
        """`count` times (seconds since launch) spread evenly over the faulted span,
        shifted by `phase` (0..1) of one interval so that kinds of fault do not coincide."""
        start, end = self.args.warmup_minutes * 60, self.args.minutes * 60 - self.args.quiet_end_seconds
        step = (end - start) / max(1, count)
        return [start + step * (i + phase) for i in range(count)]

    def _wait_until(self, when: float) -> bool:
        return not self.stop.wait(max(0.0, when - self.t()))

    def _broker_faults(self) -> None:
        for when in self._schedule(self.args.broker_restarts, 0.25):
            if not self._wait_until(when):
                return
            fault = {"fault": "broker restart", "killed_at_s": round(self.t(), 2)}
            self.broker.kill()
            self.broker_up = False
            self.subscriber.close()
            time.sleep(self.args.broker_down)
            self.broker.start()
            fault["started_at_s"] = round(self.t(), 2)
            self.subscriber = Subscriber(self.broker.port, self.counter)
            fault["subscribed_at_s"] = round(self.subscriber.subscribed - self.launched, 2)
            self.broker_up = True
            self.fault_ended = self.t()
            self.faults.append(fault)

    def _freezes(self) -> None:
        for when in self._schedule(self.args.freezes, 0.75):
            if not self._wait_until(when):
                return
            fault = {"fault": "camera freeze", "frozen_at_s": round(self.t(), 2)}
            self.camera.frozen.set()
            self.frozen = True
            time.sleep(self.args.freeze_seconds)
            self.camera.frozen.clear()
            self.frozen = False
            self.fault_ended = self.t()
            fault["resumed_at_s"] = round(self.t(), 2)
            self.faults.append(fault)

    def _web_clients(self) -> None:
        start, end = 30.0, self.args.minutes * 60 - self.args.quiet_end_seconds
        step = (end - start) / max(1, self.args.web_clients)
        for i in range(self.args.web_clients):
            if not self._wait_until(start + step * (i + 0.5)):
                return
            kind = WEB_KINDS[i % len(WEB_KINDS)]
            try:
                result = web_client(kind, self.web_port, self.token)
            except OSError as exc:
                result = {"kind": kind, "error": f"{type(exc).__name__}: {exc}"}
            result["t_s"] = round(self.t(), 2)
            self.web.append(result)

    def _wait_for_first_frame(self, timeout: float = 120) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise SystemExit(f"edgecnn run ended at start (exit {self.process.returncode}):\n"
                                 + "\n".join(line for _, line in self.stderr[-20:]))
            try:
                if web_client("stats", self.web_port, self.token).get("frames"):
                    return
            except OSError:
                pass
            time.sleep(0.5)
        raise SystemExit("no frame within the first two minutes")

    def run(self) -> Dict:
        args = self.args
        camera_module = load_camera_module()
        frames = scene_frames(args.scene, args.scene_frames, args.fps, camera_module)
        self.camera = camera_module.MjpegCamera(frames, fps=args.fps)
        self.broker = Broker(self.logs)
        self.broker.start()
        self.subscriber = Subscriber(self.broker.port, self.counter)
        self.web_port = free_port()
        jsonl, video = self.outputs / "soak.jsonl", self.outputs / f"soak{args.save}"
        command = [sys.executable, "-m", "edgecnn", "run", *([args.model] if args.model else []),
                   "--source", f"{self.camera.url}?timeout={args.source_timeout:g}", "--track",
                   "--json", str(jsonl), "--save", str(video),
                   "--publish", f"mqtt://127.0.0.1:{self.broker.port}/{PREFIX}", "--publish-retry",
                   *(["--publish-qos", str(args.publish_qos)] if args.publish_qos else []),
                   "--serve", f"127.0.0.1:{self.web_port}", "--token", self.token]
        shown = " ".join(command[1:]).replace(self.token, "<token>").replace(str(ROOT) + "/", "")
        environment = {**os.environ, "PYTHONPATH": str(ROOT)}
        load_start = os.getloadavg()
        uptime_start = subprocess.run(["uptime"], capture_output=True, text=True).stdout.strip()
        self.launched, self.launched_wall = time.monotonic(), time.time()
        self.process = subprocess.Popen(command, cwd=ROOT, env=environment, stdin=subprocess.DEVNULL,
                                        stdout=open(self.logs / "run.stdout", "w"), stderr=subprocess.PIPE,
                                        text=True)
        reader = threading.Thread(target=self._read_stderr, args=(self.process.stderr,), daemon=True)
        reader.start()
        threads = [threading.Thread(target=self._sample, daemon=True)]
        try:
            self._wait_for_first_frame()
            first_frame_s = round(self.t(), 2)
            threads += [threading.Thread(target=target, daemon=True)
                        for target in (self._broker_faults, self._freezes, self._web_clients)]
            for thread in threads:
                thread.start()
            self._wait_until(args.minutes * 60)
            self.stop.set()
            for thread in threads[1:]:
                thread.join()  # a fault under way finishes (the broker back, the camera resumed) first
            sigterm_at = self.t()
            self.process.send_signal(signal.SIGTERM)
            exit_code = self.process.wait(timeout=120)
            exited_at = self.t()
            threads[0].join()
            reader.join(timeout=10)
            time.sleep(2)  # the last messages (PREFIX/available "offline") reach the subscriber
        finally:
            if self.process.poll() is None:
                self.process.kill()
            self.subscriber.close()
            self.broker.stop()
            self.camera.stop()
        uptime_end = subprocess.run(["uptime"], capture_output=True, text=True).stdout.strip()
        load_end = os.getloadavg()
        report = {"command": shown, "minutes": args.minutes, "fps": args.fps, "scene": args.scene,
                  "warmup_minutes": args.warmup_minutes, "sample_seconds": args.sample_seconds,
                  "uptime_start": uptime_start, "uptime_end": uptime_end,
                  "loadavg_start": list(load_start), "loadavg_end": list(load_end),
                  "first_frame_s": first_frame_s, "sigterm_at_s": round(sigterm_at, 2),
                  "exit_code": exit_code, "exit_s_after_sigterm": round(exited_at - sigterm_at, 2),
                  "camera_frames_sent": self.camera.sent, "work_dir": str(self.work)}
        report.update(self.analyse(jsonl, video, exited_at))
        return report

    # ------------------------------------------------------------------------ the analysis

    def analyse(self, jsonl: Path, video: Path, exited_at: float) -> Dict:
        args = self.args
        run = parse_stderr(self.stderr)
        sink_dropped = run.get("sink_dropped", {})
        publish_name = next((name for name in sink_dropped if name.startswith("mqtt://")), None)
        out: Dict = {"run": {k: v for k, v in run.items() if not k.endswith("_times")}, "faults": self.faults}

        # resources, after the warm-up
        steady = [s for s in self.samples if s["t_s"] >= args.warmup_minutes * 60]
        quiet = [s for s in steady if s["quiet"]]
        resources = {}
        for key in ("rss_anon_kb", "rss_file_kb"):
            resources[key] = trend([s["t_s"] / 60 for s in steady], [s[key] for s in steady]) if steady else None
        for key in ("rss_kb", "fds", "threads"):
            resources[key] = trend([s["t_s"] / 60 for s in steady], [s[key] for s in steady]) if steady else None
            resources[f"{key}_quiet"] = trend([s["t_s"] / 60 for s in quiet], [s[key] for s in quiet]) \
                if len(quiet) >= 2 else None
        if len(self.samples) >= 2:
            first, last = self.samples[0], self.samples[-1]
            resources["cpu_share"] = round((last["cpu_s"] - first["cpu_s"]) / max(1e-9, last["t_s"] - first["t_s"]), 3)
        resources["fd_kinds_first_last"] = [steady[0]["fd_kinds"], steady[-1]["fd_kinds"]] if steady else None
        out["resources"] = resources
        out["samples"] = [{k: s[k] for k in ("t_s", "rss_kb", "rss_anon_kb", "rss_file_kb", "fds", "threads",
                                             "broker_up", "frozen", "quiet")}
                          for s in self.samples]

        # JSON lines: every frame record the summary counts
        frame_counts: Dict[int, int] = collections.Counter()  # frame index -> records of that frame (1 + events)
        captured: Dict[int, float] = {}  # frame index -> its capture, seconds since launch
        frame_records = event_records = bad_lines = 0
        event_keys = []
        with open(jsonl, encoding="utf-8") as handle:
            for line in handle:
                try:
                    record = json.loads(line)
                except ValueError:
                    bad_lines += 1
                    continue
                frame_counts[record["frame"]] += 1
                if record["type"] == "frame":
                    frame_records += 1
                    captured[record["frame"]] = record["capture_time"] - self.launched_wall
                else:
                    event_records += 1
                    event_keys.append((record["frame"], record["track_id"], record["event"]))
        jsonl_dropped = sink_dropped.get("jsonl", 0)
        out["json_lines"] = {"frame_records": frame_records, "event_records": event_records, "unreadable_lines": bad_lines,
                             "summary_frames": run.get("frames"), "jsonl_sink_dropped": jsonl_dropped,
                             "holds_every_frame": run.get("frames") is not None and bad_lines == 0
                             and frame_records == run["frames"] - jsonl_dropped}

        # MQTT: received + counted drops = records sent
        with self.counter.lock:
            received_frames, received_events = list(self.counter.frames), list(self.counter.events)
            other = {topic: list(payloads) for topic, payloads in self.counter.other.items()}
        records = frame_records + event_records
        received = len(received_frames) + len(received_events)
        undeliverable = run.get("publisher_undeliverable")
        publish_dropped = sink_dropped.get(publish_name, 0) if publish_name else 0
        queue_dropped_results = publish_dropped - (undeliverable or 0)  # the queue counts results, send() records
        got_frames = set(received_frames)
        missing = sorted(set(frame_counts) - got_frames)
        events_by_frame = collections.Counter(f for f, _, _ in received_events)
        partial = sorted(f for f in got_frames & set(frame_counts) if 1 + events_by_frame[f] < frame_counts[f])
        missing_records = sum(frame_counts[f] for f in missing) + sum(frame_counts[f] - 1 - events_by_frame[f]
                                                                     for f in partial)
        sent = run.get("publisher_sent")
        # R - (received + M) = (records in the results the queue dropped - those results) + (sent - received):
        # event records inside dropped results, which the queue's count (one per result) leaves out, and
        # records paho accepted (QoS 0: written to the socket) that the broker never delivered
        in_dropped_results = (records - sent - undeliverable) if sent is not None and undeliverable is not None \
            else None
        out["mqtt"] = {
            "records_sent_by_the_run": records, "received": received, "received_frames": len(received_frames),
            "received_events": len(received_events), "duplicates": received - len(set(received_frames))
            - len(set(received_events)), "unparsed": self.counter.unparsed,
            "other_topics": {topic: collections.Counter(payloads) for topic, payloads in other.items()},
            "summary_publish_sink_dropped": publish_dropped, "publisher_sent": sent,
            "publisher_undeliverable": undeliverable, "queue_dropped_results": queue_dropped_results,
            "records_in_queue_dropped_results": in_dropped_results,
            "event_records_dropped_uncounted": (in_dropped_results - queue_dropped_results)
            if in_dropped_results is not None else None,
            "accepted_by_paho_not_received": (sent - received) if sent is not None else None,
            "records_not_received": records - received, "frames_missing_entirely": len(missing),
            "frames_missing_some_events": len(partial), "records_of_missing_frames": missing_records,
            "received_plus_summary_count": received + publish_dropped,
            "adds_up_with_summary_count": received + publish_dropped == records,
        }
        out["mqtt"]["missing_frame_spans"] = spans(missing)
        out["mqtt"]["outages"] = self._outages(frame_counts, missing, partial, events_by_frame, captured, run)
        in_outages = sum(o["records_not_received"] for o in out["mqtt"]["outages"])
        out["mqtt"]["records_not_received_outside_outages"] = records - received - in_outages

        # the video: playable to its last frame
        video_dropped = sink_dropped.get("video", 0)
        capture = cv2.VideoCapture(str(video))
        decoded = 0
        while capture.read()[0]:
            decoded += 1
        capture.release()
        out["video"] = {"path": video.name, "bytes": video.stat().st_size if video.exists() else None,
                        "frames_decoded": decoded, "video_sink_dropped": video_dropped,
                        "expected": (run["frames"] - video_dropped) if run.get("frames") is not None else None}
        out["video"]["plays_to_the_end"] = out["video"]["expected"] == decoded

        left = sorted(p.name for p in self.outputs.iterdir())
        out["outputs_left"] = left
        out["web_clients"] = dict(collections.Counter(w["kind"] for w in self.web))
        out["web_client_errors"] = [w for w in self.web if "error" in w or ("status" in w and w["status"] != 200)]
        stats_fetches = [w for w in self.web if w["kind"] == "stats" and w.get("status") == 200]
        out["web_counts_last_fetch"] = stats_fetches[-1].get("web") if stats_fetches else None

        resources_flat = {key: resources[key] is not None and abs(resources[key]["slope_pct_of_mean_per_10min"])
                          < args.flat_pct for key in ("rss_kb", "fds", "threads")}
        out["goals"] = {
            **{f"{key}_flat": value for key, value in resources_flat.items()},
            "summary_printed": run.get("summary_line") is not None,
            "exit_code_0": self.process.returncode == 0,
            "json_lines_hold_every_frame": out["json_lines"]["holds_every_frame"],
            "mqtt_adds_up": out["mqtt"]["adds_up_with_summary_count"],
            "video_plays_to_the_end": out["video"]["plays_to_the_end"],
            "no_partial_file_left": left == sorted([jsonl.name, video.name]),
            "no_traceback": run.get("tracebacks", 0) == 0,
        }
        return out

    def _outages(self, frame_counts, missing, partial, events_by_frame, captured, run) -> List[Dict]:
        """Per broker restart: the records never received of the frames captured from 5 s
        before its kill to 5 s after the publisher's reconnection (whole frames, and events
        of frames whose frame record arrived); when the publisher noticed and reconnected,
        and whether the subscriber was subscribed before it reconnected."""
        outages = []
        reconnects = list(run.get("publisher_reconnect_times", []))
        lost = list(run.get("publisher_lost_times", []))
        for fault in (f for f in self.faults if f["fault"] == "broker restart"):
            killed, started = fault["killed_at_s"], fault["started_at_s"]
            reconnected = next((t for t in reconnects if t >= started - 0.5), None)
            noticed = next((t for t in lost if t >= killed - 0.5), None)
            end = (reconnected if reconnected is not None else started) + 5
            whole = [f for f in missing if killed - 5 <= captured.get(f, -1e9) <= end]
            some = [f for f in partial if killed - 5 <= captured.get(f, -1e9) <= end]
            not_received = sum(frame_counts[f] for f in whole) + sum(frame_counts[f] - 1 - events_by_frame[f]
                                                                    for f in some)
            outages.append({"killed_at_s": killed, "broker_started_at_s": started,
                            "frames_missing": len(whole), "frames_missing_some_events": len(some),
                            "records_not_received": not_received,
                            "missing_spans": spans(whole),
                            "captured_first_missing_s": round(captured[whole[0]], 2) if whole else None,
                            "captured_last_missing_s": round(captured[whole[-1]], 2) if whole else None,
                            "subscriber_subscribed_at_s": fault["subscribed_at_s"],
                            "publisher_noticed_at_s": noticed, "publisher_reconnected_at_s": reconnected,
                            "subscriber_first": reconnected is not None and fault["subscribed_at_s"] < reconnected})
        return outages


def spans(indexes: List[int]) -> List[List[int]]:
    """Consecutive runs of frame indexes, as [first, last]."""
    out: List[List[int]] = []
    for index in indexes:
        if out and index == out[-1][1] + 1:
            out[-1][1] = index
        else:
            out.append([index, index])
    return out


def cpu_description() -> Dict:
    text = Path("/proc/cpuinfo").read_text()
    model = re.search(r"^model name\s*:\s*(.+)$", text, re.M)
    flags = set(re.search(r"^flags\s*:\s*(.+)$", text, re.M).group(1).split()) if "flags" in text else set()
    return {"model": model.group(1).strip() if model else None, "cores": os.cpu_count(),
            "simd_flags": [flag for flag in SIMD_FLAGS if flag in flags]}


def git_commit() -> Dict:
    def git(*args):
        return subprocess.run(["git", *args], cwd=ROOT, capture_output=True, text=True).stdout.strip()

    return {"commit": git("rev-parse", "--short", "HEAD") or None,
            "uncommitted_runtime_changes": git("status", "--porcelain", "--", "edgecnn").splitlines()}


def table(report: Dict) -> str:
    r, m, v, j, g = report["resources"], report["mqtt"], report["video"], report["json_lines"], report["goals"]
    run = report["run"]

    def resource(key, unit, scale=1.0):
        x, q = r[key], r.get(f"{key}_quiet")
        quiet = (f"{q['slope_per_10min'] * scale:+.2f} ({q['slope_pct_of_mean_per_10min']:+.3f}%), {q['samples']} "
                 f"samples") if q else "-"
        return (f"| {unit} | {x['min'] * scale:.1f} / {x['max'] * scale:.1f} | {x['mean'] * scale:.1f} | "
                f"{x['slope_per_10min'] * scale:+.2f} ({x['slope_pct_of_mean_per_10min']:+.3f}%), {x['samples']} "
                f"samples | {quiet} | {'met' if g[key + '_flat'] else 'NOT met'} |")

    web = report.get("web_counts_last_fetch") or {}
    lines = ["| resource (after warm-up) | min / max | mean | slope per 10 min (% of mean), every sample | "
             "the same, samples with no fault under way | flat (< 1%) |",
             "|---|---|---|---|---|---|",
             resource("rss_kb", "RSS, MiB", 1 / 1024), resource("fds", "open descriptors"),
             resource("threads", "threads"), "",
             "| check | figures | goal |", "|---|---|---|",
             f"| summary | {run.get('frames')} frames, {run.get('fps')} FPS, frame age p50/p99 {run.get('age_p50_ms')}/"
             f"{run.get('age_p99_ms')} ms, {run.get('source_dropped')} source drops, {run.get('reconnects')} "
             f"reconnects, sink drops {run.get('sink_dropped')} | {'met' if g['summary_printed'] else 'NOT met'} |",
             f"| exit after SIGTERM | code {report['exit_code']} in {report['exit_s_after_sigterm']} s | "
             f"{'met' if g['exit_code_0'] else 'NOT met'} |",
             f"| JSON lines | {j['frame_records']} frame records (+{j['event_records']} event records) for "
             f"{j['summary_frames']} frames, {j['jsonl_sink_dropped']} counted drops | "
             f"{'met' if g['json_lines_hold_every_frame'] else 'NOT met'} |",
             f"| MQTT | {m['records_sent_by_the_run']} records; received {m['received']}; the summary's publish drops "
             f"{m['summary_publish_sink_dropped']} (publisher undeliverable {m['publisher_undeliverable']}); "
             f"received + counted = {m['received_plus_summary_count']}; uncounted: event records in dropped results "
             f"{m['event_records_dropped_uncounted']}, accepted by paho but never received "
             f"{m['accepted_by_paho_not_received']} | {'met' if g['mqtt_adds_up'] else 'NOT met'} |",
             f"| video | {v['frames_decoded']} frames decoded, expected {v['expected']} "
             f"({v['video_sink_dropped']} counted drops) | {'met' if g['video_plays_to_the_end'] else 'NOT met'} |",
             f"| files left in the outputs' folder | {', '.join(report['outputs_left'])} | "
             f"{'met' if g['no_partial_file_left'] else 'NOT met'} |",
             f"| web view | {sum(report['web_clients'].values())} clients {report['web_clients']}; "
             f"client errors {len(report['web_client_errors'])}; the view's own counts at the last fetch: "
             f"{', '.join(f'{k} {n}' for k, n in web.items() if n)} | - |"]
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--minutes", type=float, default=30.0)
    parser.add_argument("--warmup-minutes", type=float, default=2.0,
                        help="left out of the slopes; faults start after it")
    parser.add_argument("--quiet-end-seconds", type=float, default=30.0, help="no fault starts in the last seconds")
    parser.add_argument("--broker-restarts", type=int, default=5)
    parser.add_argument("--broker-down", type=float, default=10.0, help="seconds the broker stays down")
    parser.add_argument("--freezes", type=int, default=5)
    parser.add_argument("--freeze-seconds", type=float, default=10.0)
    parser.add_argument("--web-clients", type=int, default=100)
    parser.add_argument("--fps", type=float, default=15.0, help="the camera's frame rate")
    parser.add_argument("--source-timeout", type=float, default=2.0, help="the source's ?timeout=")
    parser.add_argument("--scene", choices=("demo", "tree"), default="demo",
                        help="demo: the demo scene's frames (moving shapes: detections and track events); "
                        "tree: tests/data/tree.avi")
    parser.add_argument("--scene-frames", type=int, default=450, help="demo frames rendered, then looped")
    parser.add_argument("--save", choices=(".mp4", ".webm"), default=".mp4")
    parser.add_argument("--publish-qos", type=int, choices=(0, 1, 2), default=0)
    parser.add_argument("--model", default=None, help="default: the bundled detector")
    parser.add_argument("--sample-seconds", type=float, default=10.0)
    parser.add_argument("--flat-pct", type=float, default=1.0, help="goal: |slope| under this %% of the mean per 10 min")
    parser.add_argument("--out", default=None, help="working folder (default: a new temporary one)")
    parser.add_argument("--report", default=None, help="also write the JSON record here")
    args = parser.parse_args()
    if args.warmup_minutes * 60 + args.quiet_end_seconds >= args.minutes * 60:
        parser.error("--minutes must leave time after --warmup-minutes and --quiet-end-seconds")
    started = time.strftime("%Y-%m-%d %H:%M:%S %Z")
    report = {"date": started, **git_commit(), "cpu": cpu_description(),
              **Soak(args).run()}
    text = json.dumps(report, indent=1, default=str)
    if args.report:
        Path(args.report).write_text(text + "\n")
    print(text)
    print()
    print(table(report))
    failed = [goal for goal, met in report["goals"].items() if not met]
    print()
    print("goals not met: " + ", ".join(failed) if failed else "every goal met")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
