"""The service manager as the device's deploy steps use it: systemctl and journalctl,
read in their machine forms (`show` properties, message-only journal lines).

Runs on the device, sent over ssh: standard library only, Python 3.9.
"""
from __future__ import annotations

import subprocess
import time
from typing import Dict, List, Optional

SYSTEMCTL_SECONDS = 90  # a stop waits for the run's drain (TimeoutStopSec) before it returns
STATE_PROPERTIES = ("ActiveState", "SubState", "Result", "NRestarts", "ExecMainStatus", "ExecMainCode",
                    "MainPID", "StatusText", "ActiveEnterTimestamp", "ActiveEnterTimestampMonotonic",
                    "UnitFileState", "LoadState")


class ServiceError(Exception):
    """systemctl refused: the message is its own last line."""


def systemctl(*args: str, check: bool = True, timeout: float = SYSTEMCTL_SECONDS) -> subprocess.CompletedProcess:
    try:
        result = subprocess.run(["systemctl", "--no-pager", "--no-ask-password", *args], stdin=subprocess.DEVNULL,
                                capture_output=True, text=True, timeout=timeout)
    except FileNotFoundError:
        raise ServiceError("systemctl is not installed: the device needs systemd") from None
    except subprocess.TimeoutExpired:
        raise ServiceError(f"systemctl {' '.join(args)} did not return within {timeout:.0f} s") from None
    if check and result.returncode != 0:
        lines = [line for line in (result.stderr or result.stdout).splitlines() if line.strip()]
        raise ServiceError(f"systemctl {' '.join(args)}: {lines[-1] if lines else f'exit {result.returncode}'}")
    return result


def show(unit: str, properties=STATE_PROPERTIES) -> Dict[str, str]:
    result = systemctl("show", unit, *[f"--property={name}" for name in properties], check=False)
    return dict(line.split("=", 1) for line in result.stdout.splitlines() if "=" in line)


def uptime_seconds(state: Dict[str, str]) -> Optional[float]:
    """Seconds since the unit last became active (READY=1), from the monotonic stamp."""
    stamp = state.get("ActiveEnterTimestampMonotonic", "0")
    if state.get("ActiveState") != "active" or not stamp.isdigit() or int(stamp) == 0:
        return None
    return max(0.0, time.clock_gettime(time.CLOCK_MONOTONIC) - int(stamp) / 1e6)


def daemon_reload() -> None:
    systemctl("daemon-reload")


def restart(unit: str) -> float:
    """Stop (waiting for the run to drain and exit, so nothing of it answers any more),
    then queue the start and return the time between the two: the deploy watches the
    start itself, and reads the journal from then on."""
    systemctl("stop", unit)
    systemctl("reset-failed", unit, check=False)
    started = time.time()
    systemctl("start", "--no-block", unit)
    return started


def enable(unit: str) -> None:
    systemctl("enable", unit)


def stop_and_disable(unit: str) -> None:
    systemctl("disable", "--now", unit, check=False)
    systemctl("reset-failed", unit, check=False)


def journal_tail(unit: str, lines: int = 12, since: Optional[float] = None) -> List[str]:
    """The unit's last messages (since a wall-clock time, when given)."""
    argv = ["journalctl", "--no-pager", "--quiet", "-o", "cat", "-n", str(lines), "-u", unit]
    if since is not None:
        argv += [f"--since=@{since:.6f}"]
    try:
        result = subprocess.run(argv, stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=30)
    except (FileNotFoundError, subprocess.TimeoutExpired):
        return []
    return [line for line in result.stdout.splitlines() if line.strip()][-lines:]
