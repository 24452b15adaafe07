"""The ssh steps of a deploy: each one ssh command in batch mode (edgecnn.bench.remote's
SshTarget: a connect timeout, no password prompt), running the device's own Python.

The first step sends edgecnn.deploy.device_probe as `python -c`; every later one sends
the device-side modules (layout, systemd_control, health_wait, venv_setup, agent: the
standard library only) as text with a request, followed by a tar of what the step
uploads, so that the device needs nothing of edgecnn before the deploy installs it,
and every step is one connection. Where the ssh user is not root, the steps run under
`sudo -n` (a password prompt would hang: it is one line instead).
"""
from __future__ import annotations

import inspect
import io
import json
import shlex
import tarfile
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Dict, List, Optional, Sequence, Tuple, Union

from edgecnn.bench.remote import SshTarget
from edgecnn.core.errors import UserError

DEVICE_MODULES = ("layout", "systemd_control", "health_wait", "venv_setup", "agent")
PROBE_SECONDS = 60
# the runner for the device-side modules: defines each from its text, then runs the agent
BOOTSTRAP = """import sys, json, types
size = int(sys.stdin.buffer.readline())
payload = json.loads(sys.stdin.buffer.read(size).decode("utf-8"))
for name in ("edgecnn", "edgecnn.deploy"):
    package = types.ModuleType(name); package.__path__ = []; sys.modules[name] = package
for name, text in payload["modules"]:
    module = types.ModuleType(name); module.__file__ = "<%s>" % name; sys.modules[name] = module
    setattr(sys.modules["edgecnn.deploy"], name.rsplit(".", 1)[1], module)
    exec(compile(text, module.__file__, "exec"), module.__dict__)
sys.exit(sys.modules["edgecnn.deploy.agent"].main(payload["request"], sys.stdin.buffer))
"""


@dataclass
class DeviceFacts:
    """The device as device_probe saw it."""

    python: Tuple[int, ...]
    executable: str
    executable_shared: bool  # the service's user can run it (not under a home directory of mode 700)
    prefix: str
    machine: str
    uid: int
    free_bytes: Optional[int]
    free_path: str
    cameras: List[str]
    systemd: bool
    groups: List[str]  # every group name there
    venv_module: bool
    venvs: List[str]
    current: Optional[str]


def _module_texts() -> List[Tuple[str, str]]:
    import importlib

    texts = []
    for short in DEVICE_MODULES:
        module = importlib.import_module(f"edgecnn.deploy.{short}")
        texts.append((module.__name__, inspect.getsource(module)))
    return texts


def _last_line(text: Optional[str]) -> str:
    lines = [line.strip() for line in (text or "").splitlines() if line.strip()]
    return lines[-1] if lines else ""


def tar_of(files: Sequence[Tuple[str, Union[Path, bytes]]]) -> bytes:
    """(name in the archive, a file here or its bytes) as an uncompressed tar owned by
    root: a model file is already dense, and the device extracts as root."""
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as archive:
        for name, content in files:
            data = content if isinstance(content, bytes) else Path(content).read_bytes()
            info = tarfile.TarInfo(name)
            info.size, info.mode, info.mtime = len(data), 0o644, int(time.time())
            info.uid = info.gid = 0
            info.uname = info.gname = "root"
            archive.addfile(info, io.BytesIO(data))
    return buffer.getvalue()


def as_root(command: str) -> str:
    """`command` as root: as it is for root, under `sudo -n` for another user (so the
    steps need no probe of who logs in, and a password prompt is an error, not a hang)."""
    return f'if [ "$(id -u)" -eq 0 ]; then exec {command}; else exec sudo -n {command}; fi'


class SharedConnection(SshTarget):
    """An SshTarget whose commands share one connection (OpenSSH's ControlMaster): the
    steps of a deploy after the first skip the handshake, which costs a second or so
    over Wi-Fi. close() ends the master."""

    def __init__(self, target: SshTarget) -> None:
        super().__init__(target.host, target.config, target.connect_timeout)
        self._directory = tempfile.mkdtemp(prefix="edgecnn-ssh-")  # a socket path must stay short

    def options(self) -> List[str]:
        return super().options() + ["-o", "ControlMaster=auto", "-o", f"ControlPath={self._directory}/%C",
                                    "-o", "ControlPersist=60"]

    def close(self) -> None:
        import shutil
        import subprocess

        try:
            subprocess.run(["ssh", *self.options(), "-O", "exit", self.host], stdin=subprocess.DEVNULL,
                           capture_output=True, timeout=30)
        except (OSError, subprocess.TimeoutExpired):
            pass
        shutil.rmtree(self._directory, ignore_errors=True)


