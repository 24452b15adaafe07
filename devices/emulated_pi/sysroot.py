"""The emulated Pi's arm64 userland, built once and cached in --workdir.

No root, no binfmt_misc, no chroot: qemu-aarch64-static (taken from Debian's
qemu-user-static package without installing it) runs with `-L SYSROOT`, which makes
every absolute path the guest opens resolve inside the sysroot first. The sysroot is
made by mmdebstrap (also run from its unpacked package) in its extract variant. It
holds a /proc/cpuinfo and /proc/device-tree/model of the board whose CPU is emulated:
qemu 7.2 would pass the host's x86 /proc/cpuinfo through, and onnxruntime's CPU
detection crashes on it.
"""
from __future__ import annotations

import contextlib
import glob
import os
import shutil
import subprocess
from pathlib import Path
from typing import Optional

from devices.emulated_pi.steps import Failed, Missing, last_line, log, run_step

SUITE = "bookworm"
DEFAULT_MIRROR = "http://deb.debian.org/debian"
# Python 3.11 as Raspberry Pi OS Bookworm has it, the C++ runtime the inference
# libraries link, and libGL/GLib for opencv-python (the non-headless wheel
# edgecnn[runtime] asks for).
SYSROOT_PACKAGES = ("python3.11", "python3.11-venv", "libstdc++6", "libgcc-s1", "libgomp1", "ca-certificates",
                    "libgl1", "libglib2.0-0")
GUEST_PYTHON = "usr/bin/python3.11"

# (board model, /proc/cpuinfo per-core block, board revision) for each emulated CPU:
# cortex-a72 is a Pi 4's, cortex-a76 a Pi 5's.
CPUS = {
    "cortex-a72": ("Raspberry Pi 4 Model B Rev 1.5",
                   "BogoMIPS\t: 108.00\nFeatures\t: fp asimd evtstrm crc32 cpuid\nCPU implementer\t: 0x41\n"
                   "CPU architecture: 8\nCPU variant\t: 0x0\nCPU part\t: 0xd08\nCPU revision\t: 3\n", "d03115"),
    "cortex-a76": ("Raspberry Pi 5 Model B Rev 1.0",
                   "BogoMIPS\t: 108.00\nFeatures\t: fp asimd evtstrm aes pmull sha1 sha2 crc32 atomics fphp asimdhp "
                   "cpuid asimdrdm lrcpc dcpop asimddp\nCPU implementer\t: 0x41\nCPU architecture: 8\n"
                   "CPU variant\t: 0x4\nCPU part\t: 0xd0b\nCPU revision\t: 1\n", "d04170"),
}


class Layout:
    """Where things live in --workdir."""

    def __init__(self, workdir: Path) -> None:
        self.workdir = workdir
        self.debs = workdir / "debs"
        self.qemu = workdir / "qemu" / "usr" / "bin" / "qemu-aarch64-static"
        self.mmdebstrap = workdir / "mmdebstrap"
        self.root = workdir / "sysroot"
        self.root_stamp = workdir / "sysroot.done"
        self.venv = workdir / "venv"
        self.site = self.venv / "lib" / "python3.11" / "site-packages"
        self.deps_stamp = workdir / "venv-deps.json"
        self.wheels = workdir / "wheels"
        self.runs = workdir / "runs"

    def sysroot_ready(self) -> bool:
        return self.root_stamp.is_file() and self.root_stamp.read_text() == " ".join(SYSROOT_PACKAGES)


def which(name: str, path: Optional[str]) -> Optional[str]:
    return shutil.which(name, path=path)


def debian_mirror() -> str:
    """The host apt's Debian mirror (not its security one), else deb.debian.org."""
    for source in sorted(glob.glob("/etc/apt/sources.list.d/*.sources")):
        with contextlib.suppress(OSError):
            for line in Path(source).read_text().splitlines():
                if line.startswith("URIs:") and line.split()[1:]:
                    uri = line.split()[1]
                    if "security" not in uri:
                        return uri.rstrip("/")
    with contextlib.suppress(OSError):
        for line in Path("/etc/apt/sources.list").read_text().splitlines():
            parts = line.split()
            if len(parts) >= 3 and parts[0] == "deb" and "security" not in parts[1]:
                return parts[1].rstrip("/")
    return DEFAULT_MIRROR


