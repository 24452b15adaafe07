"""/healthz and /metrics with real HTTP requests against running cameras (stand-in IP
cameras on 127.0.0.1 that freeze and go down): a frozen or a lost camera makes the run
unhealthy, and the Prometheus counters, parsed with prometheus_client's own parser,
are the run's summary."""
import json
import threading
import time
import urllib.error
import urllib.request

import pytest

from conftest import assert_one_line_error, run_cli_batch
from mjpeg_server import MjpegCamera, blank_frames
from runtime_fixtures import detector_onnx

pytestmark = pytest.mark.runtime  # torch-free: also run where only edgecnn[runtime] is installed

TOKEN = "k7Qw2ZpX9vLm4RtB"


def fetch(url, headers=None, host=None):
    """(status, content type, body) of one GET."""
    request = urllib.request.Request(url, headers={**(headers or {}), **({"Host": host} if host else {})})
    try:
        with urllib.request.urlopen(request, timeout=5) as response:
            return response.status, response.headers["Content-Type"], response.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.headers["Content-Type"], exc.read()


def wait_until(condition, timeout, step=0.1):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(step)
    return condition()


def families(text):
    """{family name: {(sample name, labels as sorted tuples): value}} of a /metrics body."""
    from prometheus_client.parser import text_string_to_metric_families

    return {family.name: {(sample.name, tuple(sorted(sample.labels.items()))): sample.value
                          for sample in family.samples} for family in text_string_to_metric_families(text)}


class Running:
    """A Run on a thread of its own, with its summary once it ends."""

    def __init__(self, plan):
        from edgecnn.runtime.runner import Run

        self.messages = []
        self.run = Run(plan, self.messages.append)
        self.summary = None
        self.thread = threading.Thread(target=self._execute, daemon=True)
        self.thread.start()
        assert wait_until(lambda: self.run.health is not None and (self.run.run_sinks or not plan.sinks), 60), \
            self.messages

    def _execute(self):
        self.summary = self.run.execute(time.perf_counter())

    def stop(self):
        self.run.stop_requested.set()
        self.thread.join(timeout=30)
        assert not self.thread.is_alive()
        return self.summary


def two_camera_plan(first, second, **sinks):
    from edgecnn.runtime.plan import DEFAULT_MODEL, CameraPlan, ModelPlan, RunPlan

    return RunPlan(models={DEFAULT_MODEL: ModelPlan(path=str(detector_onnx()))},
                   cameras={"gate": CameraPlan(source=first), "yard": CameraPlan(source=second)},
                   sinks=sinks, health="127.0.0.1:0", retry_at_start=True)


@pytest.mark.slow(25)
def test_health_turns_503_for_a_frozen_or_lost_camera_and_metrics_match_the_summary():
    frames = blank_frames(30, (160, 120))
    gate, yard = MjpegCamera(frames, fps=20), MjpegCamera(frames, fps=20)
    # the gate's stream reopens 1 s after its last frame; the yard keeps the default 10 s,
    # so that its freeze is caught by /healthz long before its own reader notices
    running = Running(two_camera_plan(gate.url + "?timeout=1", yard.url, serve="127.0.0.1:0", token=TOKEN))
    health = running.run.health.url
    try:
        def status():
            code, content_type, body = fetch(health + "healthz")
            assert content_type == "application/json"
            return code, json.loads(body)

        assert wait_until(lambda: status()[0] == 200 and min(c["frames"] for c in status()[1]["cameras"].values())
                          >= 10, 30), status()
        code, body = status()
        assert body["status"] == "ok" and set(body["cameras"]) == {"gate", "yard"}
        assert all(c["state"] == "live" and c["live"] and c["fps"] > 5 and c["last_frame_age_s"] < 1
                   for c in body["cameras"].values()), body

        yard.frozen.set()  # keeps its connection, sends nothing
        frozen_at = time.monotonic()
        assert wait_until(lambda: status()[0] == 503, 5), status()
        code, body = status()
        assert time.monotonic() - frozen_at < 4  # 2 s without a result (5 frame periods at 20 FPS are less)
        assert body["status"] == "unavailable" and body["cameras"]["gate"]["live"]
        yard_health = body["cameras"]["yard"]
        assert yard_health["state"] == "live" and yard_health["stalled"] and not yard_health["live"]
        assert yard_health["last_frame_age_s"] >= 2

        yard.frozen.clear()
        assert wait_until(lambda: status()[0] == 200, 5), status()

        gate.stop()  # taken down: the connection drops and new ones are refused
        assert wait_until(lambda: status()[1]["cameras"]["gate"]["state"] == "reconnecting", 10), status()
        assert status()[0] == 503 and status()[1]["cameras"]["yard"]["live"]

        # nothing arrives any more: the counters stay where the summary will find them
        yard.frozen.set()
        assert wait_until(lambda: status()[1]["cameras"]["yard"]["stalled"], 5), status()
        settled = wait_until(lambda: _settled(health), 10, step=0.5)
        assert settled, "the frame counts kept changing"
        metrics = _metrics(health)
        code, content_type, web_metrics = fetch(running.run.run_sinks[0].sink.url.split("?")[0] + "metrics",
                                                {"Authorization": f"Bearer {TOKEN}"})
        assert code == 200 and content_type.startswith("text/plain")
        assert fetch(running.run.run_sinks[0].sink.url.split("?")[0] + "metrics")[0] == 401  # the view's token
        assert fetch(running.run.run_sinks[0].sink.url.split("?")[0] + "healthz")[0] == 401
    finally:
        summary = running.stop()
        gate.stop()
        yard.stop()
    counters = families(metrics)
    for name, camera in summary["cameras"].items():
        label = (("camera", name),)
        assert counters["edgecnn_camera_frames"][("edgecnn_camera_frames_total", label)] == camera["frames"] > 10
        assert counters["edgecnn_camera_dropped_frames"][("edgecnn_camera_dropped_frames_total", label)] \
            == camera["dropped"]
        assert counters["edgecnn_camera_skipped_inputs"][("edgecnn_camera_skipped_inputs_total", label)] \
            == camera["skipped"] == 0
        assert counters["edgecnn_camera_reconnects"][("edgecnn_camera_reconnects_total", label)] \
            == camera["reconnects"]
        for histogram in ("edgecnn_inference_seconds", "edgecnn_frame_age_seconds"):
            samples = counters[histogram]
            assert samples[(f"{histogram}_count", label)] == camera["frames"]
            assert samples[(f"{histogram}_bucket", tuple(sorted({"camera": name, "le": "+Inf"}.items())))] \
                == camera["frames"]
        states = {dict(labels)["state"]: value for (_, labels), value in counters["edgecnn_camera_state"].items()
                  if dict(labels)["camera"] == name}
        assert sum(states.values()) == 1 and set(states) == {"starting", "live", "reconnecting", "ended", "failed"}
    assert _state(counters, "gate") == "reconnecting" and _state(counters, "yard") == "live"
    assert counters["edgecnn_camera_live"][("edgecnn_camera_live", (("camera", "yard"),))] == 0  # frozen
    dropped = counters["edgecnn_sink_dropped_records"]
    assert dropped[("edgecnn_sink_dropped_records_total", (("camera", ""), ("sink", "webview")))] \
        == summary["sink_dropped"].get("webview", 0)
    assert families(web_metrics.decode())["edgecnn_camera_frames"] == counters["edgecnn_camera_frames"]


