"""`edgecnn deploy` and what it relies on: the runtime's systemd notifications (against
a NOTIFY_SOCKET listener of the test's own), the unit file (systemd-analyze verify),
the release's files, the trust check, and the whole deploy against a real systemd: PID
1 of new namespaces, reached by an sshd on a loopback port (tests/namespaced_systemd.py),
which leaves the host as it was."""
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
import uuid
from pathlib import Path

import pytest

from conftest import ROOT, assert_one_line_error, run_cli, run_cli_batch
from namespaced_systemd import device_python, free_port, start_ssh_device, usable

from edgecnn.assets import RUNTIME_FP32, RUNTIME_INT8
from edgecnn.runtime.service_notify import ServiceNotifier, socket_address

# Torch-free throughout: the tests marked `runtime` also run where only edgecnn[runtime] is
# installed; the two slow end-to-end ones run once, in the full install.

SSHD = shutil.which("sshd") or next((p for p in ("/usr/sbin/sshd", "/usr/local/sbin/sshd") if os.path.exists(p)),
                                    None)
DEVICE_ROOT = "/srv/edgecnn"  # inside the namespaced device: the host's work directory srv/


# ---------------------------------------------------------------------------- sd_notify

class NotifyListener:
    """A datagram socket standing in for systemd's notification socket."""

    def __init__(self, path=None):
        self.value = path or f"@edgecnn-test-{uuid.uuid4().hex}"  # abstract unless a path is given
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind(socket_address(self.value))
        self.sock.settimeout(0.05)
        self.messages = []

    def drain(self, seconds=0.0):
        deadline = time.monotonic() + seconds
        while True:
            try:
                self.messages.append(self.sock.recv(4096).decode())
            except socket.timeout:
                if time.monotonic() >= deadline:
                    return self.messages

    def fields(self):
        return [line for message in self.messages for line in message.splitlines()]

    def close(self):
        self.sock.close()
        if not self.value.startswith("@") and os.path.exists(self.value):
            os.unlink(self.value)


class Counts:
    """What ServiceNotifier reads from a run's statistics."""

    def __init__(self):
        self.frames = 0
        self.cameras = {}


@pytest.mark.runtime
@pytest.mark.parametrize("where", ["abstract", "path"])
def test_ready_after_the_first_result_and_the_watchdog_only_while_results_come(where, tmp_path):
    listener = NotifyListener(None if where == "abstract" else str(tmp_path / "notify"))
    try:
        notifier = ServiceNotifier.from_environment({"NOTIFY_SOCKET": listener.value, "WATCHDOG_USEC": "100000"})
        assert notifier.enabled and notifier.interval == pytest.approx(0.05)
        counts = Counts()
        notifier.round(counts)  # no result yet: nothing
        time.sleep(0.06)
        notifier.round(counts)
        assert listener.drain() == []
        counts.frames = 1
        notifier.round(counts)
        assert listener.drain()[0].splitlines()[0] == "READY=1"
        for _ in range(3):  # results keep coming: petted at each interval
            time.sleep(0.06)
            counts.frames += 2
            notifier.round(counts)
        assert listener.drain(0.05) and listener.fields().count("WATCHDOG=1") == 4  # READY's and three more
        listener.messages.clear()
        for _ in range(3):  # frames stopped (a hung camera): status, never the watchdog
            time.sleep(0.06)
            notifier.round(counts)
        assert listener.drain(0.05) and "WATCHDOG=1" not in listener.fields()
        assert all(field.startswith("STATUS=") for field in listener.fields())
        notifier.stopping()
        assert listener.drain(0.05)[-1].splitlines()[0] == "STOPPING=1"
    finally:
        listener.close()


@pytest.mark.runtime
def test_notifications_off_without_a_manager_or_for_another_process():
    assert not ServiceNotifier.from_environment({}).enabled
    other = ServiceNotifier.from_environment({"NOTIFY_SOCKET": "@x", "WATCHDOG_USEC": "2000000",
                                              "WATCHDOG_PID": str(os.getpid() + 1)})
    assert other.enabled and other.watchdog_seconds is None  # the watchdog is another process's
    mine = ServiceNotifier.from_environment({"NOTIFY_SOCKET": "@x", "WATCHDOG_USEC": "2000000",
                                             "WATCHDOG_PID": str(os.getpid())})
    assert mine.watchdog_seconds == 2.0 and mine.interval == 1.0
    assert not ServiceNotifier(None).send("READY=1")
    nobody = ServiceNotifier("/nonexistent/notify")
    assert not nobody.send("READY=1")  # nobody listening: no error
    nobody.close()