class DeviceSession:
    def __init__(self, target: SshTarget, python: str, root: str, service: str) -> None:
        self.target = SharedConnection(target)
        self.python, self.root, self.service = python, root, service
        self.host = target.host

    def close(self) -> None:
        self.target.close()

    def __enter__(self) -> "DeviceSession":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def probe(self) -> DeviceFacts:
        from edgecnn.deploy import device_probe

        command = " ".join([shlex.quote(self.python), "-c", shlex.quote(inspect.getsource(device_probe)),
                            shlex.quote(self.root), shlex.quote(self.service)])
        result = self.target.ssh(command, timeout=self.target.connect_timeout + PROBE_SECONDS, what="probing")
        if result.returncode == 127:
            raise UserError(f"{self.host}: no Python at {self.python} (--python names the device's Python 3.9+)")
        try:
            facts = json.loads(result.stdout.strip().splitlines()[-1])
        except (ValueError, IndexError):
            raise UserError(f"{self.host}: {self.python} did not answer the probe: "
                            f"{_last_line(result.stderr) or f'exit {result.returncode}'}") from None
        if facts["uid"] != 0:
            self._check_sudo()
        return DeviceFacts(python=tuple(facts["python"]), executable=facts["executable"],
                           executable_shared=facts["executable_shared"], prefix=facts["prefix"],
                           machine=facts["machine"], uid=facts["uid"], free_bytes=facts["free_bytes"],
                           free_path=facts["free_path"], cameras=facts["cameras"], systemd=facts["systemd"],
                           groups=facts["groups"], venv_module=facts["venv_module"], venvs=facts["venvs"],
                           current=facts["current"])

    def _check_sudo(self) -> None:
        result = self.target.ssh("sudo -n true", timeout=self.target.connect_timeout + 30, what="sudo")
        if result.returncode != 0:
            raise self._not_root(result.stderr)

    def _not_root(self, stderr: Optional[str]) -> UserError:
        return UserError(f"{self.host}: deploying installs a system service: log in as root or as a user with "
                         f"passwordless sudo ({_last_line(stderr) or 'sudo -n failed'})")

    def call(self, request: Dict, upload: bytes = b"", timeout: float = 600.0, what: str = "deploy") -> Dict:
        """Run one agent action; its answer, or UserError with the device's reason."""
        full = {**request, "root": self.root, "service": self.service}
        payload = json.dumps({"modules": _module_texts(), "request": full}).encode("utf-8")
        command = as_root(f"{shlex.quote(self.python)} -c {shlex.quote(BOOTSTRAP)}")
        with tempfile.TemporaryFile() as stdin:
            stdin.write(f"{len(payload)}\n".encode() + payload + upload)
            stdin.seek(0)
            result = self.target.ssh(command, timeout=timeout, what=what, stdin=stdin)
        try:
            answer = json.loads(result.stdout.strip().splitlines()[-1])
        except (ValueError, IndexError):
            if result.returncode == 127:
                raise UserError(f"{self.host}: no Python at {self.python} (--python names the device's "
                                f"Python 3.9+)") from None
            if "sudo:" in (result.stderr or ""):
                raise self._not_root(result.stderr) from None
            raise UserError(f"{self.host}: {what} failed on the device: "
                            f"{_last_line(result.stderr) or f'exit {result.returncode}'}") from None
        if "error" in answer:
            raise UserError(f"{self.host}: {answer['error']}")
        return answer

    def show_journal(self, lines: int, follow: bool) -> int:
        """The unit's journal on our stdout (-f: until Ctrl-C)."""
        import subprocess

        unit = shlex.quote(f"{self.service}.service")
        command = as_root(f"journalctl --no-pager -u {unit} -n {int(lines)}" + (" -f" if follow else ""))
        try:
            return subprocess.run(["ssh", *self.target.options(), self.host, command],
                                  stdin=subprocess.DEVNULL).returncode
        except KeyboardInterrupt:
            return 0
