"""The deploy's steps on the device, one request each (a JSON object; the release's
files or the wheel follow it as a tar on stdin), one JSON answer on stdout:

    prepare    the venv for the release (edgecnn.deploy.venv_setup)
    activate   stage the release (its config checked by the device's edgecnn where it
               names the device's own files), install its unit, point `current` at it,
               restart, wait until healthy; roll back to the previous release (or stop,
               on a first deploy) when it is not
    rollback   back to the previous healthy release
    status     release, unit state, uptime, restarts, /healthz and dropped frames
    stop       stop the service and keep it from starting at boot
    remove     the service, its user, releases, venvs, outputs and cache: the device as
               it was before the first deploy

Runs on the device as root, sent over ssh with the modules it imports: standard
library only, Python 3.9.
"""
from __future__ import annotations

import grp
import json
import os
import pwd
import shutil
import subprocess
import sys
import tarfile
import time
from typing import IO, Dict, List, Optional, Tuple

from edgecnn.deploy import systemd_control as systemd
from edgecnn.deploy.health_wait import dropped_frames, health, wait_healthy
from edgecnn.deploy.layout import Layout, write_atomically
from edgecnn.deploy.venv_setup import SetupError, make_venv

UNIT_FILE = "unit.service"  # each release carries its unit: a rollback reinstalls the old one
CHECK_SECONDS = 300  # `edgecnn run --check` imports the runtime: long on a small board
LOG_LINES = 12
UPLOADED = "{upload}"  # in a requirement: where this step unpacked the upload (a wheel)


class DeployError(Exception):
    """A step that cannot go on: one line for the desktop's table."""


def _extract(upload: IO[bytes], destination: str) -> None:
    with tarfile.open(fileobj=upload, mode="r|") as archive:
        for member in archive:
            name = os.path.normpath(member.name)
            if name.startswith(("/", "..")) or not (member.isfile() or member.isdir()):
                raise DeployError(f"refused an upload member: {member.name!r}")
            archive.extract(member, destination, **({"filter": "data"} if hasattr(tarfile, "data_filter") else {}))


def _ensure_root(layout: Layout) -> None:
    for directory in (layout.root, layout.releases, layout.venvs):
        os.makedirs(directory, mode=0o755, exist_ok=True)
        os.chmod(directory, 0o755)


def _ensure_user(layout: Layout, user: str) -> None:
    """The service's own system user (and group), made once; remembered when made here,
    so that --remove deletes only what a deploy created."""
    try:
        pwd.getpwnam(user)
        return
    except KeyError:
        pass
    shell = "/usr/sbin/nologin" if os.path.exists("/usr/sbin/nologin") else "/bin/false"
    try:
        made = subprocess.run(["useradd", "--system", "--user-group", "--no-create-home", "--home-dir",
                               "/nonexistent", "--shell", shell, "--comment", "edgecnn deploy", user],
                              stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=60)
    except FileNotFoundError:
        raise DeployError("useradd is not installed: it makes the service's user") from None
    if made.returncode != 0:
        raise DeployError(f"useradd {user}: {made.stderr.strip() or made.returncode}")
    write_atomically(layout.record, json.dumps({"created_user": user}) + "\n")


def _stage(layout: Layout, request: Dict, upload: IO[bytes]) -> str:
    """The uploaded release under a temporary name, completed, then renamed into place."""
    release_id, number = request["release"], 1
    while os.path.exists(layout.release(release_id)):  # the same content again within a second
        number += 1
        release_id = f"{request['release']}-{number}"
    staging = os.path.join(layout.releases, f".staging-{release_id}-{os.getpid()}")
    shutil.rmtree(staging, ignore_errors=True)
    os.makedirs(staging, mode=0o755)
    try:
        _extract(upload, staging)
        for directory, _, files in os.walk(staging):
            os.chown(directory, 0, 0)
            os.chmod(directory, 0o755)
            for name in files:
                os.chown(os.path.join(directory, name), 0, 0)
                os.chmod(os.path.join(directory, name), 0o644)
        config = os.path.join(staging, "config.yaml")
        os.chown(config, 0, grp.getgrnam(request["user"]).gr_gid)
        os.chmod(config, 0o640)  # a publish URI may hold a password: the service's group and root only
        write_atomically(os.path.join(staging, UNIT_FILE), request["unit"])
        os.symlink(os.path.join("..", "..", "venvs", request["venv"]), os.path.join(staging, "venv"))
        manifest = {"release": release_id, "created_at": time.time(), "venv": request["venv"],
                    "health_url": request["health_url"], "edgecnn": request.get("edgecnn"),
                    "files": request.get("files", []), "from": request.get("from")}
        write_atomically(os.path.join(staging, "release.json"), json.dumps(manifest, indent=1) + "\n")
        os.rename(staging, layout.release(release_id))
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return release_id