@pytest.mark.runtime
def test_edgecnn_run_notifies_ready_pets_and_stops_on_sigterm():
    """The real command: READY=1 once frames flow, WATCHDOG=1 while they do, STOPPING=1
    when SIGTERM (what `systemctl stop` sends) ends it cleanly with exit 0."""
    listener = NotifyListener()
    try:
        env = {**os.environ, "NOTIFY_SOCKET": listener.value, "WATCHDOG_USEC": "400000",
               "WATCHDOG_PID": "", "PYTHONUNBUFFERED": "1"}
        process = subprocess.Popen([sys.executable, "-m", "edgecnn", "run", "--source", "demo?fps=20", "--json",
                                    os.devnull], env=env, cwd=ROOT, stdout=subprocess.DEVNULL,
                                   stderr=subprocess.PIPE, text=True)
        try:
            deadline = time.monotonic() + 60
            while "READY=1" not in listener.fields() and time.monotonic() < deadline:
                listener.drain(0.2)
                assert process.poll() is None, process.stderr.read()
            listener.drain(1.0)
            process.send_signal(signal.SIGTERM)
            _, stderr = process.communicate(timeout=30)
        finally:
            if process.poll() is None:
                process.kill()
        listener.drain(0.2)
        fields = listener.fields()
        assert process.returncode == 0, stderr
        assert fields.count("READY=1") == 1 and fields.count("WATCHDOG=1") >= 2, fields
        assert fields[-2:] == ["STOPPING=1", "STATUS=stopping"] and "stopping on SIGTERM" in stderr
    finally:
        listener.close()


# ---------------------------------------------------------------------------- the unit file

def unit_for(root, **changes):
    from edgecnn.deploy.unit import UnitSettings, unit_text

    settings = dict(service="edgecnn-shop", root=str(root), user="edgecnn-shop", groups=["video"],
                    read_write_paths=["/data/out"])
    return unit_text(UnitSettings(**{**settings, **changes}))


@pytest.mark.runtime
def test_the_unit_passes_systemd_analyze_verify(tmp_path):
    if shutil.which("systemd-analyze") is None:
        pytest.skip("needs systemd-analyze (apt-get install -y systemd)")
    root = tmp_path / "root"  # the unit's ExecStart must exist for verify: a release with its venv's python
    (root / "current" / "venv" / "bin").mkdir(parents=True)
    os.symlink(sys.executable, root / "current" / "venv" / "bin" / "python")
    unit = tmp_path / "edgecnn-shop.service"
    unit.write_text(unit_for(root))
    result = subprocess.run(["systemd-analyze", "verify", "--man=no", str(unit)], capture_output=True, text=True,
                            timeout=60)
    assert result.returncode == 0 and not result.stderr.strip(), result.stderr
    broken = tmp_path / "broken.service"
    broken.write_text(unit.read_text().replace("Type=notify", "Type=notifyy"))
    result = subprocess.run(["systemd-analyze", "verify", "--man=no", str(broken)], capture_output=True, text=True,
                            timeout=60)
    assert "Failed to parse service type" in result.stderr  # verify does read what the template writes


@pytest.mark.runtime
def test_the_unit_restarts_on_failure_and_by_watchdog_and_is_hardened(tmp_path):
    text = unit_for(tmp_path, watchdog_seconds=7, start_seconds=90)
    settings = dict(line.split("=", 1) for line in text.splitlines() if "=" in line and not line.startswith("#"))
    assert settings["Type"] == "notify" and settings["NotifyAccess"] == "main"
    assert settings["WatchdogSec"] == "7" and settings["TimeoutStartSec"] == "90"
    assert settings["Restart"] == "on-failure" and settings["RestartPreventExitStatus"] == "2"
    assert settings["ExecStart"] == f"{tmp_path}/current/venv/bin/python -m edgecnn run --config " \
                                    f"{tmp_path}/current/config.yaml"
    assert settings["User"] == "edgecnn-shop" and settings["SupplementaryGroups"] == "video"
    assert settings["ReadWritePaths"] == "-/data/out" and settings["StateDirectory"] == "edgecnn-shop"
    for key, value in {"NoNewPrivileges": "yes", "ProtectSystem": "strict", "ProtectHome": "yes",
                       "PrivateTmp": "yes", "CapabilityBoundingSet": "", "ProtectKernelModules": "yes",
                       "SystemCallFilter": "@system-service", "RestrictSUIDSGID": "yes"}.items():
        assert settings[key] == value, key
    for absent in ("PrivateDevices", "MemoryDenyWriteExecute", "ProcSubset", "PrivateUsers", "PrivateNetwork"):
        assert absent not in settings  # each would stop a camera, an accelerator or a backend (unit.py says which)
    assert "ProtectHome=read-only" in unit_for(tmp_path, protect_home="read-only")
    assert "SupplementaryGroups" not in dict(line.split("=", 1) for line in unit_for(tmp_path, groups=[])
                                             .splitlines() if "=" in line and not line.startswith("#"))


