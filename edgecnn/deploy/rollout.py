"""A deploy from the desktop, to one device or several in parallel.

Everything that can be checked here is checked before any device is touched: the
config (the desktop's edgecnn validates it), the models (gate and digest), the ssh
arguments, the wheel. Then on each device:

    probe      Python 3.9+, a machine with wheels, systemd, root or sudo, free disk
    prepare    the venv, unless one for the same build, extras and Python is there
    activate   the release copied, checked by the device's edgecnn, its unit installed,
               `current` switched, the service restarted and healthy; else rolled back

A device that fails a check is left as it was. The other actions (status, rollback,
stop, remove) are one step each after the probe.
"""
from __future__ import annotations

import os
import re
import shutil
import socket
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Callable, Dict, List, Optional

from edgecnn.core.errors import GateRefused, UserError

MIN_PYTHON = (3, 9)  # pyproject's requires-python
MACHINES = ("x86_64", "aarch64")  # where onnxruntime and ai-edge-litert publish Linux wheels
# a new venv of edgecnn[runtime] measured 552 MB on x86_64 (numpy, OpenCV, onnxruntime,
# LiteRT); with pip's cache and unpacking room
VENV_BYTES = 900 * 1024 * 1024
NAME = re.compile(r"^[a-z0-9][a-z0-9-]{0,23}$")  # becomes a user name: edgecnn-NAME, at most 32 characters
HOST = re.compile(r"^[A-Za-z0-9_.@%:\[\]-]+$")


@dataclass
class DeployOptions:
    name: str = "edgecnn"
    root: Optional[str] = None  # default /opt/SERVICE
    python: str = "python3"
    ssh_config: Optional[str] = None
    connect_timeout: float = 10.0
    wheel: Optional[str] = None  # None: the package index; "": built here; else a wheel file
    wheelhouse: Optional[str] = None
    system_site_packages: bool = False
    timeout: float = 120.0  # for the new release to become healthy
    watchdog_seconds: int = 30
    start_seconds: int = 120
    health_port: Optional[int] = None  # None: release_files.default_health_port
    groups: List[str] = field(default_factory=list)
    allow_ungated: bool = False

    @property
    def service(self) -> str:
        from edgecnn.deploy.layout import service_name

        return service_name(self.name)

    @property
    def device_root(self) -> str:
        return self.root or f"/opt/{self.service}"


def check_options(options: DeployOptions) -> None:
    if options.name != "edgecnn" and not NAME.match(options.name):
        raise UserError(f"--name: lower-case letters, digits and '-', at most 24 characters, got {options.name!r}")
    if not options.device_root.startswith("/") or any(c.isspace() for c in options.device_root):
        raise UserError(f"--root: an absolute path on the device without blanks, got {options.device_root!r}")
    if options.ssh_config is not None and not os.path.isfile(options.ssh_config):
        raise UserError(f"--ssh-config: no such file: {options.ssh_config}")
    if shutil.which("ssh") is None:
        raise UserError("deploy needs the `ssh` command (OpenSSH client), which is not installed")
    for number, flag in ((options.timeout, "--timeout"), (options.watchdog_seconds, "--watchdog-sec"),
                         (options.start_seconds, "--start-timeout")):
        if not number > 0:
            raise UserError(f"{flag} must be > 0, got {number}")


def target_for(host: str, options: DeployOptions):
    from edgecnn.bench.remote import SshTarget

    if not host or host.startswith("-") or not HOST.match(host):
        raise UserError(f"not a USER@HOST: {host!r}")
    return SshTarget(host, options.ssh_config, options.connect_timeout)


def session_for(host: str, options: DeployOptions):
    from edgecnn.deploy.device_session import DeviceSession

    return DeviceSession(target_for(host, options), options.python, options.device_root, options.service)