def _check_config(layout: Layout, release_id: str) -> None:
    """The device's own edgecnn reads the config as the service will (`run --check`)."""
    release = layout.release(release_id)
    checked = subprocess.run([os.path.join(release, "venv", "bin", "python"), "-m", "edgecnn", "run", "--config",
                              os.path.join(release, "config.yaml"), "--check"], stdin=subprocess.DEVNULL,
                             capture_output=True, text=True, timeout=CHECK_SECONDS)
    if checked.returncode != 0:
        lines = [line for line in checked.stderr.splitlines() if line.strip()]
        reason = lines[-1].split("error: ", 1)[-1] if lines else f"exit {checked.returncode}"
        raise DeployError(f"the device's edgecnn refuses the config: {reason}")


def _install_unit(layout: Layout, release_id: str) -> None:
    with open(os.path.join(layout.release(release_id), UNIT_FILE), encoding="utf-8") as handle:
        text = handle.read()
    try:
        with open(layout.unit_path, encoding="utf-8") as handle:
            unchanged = handle.read() == text
    except OSError:
        unchanged = False
    if not unchanged:
        write_atomically(layout.unit_path, text)
        systemd.daemon_reload()
    systemd.enable(layout.unit_name)


def _start(layout: Layout, release_id: str, timeout: float, timings: Dict[str, float]) -> Tuple[bool, str, List[str]]:
    """Make `release_id` the one that runs: its unit, `current`, a restart; (healthy,
    why not, its last log lines when not). `timings` gets the seconds each part took."""
    began = time.monotonic()
    _install_unit(layout, release_id)
    layout.switch_current(release_id)
    stopping = time.monotonic()
    started = systemd.restart(layout.unit_name)
    starting = time.monotonic()
    healthy, why = wait_healthy(layout.unit_name, layout.manifest(release_id)["health_url"], timeout)
    timings.update(unit_s=round(stopping - began, 2), stop_s=round(starting - stopping, 2),
                   start_to_healthy_s=round(time.monotonic() - starting, 2))
    return healthy, why, [] if healthy else systemd.journal_tail(layout.unit_name, LOG_LINES, since=started)


def _mark_healthy(layout: Layout, release_id: str) -> None:
    manifest = layout.manifest(release_id)
    manifest["healthy_at"] = time.time()
    layout.write_manifest(release_id, manifest)


def prepare(layout: Layout, request: Dict, upload: IO[bytes]) -> Dict:
    if layout.venv_complete(request["venv"]):
        return {"venv": request["venv"], "made": False}
    first = not os.path.exists(layout.root)
    try:
        return _prepare(layout, request, upload)
    except BaseException:
        if first:  # a device where nothing was deployed stays so
            shutil.rmtree(layout.root, ignore_errors=True)
        raise


def _prepare(layout: Layout, request: Dict, upload: IO[bytes]) -> Dict:
    _ensure_root(layout)
    upload_dir = None
    if request.get("upload"):
        upload_dir = os.path.join(layout.root, f".upload-{os.getpid()}")
        shutil.rmtree(upload_dir, ignore_errors=True)
        os.makedirs(upload_dir, mode=0o755)
    try:
        if upload_dir:
            _extract(upload, upload_dir)
        requirements = [r.replace(UPLOADED, upload_dir or "") for r in request["requirements"]]
        wheelhouse = os.path.join(upload_dir, "wheelhouse") if upload_dir and request.get("wheelhouse") else None
        return make_venv(layout, request["venv"], request["python"], requirements, wheelhouse,
                         bool(request.get("no_index")), bool(request.get("system_site_packages")))
    finally:
        if upload_dir:
            shutil.rmtree(upload_dir, ignore_errors=True)


def activate(layout: Layout, request: Dict, upload: IO[bytes]) -> Dict:
    began = time.time()
    _ensure_root(layout)
    if not layout.venv_complete(request["venv"]):
        raise DeployError(f"no venv {request['venv']} on the device (the prepare step did not finish)")
    _ensure_user(layout, request["user"])
    release_id = _stage(layout, request, upload)
    if request.get("check_on_device"):  # files only the device has: checked before anything stops
        try:
            _check_config(layout, release_id)
        except DeployError:
            layout.remove_release(release_id)
            raise
    previous = layout.current_release()
    timings = {"stage_s": round(time.time() - began, 2)}  # with the device's check, where it runs
    healthy, why, logs = _start(layout, release_id, float(request["timeout"]), timings)
    if healthy:
        _mark_healthy(layout, release_id)
        removed = layout.prune()
        return {"status": "deployed", "release": release_id, "previous": previous, "pruned": removed,
                "device_s": round(time.time() - began, 2), "timings": timings}
    if previous is not None:
        back, back_why, _ = _start(layout, previous, float(request["timeout"]), {})
        layout.remove_release(release_id)
        return {"status": "rolled back", "release": previous, "failed_release": release_id, "reason": why,
                "logs": logs, "rollback_healthy": back, "rollback_reason": back_why,
                "device_s": round(time.time() - began, 2), "timings": timings}
    systemd.stop_and_disable(layout.unit_name)
    _remove_unit(layout)
    if os.path.lexists(layout.current):
        os.unlink(layout.current)
    layout.remove_release(release_id)
    return {"status": "failed", "reason": why, "logs": logs, "device_s": round(time.time() - began, 2),
            "timings": timings}