# ---------------------------------------------------------------------------- desktop checks

def write_config(directory, text, model=RUNTIME_INT8):
    directory.mkdir(parents=True, exist_ok=True)
    if model is not None:
        shutil.copy(model, directory / Path(model).name)
    path = directory / "shop.yaml"
    path.write_text(text)
    return path


@pytest.mark.runtime
def test_the_release_copies_models_and_moves_outputs_to_the_state_directory(tmp_path):
    from edgecnn.deploy.release_files import prepare_release

    (tmp_path / "labels.txt").write_text("circle\nsquare\ntriangle\n")
    config = write_config(tmp_path, "model: shapes_detector-int8.tflite\n"
                          "models:\n  other: {path: shapes_detector-int8.tflite, labels: labels.txt}\n"
                          "cameras:\n"
                          "  front: {source: 'demo?fps=5', json: out/front.jsonl, track: true}\n"
                          "  rear: {source: /dev/video7, model: other, save: /data/clips/rear.mp4}\n"
                          "json: all.jsonl\n")
    release = prepare_release(str(config), "edgecnn-shop", health_port=9123)
    import yaml

    data = yaml.safe_load(release.config_text)
    assert data["model"] == "models/shapes_detector-int8.tflite"  # beside the copied config: the release's copy
    assert data["models"]["other"] == {"path": "models/shapes_detector-int8.tflite", "labels": "models/labels.txt"}
    assert data["cameras"]["front"]["json"] == "/var/lib/edgecnn-shop/out/front.jsonl"
    assert data["cameras"]["rear"]["save"] == "/data/clips/rear.mp4"
    assert data["json"] == "/var/lib/edgecnn-shop/all.jsonl"
    assert data["health"] == "127.0.0.1:9123" and release.health_url == "http://127.0.0.1:9123/"
    assert release.read_write_paths == ["/data/clips"]
    assert sorted(name for name, _ in release.files) == ["models/labels.txt", "models/shapes_detector-int8.tflite"]
    assert release.extras == ["runtime", "track", "video"]
    assert release.digest == prepare_release(str(config), "edgecnn-shop", health_port=9123).digest
    from edgecnn.deploy.release_files import DEFAULT_HEALTH_PORT

    named = yaml.safe_load(prepare_release(str(config), "edgecnn-shop").config_text)["health"]
    default = yaml.safe_load(prepare_release(str(config), "edgecnn").config_text)["health"]
    assert default == f"127.0.0.1:{DEFAULT_HEALTH_PORT}" and named != default  # two services, two ports


@pytest.mark.runtime
def test_a_source_that_is_a_file_here_is_refused(tmp_path):
    from edgecnn.core.errors import UserError
    from edgecnn.deploy.release_files import prepare_release

    (tmp_path / "clips").mkdir()
    shutil.copy(ROOT / "tests" / "data" / "tree.avi", tmp_path / "clips" / "tree.avi")
    config = write_config(tmp_path, "cameras:\n  front: {source: clips/tree.avi}\n", model=None)
    with pytest.raises(UserError, match="sources are read on the device"):
        prepare_release(str(config), "edgecnn")


@pytest.mark.runtime
def test_the_device_side_modules_need_only_the_standard_library_of_python_3_9():
    import ast

    from edgecnn.deploy import device_probe
    from edgecnn.deploy.device_session import DEVICE_MODULES

    for short in DEVICE_MODULES + ("device_probe",):
        path = ROOT / "edgecnn" / "deploy" / f"{short}.py"
        tree = ast.parse(path.read_text(), str(path), feature_version=(3, 9) if short != "device_probe" else (3, 4))
        for node in ast.walk(tree):
            names = [a.name for a in node.names] if isinstance(node, ast.Import) else \
                [node.module] if isinstance(node, ast.ImportFrom) and node.level == 0 else []
            for name in names:
                top = name.split(".")[0]
                assert top in sys.stdlib_module_names or name.startswith("edgecnn.deploy") or top == "__future__", \
                    (short, name)
    assert "f'" not in Path(device_probe.__file__).read_text() and 'f"' not in Path(device_probe.__file__).read_text()