def check_device(host: str, facts, need_bytes: int, new_venv: bool, groups: List[str] = ()) -> None:
    """One line for what makes this device unfit, before anything is written to it."""
    version = ".".join(map(str, facts.python))
    if tuple(facts.python[:2]) < MIN_PYTHON:
        raise UserError(f"{host}: Python {version} ({facts.executable}) is older than "
                        f"{'.'.join(map(str, MIN_PYTHON))}, the oldest edgecnn runs on (--python names another)")
    if facts.machine not in MACHINES:
        raise UserError(f"{host}: {facts.machine} has no wheels of onnxruntime and ai-edge-litert "
                        f"(edgecnn[runtime] installs on {' and '.join(MACHINES)} Linux)")
    if not facts.executable_shared:
        raise UserError(f"{host}: {facts.executable} is in a directory other users cannot enter, so the service's "
                        f"user could not run it: --python names one it can (such as /usr/bin/python3)")
    if not facts.systemd:
        raise UserError(f"{host}: systemd is not running there; deploy installs a systemd service")
    if new_venv and not facts.venv_module:
        raise UserError(f"{host}: {facts.executable} cannot make a venv (no ensurepip): apt-get install python3-venv")
    missing = [group for group in groups if group not in facts.groups]
    if missing:
        raise UserError(f"{host}: no group {missing[0]!r} there (--group names a group of the device)")
    if facts.free_bytes is not None and facts.free_bytes < need_bytes:
        raise UserError(f"{host}: {facts.free_bytes / 2**20:.0f} MB free at {facts.free_path}; this deploy needs "
                        f"about {need_bytes / 2**20:.0f} MB")


def _python_identity(facts) -> str:
    return f"{facts.executable} {'.'.join(map(str, facts.python))} {facts.machine}"


def _protect_home(facts) -> str:
    """ProtectHome=yes hides /home and /root: a Python installed there (pyenv, conda)
    would not start, so it is made read-only instead."""
    inside_home = any(path == home or path.startswith(home + "/") for home in ("/home", "/root", "/run/user")
                      for path in (facts.executable, facts.prefix))
    return "read-only" if inside_home else "yes"


