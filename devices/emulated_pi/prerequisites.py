"""What a run needs, checked before anything is downloaded or built, so that a missing
tool, network or disk is one line naming it (exit 2) instead of a failure minutes in."""
from __future__ import annotations

import json
import platform
import re
import shutil
import subprocess
import urllib.error
import urllib.request
from pathlib import Path
from typing import Dict, Optional, Tuple

from devices.emulated_pi.install import PINNED, target_options
from devices.emulated_pi.steps import Missing, last_line, program
from devices.emulated_pi.sysroot import SUITE, Layout, which

NEEDED_FREE_BYTES = 2 * 1024 ** 3  # sysroot ~0.3 GB, wheels ~0.4 GB, unpacked site-packages ~0.6 GB


def check_prerequisites(args, layout: Layout) -> Tuple[str, Optional[str]]:
    """Everything a run needs before it starts; each failure is one Missing line.
    Returns (how qemu is obtained, path of qemu-aarch64-static if present)."""
    if platform.system() != "Linux":
        raise Missing(f"the emulated Pi needs a Linux host (qemu-user); this is {platform.system()}")
    tools = args.tools_path
    qemu = str(layout.qemu) if layout.qemu.is_file() else which("qemu-aarch64-static", tools)
    have_apt = which("apt-get", tools) and which("dpkg-deb", tools)
    if not qemu and not have_apt:
        raise Missing("no emulator: qemu-aarch64-static is not on PATH and apt-get/dpkg-deb are not there to "
                      "download it (apt-get download qemu-user-static)")
    need_sysroot = not layout.sysroot_ready()
    if need_sysroot and not have_apt:
        raise Missing("cannot build the arm64 sysroot: apt-get/dpkg-deb are not on PATH (needed to fetch mmdebstrap "
                      "and the Debian packages)")
    if need_sysroot or not qemu:
        mirror = args.mirror
        try:
            with urllib.request.urlopen(f"{mirror}/dists/{SUITE}/Release", timeout=20) as response:
                response.read(64)
        except (urllib.error.URLError, OSError, ValueError) as exc:
            reason = getattr(exc, "reason", None) or exc
            raise Missing(f"no network access to the Debian mirror {mirror} (needed for the arm64 sysroot): "
                          f"{reason}") from None
    free = shutil.disk_usage(_existing_parent(layout.workdir)).free
    if free < NEEDED_FREE_BYTES and not (layout.sysroot_ready() and layout.deps_stamp.is_file()):
        raise Missing(f"not enough disk: {free / 1024 ** 3:.1f} GB free under {layout.workdir}, the emulated Pi needs "
                      f"{NEEDED_FREE_BYTES / 1024 ** 3:.0f} GB")
    return ("cached" if layout.qemu.is_file() else "host" if qemu else "download"), qemu


def check_index(host_python: str, pins: Dict[str, str]) -> None:
    """The package index answers and has aarch64 wheels of the runtime for Python 3.11."""
    name = "ai-edge-litert"
    command = [host_python, "-m", "pip", "index", "versions", "--timeout", "20", "--retries", "1",
               *target_options(), name]
    result = subprocess.run(command, capture_output=True, text=True, timeout=300)
    found = re.search(r"Available versions: (.*)", result.stdout)
    if result.returncode != 0 or not found:
        errors = [line for line in result.stderr.splitlines() if "Error" in line or "error" in line.lower()]
        connection = next((line for line in errors if "connection" in line.lower() or "resolve" in line.lower()), None)
        if connection:
            raise Missing(f"no network access to the package index (pip index versions {name}): "
                          f"{_short(connection)}")
        raise Missing(f"the package index has no aarch64 wheels of {name} for Python 3.11, or cannot be reached "
                      f"(pip index versions: {last_line(result.stderr or result.stdout)})")
    if name in pins and pins[name] not in [v.strip() for v in found.group(1).split(",")]:
        raise Missing(f"no aarch64 wheel of {name}=={pins[name]} for Python 3.11 on the package index (the host has "
                      f"it; aarch64 has {found.group(1).split(',')[0].strip()})")


def host_versions(host_python: str, env: dict) -> Dict[str, str]:
    """The host's versions of PINNED; the host Python must import edgecnn's runtime."""
    try:
        result = subprocess.run([host_python, program("host_versions"), *PINNED], capture_output=True, text=True,
                                timeout=300, env=env)
    except OSError as exc:
        raise Missing(f"host Python {host_python}: {exc.strerror or exc}") from None
    if result.returncode != 0:
        raise Missing(f"host Python {host_python} cannot import edgecnn's runtime (pip install -e '.[runtime]'): "
                      f"{last_line(result.stderr)}")
    return json.loads(result.stdout)


def _short(line: str) -> str:
    match = re.search(r"(Failed to establish a new connection: [^'\"]*|Name or service not known|"
                      r"Temporary failure in name resolution|Connection refused|timed out)", line)
    return match.group(1) if match else line.strip()[:200]


def _existing_parent(path: Path) -> Path:
    while not path.exists():
        path = path.parent
    return path