@pytest.mark.runtime
def test_layout_switches_current_by_renaming_a_link_and_prunes(tmp_path):
    from edgecnn.deploy.layout import COMPLETE, KEEP_RELEASES, Layout

    layout = Layout(str(tmp_path), "edgecnn")
    ids = [f"2026010{i}-000000-abcdef0{i}" for i in range(1, 6)]
    for index, release in enumerate(ids):
        os.makedirs(layout.release(release))
        os.makedirs(layout.venv(f"v{index}"))
        Path(layout.venv(f"v{index}"), COMPLETE).touch()
        layout.write_manifest(release, {"venv": f"v{index}", **({"healthy_at": 1.0} if index != 2 else {})})
        layout.switch_current(release)
        assert os.readlink(layout.current) == f"releases/{release}" and layout.current_release() == release
    assert not [name for name in os.listdir(tmp_path) if name.endswith(".tmp")]
    assert layout.previous_release(ids[4]) == ids[3] and layout.previous_release(ids[3]) == ids[1]  # ids[2] never ran
    layout.switch_current(ids[3])  # after a rollback: the newer release is the one pruned first
    removed = layout.prune()
    assert layout.release_ids() == [ids[0], ids[1], ids[3]][-KEEP_RELEASES:] and set(removed) == {ids[2], ids[4]}
    assert sorted(os.listdir(layout.venvs)) == ["v0", "v1", "v3", "v4"]  # kept releases' venvs and the newest


@pytest.mark.runtime
def test_a_venv_that_cannot_be_made_leaves_no_root_behind(tmp_path):
    import io

    from edgecnn.deploy import agent
    from edgecnn.deploy.layout import Layout
    from edgecnn.deploy.venv_setup import SetupError

    layout = Layout(str(tmp_path / "edgecnn"), "edgecnn")
    request = {"venv": "0.1.0-abc", "python": str(tmp_path / "no-python"), "requirements": ["edgecnn[runtime]"],
               "upload": False}
    with pytest.raises(SetupError, match="cannot run .*no-python"):
        agent.prepare(layout, request, io.BytesIO())
    assert not os.path.exists(layout.root)  # the first deploy's root, made for the venv, is gone again
    os.makedirs(layout.releases)
    with pytest.raises(SetupError):
        agent.prepare(layout, request, io.BytesIO())
    assert os.path.isdir(layout.releases)  # an earlier deploy's root stays


@pytest.mark.runtime
def test_health_wait_ends_at_once_on_a_crash_and_waits_for_200(tmp_path):
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
    import threading

    from edgecnn.deploy.health_wait import dropped_frames, wait_healthy

    answers = {"code": 503}

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self):  # noqa: N802
            if self.path == "/metrics":
                body = b'edgecnn_camera_dropped_frames_total{camera="front"} 12.0\n'
                self.send_response(200)
            else:
                body = json.dumps({"cameras": {"front": {"state": "reconnecting", "live": False}}}).encode()
                self.send_response(answers["code"])
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    url = f"http://127.0.0.1:{server.server_address[1]}/"
    try:
        active = lambda unit: {"ActiveState": "active", "SubState": "running", "NRestarts": "0"}  # noqa: E731
        healthy, why = wait_healthy("x", url, 0.6, state=active)
        assert not healthy and "front reconnecting" in why and "within 1 s" in why
        answers["code"] = 200
        assert wait_healthy("x", url, 5, state=active) == (True, "")
        started = time.monotonic()
        crashed = lambda unit: {"ActiveState": "activating", "SubState": "auto-restart", "NRestarts": "1",  # noqa
                                "ExecMainStatus": "1"}
        healthy, why = wait_healthy("x", url, 30, state=crashed)
        assert not healthy and "exited (exit status 1) and systemd restarted it" in why
        assert time.monotonic() - started < 5
        assert dropped_frames(url) == {"front": 12.0}
    finally:
        server.shutdown()
        server.server_close()


