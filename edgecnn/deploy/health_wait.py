"""Whether a started release works: the unit became active (the runtime sends READY=1
only once a frame has gone through the model) and its /healthz answers 200 (every
camera live). A crash, a restart by systemd or a failed unit ends the wait at once with
the reason; otherwise it ends at the timeout, with what /healthz last said.

Also reads /metrics for the status table (the frames each camera dropped).

Runs on the device, sent over ssh: standard library only, Python 3.9.
"""
from __future__ import annotations

import json
import time
import urllib.error
import urllib.request
from typing import Callable, Dict, Optional, Tuple

from edgecnn.deploy.systemd_control import show

POLL_SECONDS = 0.25
REQUEST_SECONDS = 2.0


def fetch(url: str, timeout: float = REQUEST_SECONDS) -> Tuple[Optional[int], str]:
    """(HTTP status, body); (None, why) when nothing answers."""
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:  # noqa: S310 (a loopback URL we made)
            return response.status, response.read().decode("utf-8", errors="replace")
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode("utf-8", errors="replace")
    except (urllib.error.URLError, OSError) as exc:
        return None, str(getattr(exc, "reason", exc))


def health(base_url: str) -> Dict:
    """/healthz as the status table shows it: code and the per-camera body."""
    code, body = fetch(base_url + "healthz")
    try:
        parsed = json.loads(body) if code is not None else None
    except ValueError:
        parsed = None
    return {"code": code, "body": parsed if isinstance(parsed, dict) else None,
            "error": None if code is not None else body}


def dropped_frames(base_url: str) -> Dict[str, float]:
    """edgecnn_camera_dropped_frames_total per camera, from /metrics."""
    code, body = fetch(base_url + "metrics")
    dropped: Dict[str, float] = {}
    if code != 200:
        return dropped
    for line in body.splitlines():
        if line.startswith("edgecnn_camera_dropped_frames_total{"):
            labels, _, value = line.rpartition(" ")
            camera = labels.split('camera="', 1)[-1].split('"', 1)[0]
            try:
                dropped[camera] = float(value)
            except ValueError:
                continue
    return dropped


def _why_unhealthy(body: str) -> str:
    try:
        cameras = json.loads(body).get("cameras", {})
    except (ValueError, AttributeError):
        return body.strip()[:200]
    down = [f"{name} {camera.get('state')}" + (" (stalled)" if camera.get("stalled") else "")
            for name, camera in cameras.items() if not camera.get("live")]
    return "cameras not live: " + ", ".join(down) if down else "no camera"


def wait_healthy(unit: str, base_url: str, timeout: float,
                 state: Callable[[str], Dict[str, str]] = show) -> Tuple[bool, str]:
    """(healthy, why not), for a unit just started (after a stop, so that nothing of
    the previous process answers). `base_url` is the health server's root."""
    deadline = time.monotonic() + timeout
    why, started = "systemd did not start it", False
    while True:
        now = state(unit)
        active, restarts = now.get("ActiveState", ""), now.get("NRestarts", "0")
        status = f"exit status {now.get('ExecMainStatus', '?')}"
        started = started or active in ("activating", "active", "reloading", "deactivating")
        if active == "failed":
            return False, f"the service failed ({now.get('Result', 'failed')}, {status})"
        if now.get("SubState") == "auto-restart" or (restarts.isdigit() and int(restarts) > 0):
            return False, f"the service exited ({status}) and systemd restarted it"
        if started and active == "inactive":
            return False, f"the service ended by itself ({status}): a source that ran out?"
        if active == "active":
            code, body = fetch(base_url + "healthz")
            if code == 200:
                return True, ""
            why = f"/healthz answered {code}: {_why_unhealthy(body)}" if code else f"/healthz did not answer: {body}"
        elif active == "activating":
            why = "no frame went through the model yet (no READY=1)"
        if time.monotonic() >= deadline:
            return False, f"not healthy within {timeout:.0f} s: {why}"
        time.sleep(POLL_SECONDS)
