"""A systemd of the tests' own, as PID 1 of new PID, mount, UTS and cgroup namespaces,
reached by an sshd on a loopback port: a "device" with a real service manager on a
machine where systemd is not PID 1, that leaves the host as it was.

- Its own cgroup: a child of the host's unified hierarchy, mounted as the namespace's
  only /sys/fs/cgroup, so systemd neither sees nor creates nor kills the host's.
- /etc and /var are overlays whose changes land in the work directory (a unit file, a
  system user, the journal); /run, /tmp and /var/tmp are empty tmpfs, so nothing can
  clean the host's /tmp; /srv is the work directory's srv/ (the device's edgecnn root).
- /etc/systemd/system starts empty and SYSTEMD_UNIT_PATH names only it and the tests'
  units: edgecnn-test.target starts journald (its stream and datagram sockets, no
  /dev/log) and the sshd, nothing else; sysinit.target and basic.target are empty, so a
  service's default dependencies pull in nothing of a boot (no sysctl, tmpfiles, udev,
  fstab mounts, swap or binfmt); no generator runs.
- /dev is a tmpfs with the nodes services use, /sys and /proc/sys are read-only, the
  capabilities to load modules, set the clock, reboot and use audit are dropped, and
  `container=` tells systemd it is not the host's init.
- With `arm64_sysroot` (devices/emulated_pi's), an arm64 device: ARM64_USERLAND below,
  with arm64_binfmt() held by the caller while it runs.
Killing PID 1 kills everything in its PID namespace; stop() does, then removes the
cgroups systemd made.
"""
from __future__ import annotations

import contextlib
import os
import re
import shutil
import signal
import socket
import subprocess
import tempfile
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator, Optional

SYSTEMD = "/lib/systemd/systemd"
CGROUP2 = Path("/sys/fs/cgroup/unified")  # the host's unified hierarchy (hybrid layout)
HOST_UNITS = Path("/lib/systemd/system")
TARGET = "edgecnn-test.target"
INSIDE = "/run/edgecnn-test"  # the work directory's ns/ as the namespace sees it
DROPPED_CAPABILITIES = "-sys_module,-sys_time,-sys_boot,-audit_control,-audit_read,-audit_write,-syslog,-wake_alarm"

INIT = r"""
set -eu
W=$1
mount --make-rprivate /
mount -t overlay overlay -o lowerdir=/etc,upperdir=$W/etc.upper,workdir=$W/etc.work /etc
mount -t overlay overlay -o lowerdir=/var,upperdir=$W/var.upper,workdir=$W/var.work /var
mount --bind $W/srv /srv
{arm64}mount -t tmpfs -o mode=0755 tmpfs /etc/systemd/system
mount -t tmpfs -o mode=0755 tmpfs /run
mkdir -p /run/edgecnn-test
mount --bind $W/ns /run/edgecnn-test
mount -t tmpfs -o mode=1777 tmpfs /tmp
mount -t tmpfs -o mode=1777 tmpfs /var/tmp
mount -t tmpfs -o mode=0755,nosuid tmpfs /dev
mknod -m 666 /dev/null c 1 3; mknod -m 666 /dev/zero c 1 5; mknod -m 666 /dev/full c 1 7
mknod -m 666 /dev/random c 1 8; mknod -m 666 /dev/urandom c 1 9; mknod -m 666 /dev/tty c 5 0
mkdir /dev/pts /dev/shm
mount -t devpts -o newinstance,ptmxmode=0666,mode=0620 devpts /dev/pts
ln -s pts/ptmx /dev/ptmx
mount -t tmpfs -o mode=1777 tmpfs /dev/shm
ln -s /proc/self/fd /dev/fd; ln -s /proc/self/fd/0 /dev/stdin
ln -s /proc/self/fd/1 /dev/stdout; ln -s /proc/self/fd/2 /dev/stderr
mount -o remount,bind,ro /sys
mount -t cgroup2 cgroup2 /sys/fs/cgroup
mount --bind /proc/sys /proc/sys
mount -o remount,bind,ro /proc/sys
hostname edgecnn-test-device
exec env -i container=edgecnn-test PATH=/usr/sbin:/usr/bin:/sbin:/bin \
    SYSTEMD_UNIT_PATH=/run/edgecnn-test/units:/etc/systemd/system \
    SYSTEMD_GENERATOR_PATH=/run/edgecnn-test/empty SYSTEMD_ENVIRONMENT_GENERATOR_PATH=/run/edgecnn-test/empty \
    setpriv --bounding-set {dropped} -- {systemd} --system --unit={target} --show-status=no
"""