@pytest.mark.runtime
def test_the_status_table_has_a_row_per_camera_and_no_password():
    from edgecnn.deploy.status_table import status_table

    answer = {"host": "pi@cam", "unit": "edgecnn.service", "release": "20260101-000000-abcdef01", "active": "active",
              "sub": "running", "loaded": "loaded", "uptime_s": 3725, "restarts": "1",
              "health": {"code": 503, "body": {"cameras": {
                  "front": {"state": "live", "fps": 14.96}, "rear": {"state": "reconnecting", "fps": 0}}}},
              "dropped": {"front": 3.0}}
    error = {"host": "pi@other", "error": "cannot reach rtsp://admin:secret@cam: refused"}
    lines = status_table([answer, error]).splitlines()
    assert lines[0].split()[:4] == ["HOST", "UNIT", "RELEASE", "STATE"]
    assert "1h 2m 5s" in lines[1] and "front" in lines[1] and "15.0" in lines[1] and "/healthz 503" in lines[1]
    assert lines[2].split()[:3] == ["rear", "reconnecting", "0.0"] and "secret" not in "\n".join(lines)


# ---------------------------------------------------------------------------- bad input, before the device

def gate_failed_copy(directory):
    """The bundled int8 file with its card's budget cut below its measured drop (the card
    buffer is outside the digest: the weights still match)."""
    data = RUNTIME_INT8.read_bytes()
    assert data.count(b'"max_drop_points": 1.0') == 1
    path = directory / "over-budget.tflite"
    path.write_bytes(data.replace(b'"max_drop_points": 1.0', b'"max_drop_points": 0.1'))
    return path


@pytest.mark.runtime
def test_models_that_fail_their_gate_or_digest_are_refused_before_any_connection(tmp_path):
    """The host is a black-holed address: had deploy tried ssh first, the error would be
    'cannot reach' after the connect timeout instead."""
    from test_weights_integrity import flipped, largest_tflite_weights

    host = ["nobody@192.0.2.1", "--connect-timeout", "30"]
    config = write_config(tmp_path / "gate", "model: over-budget.tflite\ncameras:\n  c: {source: demo}\n", model=None)
    gate_failed_copy(tmp_path / "gate")
    flipped(RUNTIME_FP32, tmp_path / "flipped.tflite", largest_tflite_weights)
    foreign = ROOT / "tests" / "data" / "models" / "tf_ssd_uint8.tflite"  # no edgecnn card: no gate
    bad = write_config(tmp_path / "bad", "cameras:\n  c: {source: demo, fps: 3}\n", model=None)
    started = time.monotonic()
    gate, digest, ungated, invalid = run_cli_batch(
        ["deploy", *host, "--config", config], ["deploy", *host, "--model", tmp_path / "flipped.tflite"],
        ["deploy", *host, "--model", foreign], ["deploy", *host, "--config", bad])
    assert time.monotonic() - started < 30
    assert_one_line_error(gate, 3, "drop 0.22 over 0.10 points")
    assert_one_line_error(digest, 2, "weights do not match the digest")
    assert_one_line_error(ungated, 3, "--allow-ungated")
    assert_one_line_error(invalid, 2, "unknown key 'fps'")


@pytest.mark.runtime
def test_usage_errors_are_one_line(tmp_path):
    results = run_cli_batch(["deploy", "a@b", "--status", "--config", "x.yaml"],
                            ["deploy", "-oProxyCommand=x", "--status"],
                            ["deploy", "a@b;reboot", "--status"],
                            ["deploy", "a@b", "--status", "--name", "Shop Floor"],
                            ["deploy", "a@b", "--status", "--ssh-config", tmp_path / "none"],
                            ["deploy", "a@b", "--model", tmp_path / "none.tflite"],
                            ["deploy", "a@b", "--status", "-f"],
                            ["deploy", "a@b", "--source", "demo", "--wheel", tmp_path / "x.whl"],
                            ["deploy", "a@b", "--source", "demo", "--wheelhouse", tmp_path])
    for result, words in zip(results, ["act on what is deployed", "USER@HOST", "not a USER@HOST", "--name",
                                       "--ssh-config",
                                       "--model", "-f follows", "not an edgecnn wheel",
                                       "--wheelhouse goes with --wheel"]):
        assert_one_line_error(result, 2, words)


# ---------------------------------------------------------------------------- the device

