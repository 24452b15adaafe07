"""`edgecnn deploy` and what it relies on: the runtime's systemd notifications (against
a NOTIFY_SOCKET listener of the test's own)."""
import os
import signal
import socket
import subprocess
import sys
import time
import uuid

import pytest

from conftest import ROOT

from edgecnn.runtime.service_notify import ServiceNotifier, socket_address


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
    assert not ServiceNotifier("/nonexistent/notify").send("READY=1")  # nobody listening: no error


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