# An arm64 Debian userland beside the host's x86_64 one, as Debian's multiarch paths
# allow: its libraries in /usr/lib/aarch64-linux-gnu (absent on an x86_64 host; the
# sysroot's /lib and /usr/lib ones in one read-only overlay, as a merged /usr has them), its
# loader, and its Python 3.11 in place of the host's (/usr/bin/python3.11 and its
# standard library, the same Debian release), all inside an overlay of /usr whose
# changes land in the work directory. The kernel runs its ELF files through
# qemu-aarch64-static (a binfmt_misc entry of the caller's, opened at registration: F),
# and /proc/cpuinfo is the emulated board's, as on the board itself (qemu 7.2 would show
# the host's, on which onnxruntime's CPU detection crashes).
ARM64_CPU = "cortex-a76"  # a Raspberry Pi 5's, as devices/emulated_pi's board files describe it
ARM64_USERLAND = r"""
S=$2
mount -t overlay overlay -o lowerdir=/usr,upperdir=$W/usr.upper,workdir=$W/usr.work /usr
mkdir -p /usr/lib/aarch64-linux-gnu /usr/share/python-wheels /usr/lib/python3.11
mount -t overlay overlay -o lowerdir=$S/usr/lib/aarch64-linux-gnu:$S/lib/aarch64-linux-gnu /usr/lib/aarch64-linux-gnu
ln -sfn aarch64-linux-gnu/ld-linux-aarch64.so.1 /usr/lib/ld-linux-aarch64.so.1
[ -e /usr/bin/python3.11 ] || touch /usr/bin/python3.11
ln -sfn python3.11 /usr/bin/python3
mount --bind $S/usr/bin/python3.11 /usr/bin/python3.11
mount --bind $S/usr/lib/python3.11 /usr/lib/python3.11
mount --bind $S/usr/share/python-wheels /usr/share/python-wheels
mount --bind $S/proc/cpuinfo /proc/cpuinfo
"""


def _empty_target(description: str, wants: str = "") -> str:
    return (f"[Unit]\nDescription={description}\nDefaultDependencies=no\n"
            + (f"Wants={wants}\nAfter={wants}\n" if wants else ""))


def _journald_units() -> dict:
    """The host's journald, listening on its stream and datagram sockets only (its
    dev-log socket would link /dev/log, its audit socket read the host's audit)."""
    service = (HOST_UNITS / "systemd-journald.service").read_text()
    service = re.sub(r"(?m)^Sockets=.*$", "Sockets=systemd-journald.socket", service)
    service = re.sub(r"(?m)^After=.*$", "After=systemd-journald.socket", service)
    return {"systemd-journald.service": service,
            "systemd-journald.socket": (HOST_UNITS / "systemd-journald.socket").read_text()}


def usable() -> Optional[str]:
    """None where this can run here, else why not (one line)."""
    if os.geteuid() != 0:
        return "needs root (namespaces, mounts, cgroups)"
    for tool in ("unshare", "nsenter", "setpriv", "mount", "mknod"):
        if shutil.which(tool) is None:
            return f"needs {tool} (util-linux)"
    if not Path(SYSTEMD).is_file():
        return f"needs systemd ({SYSTEMD})"
    if not (CGROUP2 / "cgroup.procs").is_file() and not Path("/sys/fs/cgroup/cgroup.procs").is_file():
        return "needs a cgroup2 hierarchy"
    return None