class Device:
    """The namespaced systemd, its ssh_config, and the deploy command pointed at it."""

    def __init__(self, systemd, ssh_config, port, python, keys):
        self.systemd, self.ssh_config, self.port, self.python, self.keys = systemd, ssh_config, port, python, keys

    def deploy(self, *args, timeout=900):
        return run_cli("deploy", "dev", "--ssh-config", self.ssh_config, "--python", self.python, "--root",
                       DEVICE_ROOT, *args, timeout=timeout)

    def srv(self, *parts):
        return self.systemd.srv.joinpath(*parts)

    def exists(self, path):
        return self.systemd.enter("test", "-e", path).returncode == 0

    def untouched(self, root=DEVICE_ROOT, service="edgecnn"):
        """Nothing of a deploy there: no root, unit, state directory or user."""
        return not any(self.exists(path) for path in (root, f"/etc/systemd/system/{service}.service",
                                                      f"/var/lib/{service}")) \
            and self.systemd.enter("id", service).returncode != 0


@pytest.fixture(scope="module")
def device(tmp_path_factory):
    reason = usable()
    if reason is None and (SSHD is None or shutil.which("ssh") is None):
        reason = "needs the OpenSSH server and client (apt-get install -y openssh-server)"
    python = device_python()
    if reason is None and python is None:
        reason = "needs a Python 3.9+ with venv outside /root and /home (apt-get install -y python3-venv)"
    if reason is not None:
        pytest.skip(f"a namespaced systemd device {reason}")
    marker = Path(tempfile.gettempdir()) / f"edgecnn-deploy-host-marker-{uuid.uuid4().hex}"
    marker.write_text("the host's /tmp must keep this\n")
    ssh_device = start_ssh_device(tmp_path_factory.mktemp("device"))
    try:
        yield Device(ssh_device.systemd, ssh_device.ssh_config, ssh_device.port, python, ssh_device.keys)
    finally:
        ssh_device.stop()
        assert marker.read_text().startswith("the host's"), "the host's /tmp was touched"
        marker.unlink()
        assert not ssh_device.systemd.cgroup.exists()


def healthz(port):
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=5) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read())
    except OSError:
        return None, None


@pytest.mark.slow  # about 4-10 s: in CI, left out of the inner loop
@pytest.mark.runtime
def test_unfit_devices_are_one_line_and_left_as_they_were(device, tmp_path):
    """Each refused with one line and exit 2 before anything is written (its own service
    name and root, so that the other tests' services do not matter)."""
    config = write_config(tmp_path, "model: shapes_detector-int8.tflite\ncameras:\n  c: {source: demo}\n")
    unfit = ["deploy", "dev", "--name", "unfit", "--root", "/srv/unfit", "--config", config]
    # an old Python: the real interpreter answering the probe as a 3.8 does
    old = device.srv("old-python")
    old.write_text(f"#!/bin/sh\nshift\nexec {device.python} -c 'import sys; sys.version_info = (3, 8, 18, \"final\", "
                   f"0); exec(sys.argv.pop(1))' \"$@\"\n")
    # a machine without wheels: a 32-bit personality (setarch), as a 32-bit OS reports itself
    arch = device.srv("i686-python")
    arch.write_text(f"#!/bin/sh\nexec setarch i686 {device.python} \"$@\"\n")
    for wrapper in (old, arch):
        wrapper.chmod(0o755)
    # a full disk: a 4 MB tmpfs mounted inside the device's own mount namespace
    device.srv("small").mkdir()
    assert device.systemd.enter("mount", "-t", "tmpfs", "-o", "size=4m", "tmpfs", "/srv/small").returncode == 0
    # a key the device does not accept, and a port nobody listens on
    stranger = tmp_path / "stranger_key"
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(stranger)], check=True)
    config_text = device.ssh_config.read_text()
    wrong_key, closed = tmp_path / "ssh_config_wrong_key", tmp_path / "ssh_config_closed"
    wrong_key.write_text(config_text.replace(str(device.keys / "client_key"), str(stranger)))
    closed.write_text(config_text.replace(f"Port {device.port}", f"Port {free_port()}"))
    ssh = ["--ssh-config", device.ssh_config]
    cases = {"Python 3.8.18": unfit + ssh + ["--python", "/srv/old-python"],
             "i686 has no wheels": unfit + ssh + ["--python", "/srv/i686-python"],
             "MB free at /srv/small": unfit + ssh + ["--python", device.python, "--root", "/srv/small/edgecnn"],
             "no group 'no-such-group' there": unfit + ssh + ["--python", device.python, "--group", "no-such-group"],
             "cannot reach dev": unfit + ["--ssh-config", wrong_key],
             "cannot reach dev:": ["deploy", "dev", "--name", "unfit", "--ssh-config", closed, "--status"]}
    for words, result in zip(cases, run_cli_batch(*cases.values(), timeout=600)):
        assert_one_line_error(result, 2, words)
    assert device.systemd.enter("ls", "-A", "/srv/small").stdout == ""
    assert device.untouched("/srv/unfit", "edgecnn-unfit")