def rollback(layout: Layout, request: Dict, upload: IO[bytes]) -> Dict:
    began = time.time()
    current = layout.current_release()
    if current is None:
        raise DeployError(f"nothing deployed as {layout.unit_name}")
    target = layout.previous_release(current)
    if target is None:
        raise DeployError(f"no earlier healthy release than {current} to roll back to")
    timings: Dict[str, float] = {}
    healthy, why, logs = _start(layout, target, float(request["timeout"]), timings)
    answer = {"status": "rolled back" if healthy else "unhealthy", "release": target, "from": current,
              "device_s": round(time.time() - began, 2), "timings": timings}
    if not healthy:
        answer.update(reason=why, logs=logs)
    return answer


def status(layout: Layout, request: Dict, upload: IO[bytes]) -> Dict:
    current = layout.current_release()
    state = systemd.show(layout.unit_name)
    answer: Dict = {"release": current, "releases": layout.release_ids(), "unit": layout.unit_name,
                    "active": state.get("ActiveState"), "sub": state.get("SubState"),
                    "restarts": state.get("NRestarts"), "uptime_s": systemd.uptime_seconds(state),
                    "status_text": state.get("StatusText") or None, "loaded": state.get("LoadState")}
    if current is not None:
        manifest = layout.manifest(current)
        answer.update(deployed_at=manifest.get("healthy_at") or manifest.get("created_at"),
                      edgecnn=manifest.get("edgecnn"))
        if state.get("ActiveState") == "active":
            answer["health"] = health(manifest["health_url"])
            answer["dropped"] = dropped_frames(manifest["health_url"])
    return answer


def stop(layout: Layout, request: Dict, upload: IO[bytes]) -> Dict:
    systemd.stop_and_disable(layout.unit_name)
    return {"status": "stopped", "release": layout.current_release()}


def _remove_unit(layout: Layout) -> None:
    if os.path.exists(layout.unit_path):
        os.unlink(layout.unit_path)
    systemd.daemon_reload()


def remove(layout: Layout, request: Dict, upload: IO[bytes]) -> Dict:
    removed = []
    if os.path.exists(layout.unit_path):
        systemd.stop_and_disable(layout.unit_name)
        _remove_unit(layout)
        removed.append(layout.unit_path)
    created_user: Optional[str] = None
    try:
        with open(layout.record, encoding="utf-8") as handle:
            created_user = json.load(handle).get("created_user")
    except (OSError, ValueError):
        pass
    for path in (layout.root, layout.state_dir, layout.cache_dir, os.path.join("/var/lib/private", layout.service),
                 os.path.join("/var/cache/private", layout.service)):
        if os.path.lexists(path):
            shutil.rmtree(path, ignore_errors=True)
            removed.append(path)
    if created_user:
        subprocess.run(["userdel", created_user], stdin=subprocess.DEVNULL, capture_output=True, timeout=60)
        try:
            grp.getgrnam(created_user)
            subprocess.run(["groupdel", created_user], stdin=subprocess.DEVNULL, capture_output=True, timeout=60)
        except KeyError:
            pass
        removed.append(f"user {created_user}")
    return {"status": "removed" if removed else "nothing to remove", "removed": removed}


ACTIONS = {"prepare": prepare, "activate": activate, "rollback": rollback, "status": status, "stop": stop,
           "remove": remove}


def main(request: Dict, upload: IO[bytes]) -> int:
    """Answer one request on stdout. Expected failures are {"error": ...}; anything else
    is a traceback on stderr and exit 1."""
    os.umask(0o022)  # the service's user reads the venv and the release
    layout = Layout(request["root"], request["service"])
    try:
        answer = ACTIONS[request["action"]](layout, request, upload)
    except (DeployError, SetupError, systemd.ServiceError) as exc:
        answer = {"error": str(exc)}
    sys.stdout.write(json.dumps(answer) + "\n")
    sys.stdout.flush()
    return 0