def apt_download(package: str, layout: Layout, tools: Optional[str]) -> Path:
    existing = sorted(layout.debs.glob(f"{package}_*.deb"))
    if existing:
        return existing[-1]
    layout.debs.mkdir(parents=True, exist_ok=True)
    result = subprocess.run([which("apt-get", tools), "download", package], cwd=layout.debs, capture_output=True,
                            text=True, timeout=600)
    found = sorted(layout.debs.glob(f"{package}_*.deb"))
    if result.returncode != 0 or not found:
        raise Missing(f"apt-get download {package} failed (no network access to the Debian mirror, or no "
                      f"package index: apt-get update): {last_line(result.stderr)}")
    return found[-1]


def extract_deb(deb: Path, target: Path, tools: Optional[str], member: Optional[str] = None) -> None:
    target.mkdir(parents=True, exist_ok=True)
    if member is None:
        run_step([which("dpkg-deb", tools), "-x", str(deb), str(target)], f"dpkg-deb -x {deb.name}", 300)
        return
    tar = subprocess.Popen([which("dpkg-deb", tools), "--fsys-tarfile", str(deb)], stdout=subprocess.PIPE)
    try:
        run_step(["tar", "-x", "-C", str(target), member], f"unpacking {member} from {deb.name}", 300,
                 stdin=tar.stdout)
    finally:
        tar.stdout.close()
        tar.wait()


def ensure_qemu(layout: Layout, qemu: Optional[str], tools: Optional[str]) -> str:
    if qemu:
        return qemu
    deb = apt_download("qemu-user-static", layout, tools)
    extract_deb(deb, layout.workdir / "qemu", tools, "./usr/bin/qemu-aarch64-static")
    if not layout.qemu.is_file():
        raise Failed(f"{deb.name} has no usr/bin/qemu-aarch64-static")
    return str(layout.qemu)


def ensure_sysroot(layout: Layout, mirror: str, tools: Optional[str]) -> None:
    if layout.sysroot_ready():
        return
    deb = apt_download("mmdebstrap", layout, tools)
    shutil.rmtree(layout.mmdebstrap, ignore_errors=True)
    extract_deb(deb, layout.mmdebstrap, tools)
    staging = layout.workdir / "sysroot.tmp"
    shutil.rmtree(staging, ignore_errors=True)
    shutil.rmtree(layout.root, ignore_errors=True)
    env = {**os.environ, "PATH": f"{layout.mmdebstrap / 'usr' / 'bin'}:{os.path.dirname(which('apt-get', tools))}:"
                                 f"{os.environ.get('PATH', '/usr/bin:/bin')}"}
    log(f"building the arm64 sysroot ({SUITE}, {mirror})")
    run_step(["mmdebstrap", "--quiet", "--arch=arm64", "--variant=extract", "--mode=chrootless",
              f"--include={','.join(SYSROOT_PACKAGES)}", SUITE, str(staging), mirror],
             "mmdebstrap (arm64 sysroot)", 1200, env=env)
    if not (staging / GUEST_PYTHON).exists():
        raise Failed(f"mmdebstrap left no {GUEST_PYTHON} in the sysroot")
    staging.rename(layout.root)
    layout.root_stamp.write_text(" ".join(SYSROOT_PACKAGES))


def write_board_files(layout: Layout, cpu: str) -> None:
    """/proc/cpuinfo and /proc/device-tree/model of the board whose CPU is emulated:
    qemu -L finds them in the sysroot before the host's."""
    model, core, revision = CPUS[cpu]
    proc = layout.root / "proc"
    (proc / "device-tree").mkdir(parents=True, exist_ok=True)
    text = "".join(f"processor\t: {i}\n{core}\n" for i in range(4))
    text += f"Revision\t: {revision}\nSerial\t\t: 0000000000000000\nModel\t\t: {model}\n"
    (proc / "cpuinfo").write_text(text)
    (proc / "device-tree" / "model").write_bytes(model.encode() + b"\0")