def wait_for(condition, seconds, what):
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(0.25)
    raise AssertionError(f"{what}: not within {seconds} s")


@pytest.mark.slow(80)  # before the next test: its venv is then there for it
def test_systemd_restarts_a_crash_and_a_hung_camera_and_sigterm_stops_it_cleanly(device, tmp_path):
    """Restart=on-failure and the watchdog, on the real systemd: a SIGSEGV is restarted;
    a camera that freezes without closing its stream (the reader's own timeout set to a
    minute) stops the results, so the watchdog (3 s) kills and restarts the run; --stop's
    SIGTERM ends it with exit 0. Deployed to two hosts at once, one of them unreachable:
    one table, the reachable one deployed."""
    from mjpeg_server import MjpegCamera, blank_frames

    from edgecnn.deploy.install_source import built_wheel

    wheel, _ = built_wheel(print)
    camera = MjpegCamera(blank_frames(), fps=10)
    port = free_port()
    config = write_config(tmp_path, f"model: shapes_detector-int8.tflite\nhealth: 127.0.0.1:{port}\ncameras:\n"
                          f"  door: {{source: '{camera.url}?timeout=60'}}\n")
    device.ssh_config.with_name("ssh_config_two").write_text(
        device.ssh_config.read_text() + f"Host closed\n  HostName 127.0.0.1\n  Port {free_port()}\n"
        f"  IdentityFile {device.keys / 'client_key'}\n  LogLevel ERROR\n")
    try:
        result = run_cli("deploy", "dev", "closed", "--ssh-config", device.ssh_config.with_name("ssh_config_two"),
                         "--python", device.python, "--root", DEVICE_ROOT, "--config", config, "--wheel", wheel,
                         "--watchdog-sec", "3", "--timeout", "90", timeout=900)
        rows = {line.split()[0]: line for line in result.stdout.splitlines()[-2:]}
        assert result.returncode == 2 and rows["dev"].split()[1] == "deployed", result.stdout + result.stderr
        assert "cannot reach closed" in rows["closed"]
        systemd = device.systemd
        assert healthz(port)[0] == 200

        pid = systemd.show("edgecnn.service", "MainPID")["MainPID"]
        assert systemd.enter("kill", "-SEGV", pid).returncode == 0
        wait_for(lambda: systemd.show("edgecnn.service", "NRestarts")["NRestarts"] == "1", 30, "restarted")
        wait_for(lambda: healthz(port)[0] == 200, 60, "healthy after the crash")

        camera.frozen.set()  # the connection stays open, no frame comes
        frozen_at = time.monotonic()
        wait_for(lambda: systemd.show("edgecnn.service", "NRestarts")["NRestarts"] == "2", 30, "watchdog restart")
        assert time.monotonic() - frozen_at < 3 + 5 + 5  # the watchdog, RestartSec, and slack
        camera.frozen.clear()
        wait_for(lambda: healthz(port)[0] == 200, 60, "healthy after the watchdog")
        logs = device.deploy("--logs", "--lines", "200")
        assert logs.returncode == 0 and "Watchdog timeout" in logs.stdout, logs.stdout

        result = device.deploy("--stop")
        assert result.returncode == 0 and "stopped" in result.stdout, result.stdout + result.stderr
        state = systemd.show("edgecnn.service", "ActiveState", "Result", "ExecMainStatus", "UnitFileState")
        assert state == {"ActiveState": "inactive", "Result": "success", "ExecMainStatus": "0",
                         "UnitFileState": "disabled"}
        assert "stopping on SIGTERM" in device.deploy("--logs", "--lines", "30").stdout
    finally:
        camera.stop()