class Rollout:
    """One deploy to several hosts: the local checks once, then the hosts in parallel."""

    def __init__(self, options: DeployOptions, log: Callable[[str], None] = print) -> None:
        self.options, self.log = options, log
        check_options(options)

    def release(self, config_path: str):
        from edgecnn.deploy.release_files import prepare_release
        from edgecnn.deploy.trust import check_models

        release = prepare_release(config_path, self.options.service, self.options.health_port)
        for line in check_models(release.models, self.options.allow_ungated):
            self.log(f"model {line}")
        return release

    def deploy(self, hosts: List[str], config_path: str) -> List[Dict]:
        from edgecnn.deploy.install_source import check_sources

        release = self.release(config_path)
        check_sources(self.options.wheel, self.options.wheelhouse)
        for host in hosts:
            target_for(host, self.options)  # every host's name checked before any is reached
        built = None
        if self.options.wheel == "":  # built once, before the hosts are reached
            from edgecnn.deploy.install_source import built_wheel

            built = built_wheel(self.log)

        def deploy_one(host: str) -> Dict:
            with session_for(host, self.options) as session:
                return self._deploy_one(session, release, built)

        return self._each(hosts, deploy_one)

    def _each(self, hosts: List[str], step: Callable[[str], Dict]) -> List[Dict]:
        """`step` on every host at once; with one host its error is raised as it is."""
        if len(hosts) == 1:
            return [{"host": hosts[0], **step(hosts[0])}]

        def guarded(host: str) -> Dict:
            try:
                return {"host": host, **step(host)}
            except (UserError, GateRefused) as exc:
                return {"host": host, "status": "error", "detail": str(exc), "exit_code": exc.exit_code}

        with ThreadPoolExecutor(max_workers=len(hosts)) as pool:
            return list(pool.map(guarded, hosts))

    def _deploy_one(self, session, release, built) -> Dict:
        import edgecnn
        from edgecnn.deploy.device_session import tar_of
        from edgecnn.deploy.install_source import plan_install
        from edgecnn.deploy.layout import release_id
        from edgecnn.deploy.unit import UnitSettings, unit_text

        began = time.monotonic()
        options = self.options
        facts = session.probe()
        install = plan_install(release.extras, options.wheel, options.wheelhouse, _python_identity(facts),
                               options.system_site_packages, self.log, built)
        new_venv = install.key not in facts.venvs
        release_bytes = len(release.config_text) + sum(os.path.getsize(path) for _, path in release.files)
        upload_bytes = sum(os.path.getsize(path) for _, path in install.upload) if new_venv else 0
        check_device(session.host, facts, 2 * release_bytes + upload_bytes + (VENV_BYTES if new_venv else 0),
                     new_venv, options.groups)
        if new_venv:
            self.log(f"{session.host}: installing {install.description} into a new venv "
                     f"(edgecnn[{','.join(release.extras)}])")
            session.call({"action": "prepare", "venv": install.key, "python": options.python,
                          "requirements": install.requirements, "no_index": install.no_index,
                          "wheelhouse": install.wheelhouse, "upload": bool(install.upload),
                          "system_site_packages": options.system_site_packages},
                         upload=tar_of(install.upload), timeout=3600, what="installing edgecnn")
        groups = [g for g in ("video", "render") if g in facts.groups] + \
                 [g for g in options.groups if g not in ("video", "render")]
        unit = unit_text(UnitSettings(service=options.service, root=options.device_root, user=options.service,
                                      groups=groups, watchdog_seconds=options.watchdog_seconds,
                                      start_seconds=options.start_seconds,
                                      read_write_paths=release.read_write_paths, protect_home=_protect_home(facts)))
        files = [("config.yaml", release.config_text.encode())] + list(release.files)
        self.log(f"{session.host}: starting release {release.digest[:8]} and waiting for /healthz "
                 f"(at most {options.timeout:.0f} s)")
        answer = session.call({"action": "activate", "release": release_id(digest=release.digest),
                               "venv": install.key, "unit": unit, "health_url": release.health_url,
                               "timeout": options.timeout, "user": options.service,
                               "check_on_device": bool(release.device_sources),
                               "files": [name for name, _ in files], "edgecnn": edgecnn.__version__,
                               "from": socket.gethostname()},
                              upload=tar_of(files), timeout=options.timeout * 2 + 600, what="activating the release")
        answer["seconds"] = time.monotonic() - began
        return _described(answer)

    def action(self, hosts: List[str], name: str) -> List[Dict]:
        """status, rollback, stop or remove on each host."""
        for host in hosts:
            target_for(host, self.options)

        def step(host: str) -> Dict:
            began = time.monotonic()
            with session_for(host, self.options) as session:
                answer = session.call({"action": name, "timeout": self.options.timeout},
                                      timeout=self.options.timeout * 2 + 120, what=name)
            if name != "status":
                answer["seconds"] = time.monotonic() - began
            return _described(answer)

        return self._each(hosts, step)

    def logs(self, hosts: List[str], lines: int, follow: bool) -> int:
        if follow and len(hosts) > 1:
            raise UserError("--logs -f follows one host; give one, or leave out -f")
        code = 0
        for host in hosts:
            with session_for(host, self.options) as session:
                if len(hosts) > 1:
                    self.log(f"==> {host} <==")
                code = max(code, session.show_journal(lines, follow))
        return code


def _described(answer: Dict) -> Dict:
    """The table's DETAIL: why a release was not kept, or what was removed."""
    status = answer.get("status")
    if status == "rolled back" and answer.get("failed_release"):
        answer["detail"] = f"{answer['failed_release']} not healthy: {answer.get('reason')}" + \
            ("" if answer.get("rollback_healthy") else f"; the previous release is not healthy either: "
                                                        f"{answer.get('rollback_reason')}")
    elif status in ("failed", "unhealthy"):
        answer["detail"] = answer.get("reason")
    elif status == "deployed" and answer.get("previous"):
        answer["detail"] = f"previous {answer['previous']}"
    elif status == "rolled back":
        answer["detail"] = f"from {answer.get('from')}"
    elif status == "removed":
        answer["detail"] = ", ".join(answer.get("removed", []))
    return answer