class NamespacedSystemd:
    """start() boots it with an sshd on `ssh_port` (sshd_config written by the caller
    into `ssh_dir`, which the namespace sees as /run/edgecnn-test/ssh)."""

    def __init__(self, workdir: Path, sshd_config: str, arm64_sysroot: Optional[Path] = None) -> None:
        self.workdir = Path(workdir)
        self.sshd_config = sshd_config
        self.arm64_sysroot = arm64_sysroot  # a Debian arm64 userland (devices/emulated_pi's sysroot)
        self.name = f"edgecnn-test-{uuid.uuid4().hex[:12]}"
        hierarchy = CGROUP2 if (CGROUP2 / "cgroup.procs").is_file() else Path("/sys/fs/cgroup")
        self.cgroup = hierarchy / self.name
        self.launcher: Optional[subprocess.Popen] = None
        self.pid: Optional[int] = None  # PID 1 of the namespace, as the host sees it
        self.console = self.workdir / "systemd-console.log"

    @property
    def ssh_dir(self) -> Path:
        return self.workdir / "ns" / "ssh"

    @property
    def srv(self) -> Path:
        return self.workdir / "srv"

    def _prepare(self) -> None:
        for name in ("etc.upper", "etc.work", "var.upper", "var.work", "usr.upper", "usr.work", "srv", "ns/units",
                     "ns/empty", "ns/ssh"):
            (self.workdir / name).mkdir(parents=True, exist_ok=True)
        units = {
            TARGET: _empty_target("edgecnn test device", "systemd-journald.service sshd-test.service"),
            "sysinit.target": _empty_target("System Initialization (empty here)"),
            "basic.target": _empty_target("Basic System (empty here)"),
            "shutdown.target": _empty_target("Shutdown") + "RefuseManualStart=yes\n",
            "network-online.target": _empty_target("Network is Online (the host's)"),
            "multi-user.target": _empty_target("Multi-User System (never started here)"),
            "sshd-test.service": ("[Unit]\nDescription=sshd for the tests\nDefaultDependencies=no\n"
                                  "[Service]\nExecStart=/usr/sbin/sshd -D -e -f "
                                  f"{INSIDE}/ssh/sshd_config\nRuntimeDirectory=sshd\nRuntimeDirectoryMode=0755\n"),
            **_journald_units()}
        if self.arm64_sysroot:
            # a service's own /proc (ProtectKernelTunables, ProtectControlGroups) would show the
            # host's x86 /proc/cpuinfo again: every service gets the board's, as on the board,
            # and qemu emulates the board's CPU (its default, "max", has features no Pi has)
            shutil.copy(Path(self.arm64_sysroot) / "proc" / "cpuinfo", self.workdir / "ns" / "cpuinfo")
            units["service.d/board.conf"] = (f"[Service]\nBindReadOnlyPaths={INSIDE}/cpuinfo:/proc/cpuinfo\n"
                                             f"Environment=QEMU_CPU={ARM64_CPU}\n")
        for name, text in units.items():
            (self.workdir / "ns" / "units" / name).parent.mkdir(exist_ok=True)
            (self.workdir / "ns" / "units" / name).write_text(text)
        (self.ssh_dir / "sshd_config").write_text(self.sshd_config)
        (self.workdir / "ns" / "init.sh").write_text(
            INIT.replace("{dropped}", DROPPED_CAPABILITIES).replace("{systemd}", SYSTEMD).replace("{target}", TARGET)
            .replace("{arm64}", ARM64_USERLAND.lstrip("\n") if self.arm64_sysroot else ""))

    def start(self, ready: "callable", timeout: float = 60.0) -> None:
        """Boot; `ready()` says when the sshd answers. Stops it on failure."""
        self._prepare()
        self.cgroup.mkdir()
        script = (f"echo $$ > {self.cgroup}/cgroup.procs && exec unshare --fork --pid --mount --uts --cgroup "
                  f"--mount-proc --propagation private sh {self.workdir}/ns/init.sh {self.workdir} "
                  f"{self.arm64_sysroot or ''}")
        with open(self.console, "wb") as console:
            self.launcher = subprocess.Popen(["sh", "-c", script], stdin=subprocess.DEVNULL, stdout=console,
                                             stderr=subprocess.STDOUT, start_new_session=True)
        try:
            deadline = time.monotonic() + timeout
            while time.monotonic() < deadline:
                if self.launcher.poll() is not None:
                    raise RuntimeError(f"systemd exited ({self.launcher.returncode}): {self.log_tail()}")
                if self.pid is None:
                    self.pid = self._namespace_pid1()
                if self.pid is not None and ready():
                    return
                time.sleep(0.2)
            raise RuntimeError(f"the namespaced systemd did not come up in {timeout:.0f} s: {self.log_tail()}")
        except BaseException:
            self.stop()
            raise

    def _namespace_pid1(self) -> Optional[int]:
        children = Path(f"/proc/{self.launcher.pid}/task/{self.launcher.pid}/children")
        try:
            pids = children.read_text().split()
        except OSError:
            return None
        return int(pids[0]) if pids else None

    def log_tail(self, lines: int = 15) -> str:
        try:
            return " | ".join(self.console.read_text(errors="replace").strip().splitlines()[-lines:])
        except OSError:
            return ""

    def enter(self, *argv: str, timeout: float = 60.0, check: bool = False) -> subprocess.CompletedProcess:
        """Run a command inside (its mount and PID namespaces): systemctl, journalctl."""
        return subprocess.run(["nsenter", "-t", str(self.pid), "-m", "-p", "-u", "--", *argv], capture_output=True,
                              text=True, timeout=timeout, check=check)

    def systemctl(self, *args: str) -> subprocess.CompletedProcess:
        return self.enter("systemctl", "--no-pager", *args)

    def show(self, unit: str, *properties: str) -> dict:
        result = self.systemctl("show", unit, *[f"--property={p}" for p in properties])
        return dict(line.split("=", 1) for line in result.stdout.splitlines() if "=" in line)

    def stop(self) -> None:
        """Kill PID 1 (and with it the namespace), then remove the cgroups it made."""
        if self.launcher is not None:
            if self.pid is not None:
                try:
                    os.kill(self.pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
            try:
                self.launcher.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(self.launcher.pid, signal.SIGKILL)
                self.launcher.wait(timeout=20)
            self.launcher = None
        self._remove_cgroups()

    def _remove_cgroups(self) -> None:
        if not self.cgroup.exists():
            return
        deadline = time.monotonic() + 10
        while True:
            for directory in sorted((p for p in self.cgroup.rglob("*") if p.is_dir()),
                                    key=lambda p: len(p.parts), reverse=True) + [self.cgroup]:
                try:
                    directory.rmdir()
                except OSError:
                    pass
            if not self.cgroup.exists() or time.monotonic() > deadline:
                return
            time.sleep(0.2)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@dataclass
class SshDevice:
    """A started NamespacedSystemd and how to reach it: `ssh -F ssh_config dev` logs in
    as root with a key of its own, the host key pinned."""

    systemd: NamespacedSystemd
    ssh_config: Path
    port: int
    keys: Path

    def stop(self) -> None:
        self.systemd.stop()


def start_ssh_device(workdir: Path, timeout: float = 60.0, arm64_sysroot: Optional[Path] = None) -> SshDevice:
    """Keys, an sshd on a free loopback port inside, a client config naming it `dev`;
    with `arm64_sysroot`, a device whose python3 is arm64 (ARM64_USERLAND, arm64_binfmt)."""
    workdir = Path(workdir)
    keys = workdir / "keys"
    keys.mkdir(parents=True)
    for name in ("host_key", "client_key"):
        subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(keys / name)], check=True)
    port = free_port()
    systemd = NamespacedSystemd(workdir / "ns-work", (
        f"Port {port}\nListenAddress 127.0.0.1\nHostKey {INSIDE}/ssh/host_key\n"
        f"AuthorizedKeysFile {INSIDE}/ssh/authorized_keys\nPidFile none\nPubkeyAuthentication yes\n"
        "PasswordAuthentication no\nKbdInteractiveAuthentication no\nUsePAM no\nStrictModes no\n"
        "PermitRootLogin prohibit-password\n" + (f"SetEnv QEMU_CPU={ARM64_CPU}\n" if arm64_sysroot else "")),
        arm64_sysroot)
    systemd.ssh_dir.mkdir(parents=True)
    shutil.copy(keys / "host_key", systemd.ssh_dir / "host_key")
    (systemd.ssh_dir / "authorized_keys").write_text((keys / "client_key.pub").read_text())
    host_key = (keys / "host_key.pub").read_text().split()[:2]
    (keys / "known_hosts").write_text(f"[127.0.0.1]:{port} {' '.join(host_key)}\n")
    ssh_config = workdir / "ssh_config"
    ssh_config.write_text(f"Host dev\n  HostName 127.0.0.1\n  Port {port}\n  User root\n"
                          f"  IdentityFile {keys / 'client_key'}\n  IdentitiesOnly yes\n"
                          f"  UserKnownHostsFile {keys / 'known_hosts'}\n  StrictHostKeyChecking yes\n"
                          "  LogLevel ERROR\n")

    def answers() -> bool:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            return True
        except OSError:
            return False

    systemd.start(answers, timeout)
    return SshDevice(systemd, ssh_config, port, keys)