@pytest.mark.slow(75)
def test_deploy_status_rollback_on_a_broken_config_and_remove(device, tmp_path):
    """The whole life of a service on a real systemd: the first deploy (a venv made from
    a wheel of this checkout), its /healthz, --status, a config that cannot work rolled
    back by itself while the first release keeps serving, an update of the model,
    --rollback, and --remove leaving the device as before."""
    from edgecnn.deploy.install_source import built_wheel

    wheel, _ = built_wheel(print)  # one build for the whole test, whatever changes in the checkout meanwhile
    port = free_port()
    first = write_config(tmp_path / "first", f"model: shapes_detector-int8.tflite\nhealth: 127.0.0.1:{port}\n"
                         "cameras:\n  front: {source: 'demo?fps=10', json: front.jsonl}\n")
    result = device.deploy("--config", first, "--wheel", wheel, "--timeout", "90")
    assert result.returncode == 0, result.stdout + result.stderr
    row = result.stdout.strip().splitlines()[-1].split()
    assert row[:2] == ["dev", "deployed"]
    release = row[2]
    code, body = healthz(port)
    assert code == 200 and body["cameras"]["front"]["live"]
    assert json.loads(device.srv("edgecnn", "current", "release.json").read_text())["release"] == release
    state = device.systemd.show("edgecnn.service", "User", "ActiveState", "NRestarts")
    assert state == {"User": "edgecnn", "ActiveState": "active", "NRestarts": "0"}  # whatever ran there before
    assert device.systemd.enter("test", "-s", "/var/lib/edgecnn/front.jsonl").returncode == 0  # outputs written

    status = device.deploy("--status")
    assert status.returncode == 0, status.stderr
    line = status.stdout.splitlines()[1].split()
    assert line[:4] == ["dev", "edgecnn.service", release, "active/running"] and "front" in line and "live" in line

    # a config that passes every check but cannot run there: its health port is taken
    # (the device's sshd), so the service exits 2 at start
    broken = write_config(tmp_path / "broken", f"model: shapes_detector-int8.tflite\n"
                          f"health: 127.0.0.1:{device.port}\ncameras:\n  front: {{source: demo}}\n")
    started = time.monotonic()
    result = device.deploy("--config", broken, "--wheel", wheel, "--timeout", "60")
    assert result.returncode == 1, result.stdout + result.stderr
    assert "rolled back" in result.stdout and release in result.stdout and "exit status 2" in result.stdout
    assert "Address already in use" in result.stdout  # the service's last log lines
    assert time.monotonic() - started < 40
    assert healthz(port)[0] == 200 and os.readlink(device.srv("edgecnn", "current")) == f"releases/{release}"

    # a source file the device does not have: its own edgecnn refuses the config before anything stops
    absent = write_config(tmp_path / "absent", f"model: shapes_detector-int8.tflite\nhealth: 127.0.0.1:{port}\n"
                          "cameras:\n  front: {source: /srv/absent/clip.mp4}\n")
    result = device.deploy("--config", absent, "--wheel", wheel, "--timeout", "60")
    assert_one_line_error(result, 2, "the device's edgecnn refuses the config")
    assert "/srv/absent/clip.mp4: no such file" in result.stderr
    assert healthz(port)[0] == 200 and os.readlink(device.srv("edgecnn", "current")) == f"releases/{release}"

    # an update that changes only the model: the venv is there, nothing is installed
    second = write_config(tmp_path / "second", f"model: shapes_detector.tflite\nhealth: 127.0.0.1:{port}\n"
                          "cameras:\n  front: {source: 'demo?fps=10', json: front.jsonl}\n", model=RUNTIME_FP32)
    result = device.deploy("--config", second, "--wheel", wheel, "--timeout", "60")
    assert result.returncode == 0 and "installing" not in result.stdout, result.stdout + result.stderr
    update = result.stdout.strip().splitlines()[-1].split()[2]
    assert update != release and healthz(port)[0] == 200
    assert "shapes_detector.tflite" in device.srv("edgecnn", "current", "config.yaml").read_text()

    result = device.deploy("--rollback", "--timeout", "60")
    assert result.returncode == 0 and f"from {update}" in result.stdout, result.stdout + result.stderr
    assert os.readlink(device.srv("edgecnn", "current")) == f"releases/{release}" and healthz(port)[0] == 200

    result = device.deploy("--remove")
    assert result.returncode == 0 and "removed" in result.stdout, result.stdout + result.stderr
    assert device.untouched() and healthz(port) == (None, None)
    assert "not-found" in device.systemd.show("edgecnn.service", "LoadState")["LoadState"]
