"""Telling a service manager how the run is going: systemd's notification protocol
(sd_notify), written with the standard library so that the device needs no libsystemd
binding.

    READY=1      once the first frame has gone through a model: `systemctl start`, a
                 boot and `edgecnn deploy` wait for a run that works, not for a
                 process that merely started (Type=notify)
    WATCHDOG=1   every half of $WATCHDOG_USEC, and only when results came since the
                 last one: a camera or a backend that hangs without exiting stops the
                 petting, so systemd kills the process and Restart=on-failure starts
                 it again (WatchdogSec=)
    STATUS=...   frames and live cameras, what `systemctl status` shows
    STOPPING=1   when the run begins to stop (a SIGTERM from `systemctl stop`)

Several cameras: any result counts as progress. One camera that freezes while others
deliver is reported by /healthz (503) and reopened by its own reader after its
timeout; restarting the process would interrupt the cameras that work.

Each message is one datagram to the AF_UNIX socket $NOTIFY_SOCKET names (a path, or
'@name' in the abstract namespace). Outside systemd ($NOTIFY_SOCKET unset) every call
returns at once.
"""
from __future__ import annotations

import os
import socket
import threading
import time
from typing import Any, Mapping, Optional

STATUS_SECONDS = 5.0  # how often STATUS= is refreshed where no watchdog sets a faster pace


def socket_address(value: str) -> str:
    """$NOTIFY_SOCKET as an address for socket.sendto: '@name' is the abstract namespace."""
    return "\0" + value[1:] if value.startswith("@") else value


class ServiceNotifier:
    """One run's notifications. `round(stats)` is called once per round of the run's
    loop that produced results (cheap: a clock read unless a message is due)."""

    def __init__(self, address: Optional[str], watchdog_seconds: Optional[float] = None) -> None:
        self.address = address
        self.watchdog_seconds = watchdog_seconds
        # the watchdog is petted at half its period, as sd_watchdog_enabled(3) advises
        self.interval = watchdog_seconds / 2 if watchdog_seconds else STATUS_SECONDS
        self.ready = False
        self.sent_stopping = False
        self._socket: Optional[socket.socket] = None
        self._frames_at_last_pet = 0
        self._next_due = 0.0

    @classmethod
    def from_environment(cls, environ: Mapping[str, str] = os.environ) -> "ServiceNotifier":
        """Enabled under a service manager, for a run on the main thread only: a run on
        another thread (model.stream([...]), a program's own thread) is one part of a
        program that says for itself when it is ready."""
        if threading.current_thread() is not threading.main_thread():
            return cls(None)
        address = environ.get("NOTIFY_SOCKET") or None
        watchdog = None
        usec = environ.get("WATCHDOG_USEC", "")
        pid = environ.get("WATCHDOG_PID", "")
        if usec.isdigit() and int(usec) > 0 and (not pid or pid == str(os.getpid())):
            watchdog = int(usec) / 1e6
        return cls(address, watchdog)

    @property
    def enabled(self) -> bool:
        return self.address is not None

    def send(self, *fields: str) -> bool:
        """Send one message of NAME=VALUE lines; False when nobody listens (the manager
        went away, or this process was started by hand with a stale variable)."""
        if self.address is None:
            return False
        message = "\n".join(fields).encode("utf-8", errors="replace")
        try:
            if self._socket is None:
                self._socket = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | getattr(socket, "SOCK_CLOEXEC", 0))
            self._socket.sendto(message, socket_address(self.address))
            return True
        except OSError:
            return False

    def round(self, stats: Any) -> None:
        """After a round of the run's loop: READY after the first result, then WATCHDOG
        and STATUS when due, WATCHDOG only if results came since the last one."""
        if self.address is None:
            return
        frames = stats.frames
        now = time.monotonic()
        if not self.ready:
            if frames <= 0:
                return
            self.ready = True
            self._frames_at_last_pet, self._next_due = frames, now + self.interval
            self.send("READY=1", self.status_line(stats), *(("WATCHDOG=1",) if self.watchdog_seconds else ()))
            return
        if now < self._next_due:
            return
        self._next_due = now + self.interval
        progressed = frames > self._frames_at_last_pet
        self._frames_at_last_pet = frames
        fields = [self.status_line(stats)]
        if progressed and self.watchdog_seconds:
            fields.append("WATCHDOG=1")
        self.send(*fields)

    def stopping(self) -> None:
        """The run is stopping: systemd then expects the exit, not a hang."""
        if self.address is not None and not self.sent_stopping:
            self.sent_stopping = True
            self.send("STOPPING=1", "STATUS=stopping")
        self.close()

    def close(self) -> None:
        if self._socket is not None:
            self._socket.close()
            self._socket = None

    @staticmethod
    def status_line(stats: Any) -> str:
        cameras = getattr(stats, "cameras", None) or {}
        states = [getattr(camera, "state", "live") for camera in cameras.values()]
        live = sum(1 for state in states if state == "live")
        return f"STATUS={stats.frames} frames, {live} of {len(states)} cameras live"