def device_python() -> Optional[str]:
    """A Python 3.9+ with venv that a service's own user can run (not under /root or
    /home, which are closed to other users)."""
    import sys

    for candidate in ("/usr/bin/python3", "/usr/local/bin/python3", getattr(sys, "_base_executable", None)):
        if candidate and os.path.exists(candidate):
            probe = subprocess.run([candidate, "-c", "import ensurepip, sys; sys.exit(sys.version_info < (3, 9))"],
                                   capture_output=True)
            if probe.returncode == 0 and not os.path.realpath(candidate).startswith(("/root/", "/home/")):
                return candidate
    return None


# qemu's own binfmt_misc pattern for an aarch64 ELF executable (qemu-binfmt-conf.sh)
AARCH64_MAGIC = r"\x7fELF\x02\x01\x01\x00\x00\x00\x00\x00\x00\x00\x00\x00\x02\x00\xb7\x00"
AARCH64_MASK = r"\xff\xff\xff\xff\xff\xff\xff\x00\xff\xff\xff\xff\xff\xff\xff\xff\xfe\xff\xff\xff"


@contextlib.contextmanager
def arm64_binfmt(qemu: str) -> Iterator[str]:
    """A binfmt_misc entry of its own, for as long as the block runs, that has the kernel
    run aarch64 ELF files through `qemu` (the F flag opens it now, so that a process in
    another mount namespace needs no copy of it), then removed: the host is left as it
    was. The host's binfmt_misc, mounted for the purpose where it is not."""
    mounted = None
    control = Path("/proc/sys/fs/binfmt_misc")
    if not (control / "register").exists():
        mounted = Path(tempfile.mkdtemp(prefix="edgecnn-binfmt-"))
        subprocess.run(["mount", "-t", "binfmt_misc", "binfmt_misc", str(mounted)], check=True, capture_output=True)
        control = mounted
    name = f"edgecnn-test-aarch64-{uuid.uuid4().hex[:8]}"
    try:
        (control / "register").write_text(f":{name}:M::{AARCH64_MAGIC}:{AARCH64_MASK}:{qemu}:F")
        try:
            yield name
        finally:
            (control / name).write_text("-1")
    finally:
        if mounted is not None:
            subprocess.run(["umount", str(mounted)], capture_output=True)
            mounted.rmdir()