def _metrics(health):
    code, content_type, body = fetch(health + "metrics")
    assert code == 200 and content_type.startswith("text/plain")
    return body.decode()


def _settled(health):
    """Two scrapes a second apart with the same frame counts."""
    first = families(_metrics(health))["edgecnn_camera_frames"]
    time.sleep(1.0)
    return families(_metrics(health))["edgecnn_camera_frames"] == first


def _state(counters, camera):
    return next(dict(labels)["state"] for (_, labels), value in counters["edgecnn_camera_state"].items()
                if dict(labels)["camera"] == camera and value == 1)


def test_the_health_server_answers_only_its_two_paths_and_only_to_loopback_names():
    from edgecnn.runtime.runner import RunOptions, plan_from_options

    running = Running(plan_from_options(RunOptions(source="demo?fps=20&size=160", model=str(detector_onnx()),
                                                   health="127.0.0.1:0", callbacks=[lambda image, result: None])))
    url = running.run.health.url
    port = running.run.health.server.server_address[1]
    try:
        assert wait_until(lambda: fetch(url + "healthz")[0] == 200, 20)
        body = json.loads(fetch(url + "healthz")[2])
        assert list(body["cameras"]) == ["camera"]  # a one-camera run's one camera
        for path in ("", "stats.json", "stream.mjpg", "healthz/x", "metrics.txt"):
            assert fetch(url + path)[0] == 404, path
        assert fetch(url + "healthz", host=f"localhost:{port}")[0] == 200
        for host in ("evil.example", f"rebound.example:{port}"):
            assert fetch(url + "metrics", host=host)[0] == 403
        assert "edgecnn_camera_frames" in families(_metrics(url))
    finally:
        running.stop()
    assert any(m.startswith(f"health: {url}healthz") for m in running.messages), running.messages


def test_an_unusable_health_address_is_one_line(tmp_path):
    config = tmp_path / "cameras.yaml"
    config.write_text("cameras:\n  a: {source: demo}\nhealth: 'nowhere'\n")
    option, in_file, beside = run_cli_batch(
        ("run", "--source", "demo", "--max-frames", "1", "--health", "localhost:http"),
        ("run", "--config", config, "--check"),
        ("run", "--config", config, "--health", "x:y", "--max-frames", "1"))
    assert_one_line_error(option, contains="--health takes HOST:PORT or PORT")
    assert_one_line_error(in_file, contains=f"{config}: health takes HOST:PORT or PORT")
    assert_one_line_error(beside, contains="--health takes HOST:PORT or PORT, got 'x:y'")


def test_histogram_buckets_are_cumulative_and_include_their_bound():
    from edgecnn.runtime.stats import Histogram

    histogram = Histogram((0.01, 0.1))
    for value in (0.005, 0.01, 0.05, 0.1, 3.0):
        histogram.observe(value)
    assert histogram.cumulative() == [(0.01, 2), (0.1, 4), (float("inf"), 5)]
    assert histogram.count == 5 and histogram.sum == pytest.approx(3.165)
