"""`edgecnn bench --remote USER@HOST`: measure on a device, drive it from a desktop.

The model files are copied over ssh into a fresh temporary directory on the device,
`edgecnn bench ... --json -` runs there over ssh (the device needs only
`edgecnn[runtime]`), its JSON lines come back on ssh's stdout and the directory is
removed. ssh runs in batch mode with a connect timeout, so an unreachable host or a
missing key is one line and exit 2 instead of a password prompt or a hang.
"""
from __future__ import annotations

import json
import shlex
import subprocess
import sys
from pathlib import Path
from typing import Any, Dict, List, Optional, Sequence

from edgecnn.core.errors import UserError


class SshTarget:
    """How to reach the device: host (USER@HOST), an optional ssh_config file (port,
    identity, known hosts) and the connect timeout in seconds."""

    def __init__(self, host: str, config: Optional[str] = None, connect_timeout: float = 10.0) -> None:
        if not host or host.startswith("-") or any(c.isspace() for c in host):
            raise UserError(f"--remote: not a USER@HOST: {host!r}")
        if config is not None and not Path(config).is_file():
            raise UserError(f"--ssh-config: no such file: {config}")
        self.host, self.config, self.connect_timeout = host, config, connect_timeout

    def options(self) -> List[str]:
        seconds = max(1, int(round(self.connect_timeout)))
        options = ["-o", "BatchMode=yes", "-o", f"ConnectTimeout={seconds}", "-o", "ServerAliveInterval=15",
                   "-o", "ServerAliveCountMax=4"]
        return (["-F", self.config] if self.config else []) + options

    def ssh(self, command: str, timeout: Optional[float] = None, stderr=subprocess.PIPE,
            what: str = "ssh", stdin=subprocess.DEVNULL) -> subprocess.CompletedProcess:
        return self._run(["ssh", *self.options(), self.host, command], timeout, stderr, what, stdin=stdin)

    def copy(self, files: Sequence[str], directory: str, timeout: Optional[float] = None) -> None:
        """Copy files by streaming each into `cat` on the device: works wherever ssh does
        (no scp/sftp subsystem needed, which minimal device images may lack)."""
        for path in files:
            destination = shlex.quote(f"{directory}/{Path(path).name}")
            with open(path, "rb") as handle:
                result = self._run(["ssh", *self.options(), self.host, f"cat > {destination}"], timeout,
                                   subprocess.PIPE, "copying the model", stdin=handle)
            if result.returncode != 0:
                raise UserError(f"cannot copy {path} to {self.host}: {_last_line(result.stderr) or 'ssh failed'}")

    def _run(self, argv: List[str], timeout: Optional[float], stderr, what: str,
             stdin=subprocess.DEVNULL) -> subprocess.CompletedProcess:
        # the connect timeout bounds the handshake; the overall timeout bounds everything else
        try:
            result = subprocess.run(argv, stdin=stdin, stdout=subprocess.PIPE, stderr=stderr, timeout=timeout)
        except FileNotFoundError:
            raise UserError("--remote needs the `ssh` command (OpenSSH client), which is not installed") from None
        except subprocess.TimeoutExpired:
            raise UserError(f"{what} to {self.host} did not finish within {timeout:.0f} s") from None
        result = subprocess.CompletedProcess(argv, result.returncode, _text(result.stdout), _text(result.stderr))
        if result.returncode == 255:  # ssh's own failure: connection, authentication, host key
            raise UserError(f"cannot reach {self.host}: {_last_line(result.stderr) or 'ssh failed'}")
        return result


def _text(data: Optional[bytes]) -> Optional[str]:
    return None if data is None else data.decode("utf-8", errors="replace")


def _last_line(text: Optional[str]) -> str:
    lines = [line.strip() for line in (text or "").splitlines() if line.strip()]
    return lines[-1] if lines else ""


def remote_bench_args(remote_models: Sequence[str], options: Dict[str, Any]) -> List[str]:
    """The `edgecnn bench` arguments for the device (models already copied there)."""
    args = list(remote_models)
    for flag in ("backend", "threads", "runs", "warmup", "pipeline", "frames", "device_name", "timeout",
                 "input_size"):
        value = options.get(flag)
        if value is not None:
            args += ["--" + flag.replace("_", "-"), str(value)]
    if options.get("progress"):
        args.append("--progress")
    return args + ["--json", "-"]


def run_remote(target: SshTarget, models: Sequence[str], options: Dict[str, Any],
               python: str = "python3", timeout: float = 3600.0) -> List[Dict[str, Any]]:
    """Copy the models, run the bench on the device, return its records with the local
    model paths and the host filled in."""
    made = target.ssh("mktemp -d -t edgecnn-bench.XXXXXX", timeout=target.connect_timeout + 30, what="ssh")
    directory = made.stdout.strip()
    if made.returncode != 0 or not directory.startswith("/"):
        raise UserError(f"cannot make a directory on {target.host}: {_last_line(made.stderr) or 'mktemp failed'}")
    try:
        target.copy(list(models), directory, timeout=timeout)
        remote_models = [f"{directory}/{Path(m).name}" for m in models]
        command = " ".join([python, "-m", "edgecnn", "bench",
                            *map(shlex.quote, remote_bench_args(remote_models, options))])
        # the device's progress bar and messages go straight to our stderr
        result = target.ssh(command, timeout=timeout, stderr=None)
    finally:
        try:
            target.ssh(f"rm -rf {shlex.quote(directory)}", timeout=target.connect_timeout + 30)
        except UserError:
            pass
    records = parse_records(result.stdout)
    if result.returncode not in (0,) and not records:
        raise UserError(f"`edgecnn bench` on {target.host} failed (exit {result.returncode}); is edgecnn[runtime] "
                        f"installed there? (--remote-python names the Python that has it, now {python!r})")
    local_by_name = {Path(m).name: str(m) for m in models}
    for record in records:
        record["model_path"] = local_by_name.get(record.get("model"), record.get("model_path"))
        record["remote"] = target.host
    return records


def parse_records(text: str) -> List[Dict[str, Any]]:
    records = []
    for line in text.splitlines():
        try:
            record = json.loads(line)
        except json.JSONDecodeError:
            print(line, file=sys.stderr)  # not ours: show it rather than lose it
            continue
        if isinstance(record, dict) and record.get("schema", "").startswith("edgecnn.bench.measure/"):
            records.append(record)
    return records
