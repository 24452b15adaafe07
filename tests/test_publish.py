"""Publishing result records: MQTT against a real broker (Debian's mosquitto on a free
loopback port), ZeroMQ and UDP subscribers, the same records as --json, and the
one-line errors. Needs edgecnn[publish] (paho-mqtt, pyzmq), so not marked runtime."""
import getpass
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from conftest import ROOT, assert_one_line_error, run_cli, run_cli_batch
from edgecnn.runtime.schema import validate

MOSQUITTO = shutil.which("mosquitto") or ("/usr/sbin/mosquitto" if Path("/usr/sbin/mosquitto").exists() else None)
needs_broker = pytest.mark.skipif(MOSQUITTO is None, reason="needs Debian's mosquitto broker "
                                  "(apt-get install -y mosquitto)")


def free_port(kind=socket.SOCK_STREAM) -> int:
    with socket.socket(socket.AF_INET, kind) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Broker:
    """mosquitto on 127.0.0.1:port, stoppable and restartable on the same port."""

    def __init__(self, directory: Path, settings: str = "allow_anonymous true\n") -> None:
        self.port = free_port()
        self.config = directory / "mosquitto.conf"
        # user: run as whoever starts it (as root mosquitto would switch to a user that cannot read tmp_path)
        self.config.write_text(f"listener {self.port} 127.0.0.1\npersistence false\nuser {getpass.getuser()}\n"
                               f"{settings}")
        self.process = None

    def start(self) -> None:
        self.process = subprocess.Popen([MOSQUITTO, "-c", str(self.config)], stdout=subprocess.DEVNULL,
                                        stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=0.2).close()
                return
            except OSError:
                time.sleep(0.05)
        raise RuntimeError("mosquitto did not start")

    def stop(self) -> None:
        self.process.terminate()
        self.process.wait(timeout=10)


@pytest.fixture
def broker(tmp_path):
    running = Broker(tmp_path)
    running.start()
    yield running
    if running.process.poll() is None:
        running.stop()


class Subscriber:
    """Collects (topic, payload) of everything under `prefix/#`, in arrival order."""

    def __init__(self, port: int, prefix: str) -> None:
        import paho.mqtt.client as mqtt

        self.messages = []
        self.lock = threading.Lock()
        ready = threading.Event()
        self.client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2)
        self.client.on_connect = lambda c, u, f, r, p: (c.subscribe(f"{prefix}/#", qos=1), None)
        self.client.on_subscribe = lambda *args: ready.set()
        self.client.on_message = self._message
        self.client.connect("127.0.0.1", port)
        self.client.loop_start()
        assert ready.wait(5)

    def _message(self, client, userdata, message) -> None:
        with self.lock:
            self.messages.append((message.topic, message.payload.decode()))

    def on(self, topic: str):
        with self.lock:
            return [payload for t, payload in self.messages if t == topic]

    def wait_for(self, topic: str, payload=None, timeout: float = 10) -> bool:
        """Until `payload` (None: anything) arrives on `topic`."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            seen = self.on(topic)
            if (payload in seen) if payload is not None else seen:
                return True
            time.sleep(0.05)
        return False

    def close(self) -> None:
        self.client.loop_stop()
        self.client.disconnect()


def start_run(*args):
    return subprocess.Popen([sys.executable, "-m", "edgecnn", "run", *map(str, args)], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, cwd=ROOT)


@needs_broker
def test_mqtt_records_arrive_in_order_with_the_schema_and_match_json_lines(broker):
    subscriber = Subscriber(broker.port, "robot")
    try:
        result = run_cli("run", "--source", "demo?fps=60", "--max-frames", "40", "--track", "--json", "-",
                         "--publish", f"mqtt://127.0.0.1:{broker.port}/robot", "--publish-qos", "1", check=True)
        assert subscriber.wait_for("robot/available", "offline")
        time.sleep(0.2)
    finally:
        subscriber.close()
    frames = [json.loads(p) for p in subscriber.on("robot/frames")]
    events = [json.loads(p) for p in subscriber.on("robot/events")]
    assert [r["frame"] for r in frames] == sorted(r["frame"] for r in frames) and len(frames) == 40
    assert all(validate(record) == [] for record in frames + events)
    assert {e["event"] for e in events} >= {"new"} and all(e["track_id"] >= 1 for e in events)
    local = [json.loads(line) for line in result.stdout.splitlines()]  # --json: the same records, same order
    assert [r for r in local if r["type"] == "frame"] == frames
    assert [r for r in local if r["type"] == "event"] == events
    assert subscriber.on("robot/available") == ["online", "offline"]
    assert f"publish mqtt://127.0.0.1:{broker.port}/robot: {len(frames) + len(events)} records sent, 0 undeliverable" \
        in result.stderr


@needs_broker
def test_the_last_will_says_offline_when_the_run_is_killed(broker):
    subscriber = Subscriber(broker.port, "cam")
    run = start_run("--source", "demo?fps=30", "--json", os.devnull, "--publish", f"mqtt://127.0.0.1:{broker.port}/cam")
    try:
        assert subscriber.wait_for("cam/available", "online", timeout=30)
        assert subscriber.wait_for("cam/frames", timeout=10)
        assert subscriber.on("cam/available") == ["online"]  # nothing but "online" while the run lives
        run.send_signal(signal.SIGKILL)
        run.wait(timeout=10)
        assert subscriber.wait_for("cam/available", "offline", timeout=10)  # the broker published the will
        assert subscriber.on("cam/available") == ["online", "offline"]
    finally:
        if run.poll() is None:
            run.kill()
        subscriber.close()


@needs_broker
@pytest.mark.slow
def test_a_broker_outage_drops_only_what_overflowed_and_publishing_resumes(broker):
    run = start_run("--source", "demo?fps=30", "--max-frames", "330", "--json", os.devnull,
                    "--publish", f"mqtt://127.0.0.1:{broker.port}/cam")
    subscriber = Subscriber(broker.port, "cam")
    try:
        assert subscriber.wait_for("cam/available", "online", timeout=30)
        time.sleep(1.5)
        before = len(subscriber.on("cam/frames"))
        subscriber.close()
        broker.stop()
        time.sleep(5)
        broker.start()
        subscriber = Subscriber(broker.port, "cam")
        out, err = run.communicate(timeout=60)
    finally:
        if run.poll() is None:
            run.kill()
        subscriber.close()
    assert run.returncode == 0, err
    assert "connection lost" in err and "reconnected" in err
    summary = next(line for line in err.splitlines() if line.startswith("summary:"))
    assert "330 frames" in summary
    dropped = int(summary.split(f"mqtt://127.0.0.1:{broker.port}/cam sink dropped ")[1].split(",")[0].split()[0])
    assert dropped >= 30 * 5 - 64 - 10  # five seconds of frames, less the queue that waited
    after = [json.loads(p)["frame"] for p in subscriber.on("cam/frames")]
    assert before > 0 and after and after == sorted(after)  # publishing resumed, in order


def test_zeromq_and_udp_subscribers_get_the_same_records():
    import zmq

    zmq_port, udp = free_port(), socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    udp.bind(("127.0.0.1", 0))
    udp.settimeout(0.5)
    run = start_run("--source", "demo?fps=30", "--max-frames", "45", "--track", "--json", "-",
                    "--publish", f"zmq+tcp://127.0.0.1:{zmq_port}",
                    "--publish", f"udp://127.0.0.1:{udp.getsockname()[1]}")
    context = zmq.Context.instance()
    sub = context.socket(zmq.SUB)
    sub.setsockopt(zmq.SUBSCRIBE, b"")
    sub.setsockopt(zmq.RCVTIMEO, 500)
    sub.connect(f"tcp://127.0.0.1:{zmq_port}")
    over_zmq, over_udp = [], []
    try:
        while run.poll() is None or len(over_zmq) < 1:
            try:
                topic, payload = sub.recv_multipart()
                over_zmq.append((topic.decode(), json.loads(payload)))
            except zmq.Again:
                if run.poll() is not None:
                    break
        out, err = run.communicate(timeout=30)
        while True:
            over_udp.append(json.loads(udp.recv(65535)))
    except socket.timeout:
        pass
    finally:
        sub.close(0)
        udp.close()
        if run.poll() is None:
            run.kill()
    assert run.returncode == 0, err
    local = [json.loads(line) for line in out.splitlines()]
    assert over_udp == local  # one datagram per record, all of them on loopback
    assert over_zmq and all(topic == ("frames" if r["type"] == "frame" else "events") for topic, r in over_zmq)
    received = [r for _, r in over_zmq]
    assert received == local[len(local) - len(received):]  # a late subscriber misses the first records only
    assert all(validate(record) == [] for record in local)


def test_publish_errors_are_one_line_and_never_show_the_password(tmp_path):
    taken = socket.socket()
    taken.bind(("127.0.0.1", 0))
    taken.listen()
    closed = free_port()
    base = ("run", "--source", "demo", "--max-frames", "1", "--publish")
    commands = {
        "unreachable": (*base, f"mqtt://robot:s3cret@127.0.0.1:{closed}/x"),
        "malformed": (*base, "mqtt://127.0.0.1:99999/x"),
        "no scheme": (*base, "127.0.0.1:1883"),
        "unknown scheme": (*base, "amqp://127.0.0.1/x"),
        "port in use": (*base, f"zmq+tcp://127.0.0.1:{taken.getsockname()[1]}"),
        "qos": (*base, "udp://127.0.0.1:9", "--publish-qos", "3"),
    }
    results = dict(zip(commands, run_cli_batch(*commands.values())))
    taken.close()
    fake = tmp_path / "no-paho" / "paho"
    fake.mkdir(parents=True)
    (fake / "__init__.py").write_text("raise ImportError('paho-mqtt is not installed here')\n")
    results["missing extra"] = run_cli(*base, "mqtt://127.0.0.1/x", env={"PYTHONPATH": fake.parent})
    expected = {"unreachable": "cannot reach the broker", "malformed": "malformed URI", "no scheme": "malformed URI",
                "unknown scheme": "unknown scheme 'amqp'", "port in use": "cannot bind",
                "qos": "--publish-qos takes 0, 1 or 2", "missing extra": "pip install 'edgecnn[publish]'"}
    for name, result in results.items():
        assert_one_line_error(result, contains=expected[name])
        assert "s3cret" not in result.stderr + result.stdout
    assert "robot:***@" in results["unreachable"].stderr


@pytest.mark.slow
def test_publish_retry_starts_without_a_broker_and_counts_what_it_could_not_send():
    port = free_port()
    result = run_cli("run", "--source", "demo?fps=60", "--max-frames", "20", "--json", os.devnull,
                     "--publish", f"mqtt://127.0.0.1:{port}/x", "--publish-retry", check=True)
    assert "broker unreachable" in result.stderr and "retrying" in result.stderr
    assert f"mqtt://127.0.0.1:{port}/x sink dropped 20" in result.stderr  # queue overflow + the 2 s grace at the end


def test_the_transports_are_found_in_their_registry():
    from edgecnn.runtime.publishers import publish_schemes, publisher_for

    assert publish_schemes() == ["mqtt", "mqtts", "udp", "zmq+tcp"]
    assert publisher_for("mqtts").name == "mqtt" and publisher_for("zmq+tcp").name == "zmq"


@pytest.mark.slow  # about 4-10 s: in CI, left out of the inner loop
@needs_broker
def test_the_readme_robot_example_runs(broker, tmp_path):
    readme = (ROOT / "README.md").read_text()
    code = next(block for block in readme.split("```python\n")[1:] if 'edgecnn.publish("mqtt://' in block)
    code = code.split("```")[0]
    assert len(code.strip().splitlines()) == 6  # the import and five lines
    subscriber = Subscriber(broker.port, "robot")
    try:
        script = tmp_path / "robot.py"
        script.write_text(code.replace("mqtt://127.0.0.1/robot", f"mqtt://127.0.0.1:{broker.port}/robot"))
        result = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, cwd=tmp_path,
                                timeout=120)
        assert result.returncode == 0, result.stderr
        assert subscriber.wait_for("robot/available", "offline")
    finally:
        subscriber.close()
    printed = result.stdout.splitlines()
    events = [json.loads(p) for p in subscriber.on("robot/events")]
    assert printed and printed == [f"new {e['label']} track {e['track_id']}" for e in events if e["event"] == "new"]
    assert len(subscriber.on("robot/frames")) == 60


@needs_broker
def test_mqtts_with_credentials_from_the_environment(tmp_path):
    """TLS with the broker's own CA file, user and password from the environment; a
    wrong password is one line that shows neither password."""
    openssl = shutil.which("openssl")
    assert openssl, "needs openssl (apt-get install -y openssl)"
    subprocess.run([openssl, "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj", "/CN=127.0.0.1",
                    "-addext", "subjectAltName=IP:127.0.0.1", "-keyout", tmp_path / "key.pem",
                    "-out", tmp_path / "cert.pem"], check=True, capture_output=True)
    subprocess.run([str(Path(MOSQUITTO).parent.parent / "bin" / "mosquitto_passwd"), "-c", "-b", tmp_path / "passwd",
                    "robot", "s3cret"], check=True, capture_output=True)
    broker = Broker(tmp_path, f"allow_anonymous false\npassword_file {tmp_path / 'passwd'}\n"
                              f"certfile {tmp_path / 'cert.pem'}\nkeyfile {tmp_path / 'key.pem'}\n")
    broker.start()
    try:
        env = {"EDGECNN_PUBLISH_CA": str(tmp_path / "cert.pem"), "EDGECNN_PUBLISH_USERNAME": "robot"}
        uri = f"mqtts://127.0.0.1:{broker.port}/secure"
        good = run_cli("run", "--source", "demo?fps=60", "--max-frames", "10", "--json", os.devnull, "--publish", uri,
                       env={**env, "EDGECNN_PUBLISH_PASSWORD": "s3cret"})
        bad = run_cli("run", "--source", "demo", "--max-frames", "1", "--publish", uri,
                      env={**env, "EDGECNN_PUBLISH_PASSWORD": "wr0ng-pass"})
    finally:
        broker.stop()
    assert good.returncode == 0, good.stderr
    assert f"publish {uri}: 10 records sent, 0 undeliverable" in good.stderr
    assert_one_line_error(bad, contains="the broker refused the connection")
    for result in (good, bad):
        assert "s3cret" not in result.stderr + result.stdout and "wr0ng-pass" not in result.stderr + result.stdout
