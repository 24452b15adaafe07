"""Which device is this, and what suits it.

Recognition reads the same files a person would check: /proc/device-tree/model
(Raspberry Pi and most ARM boards), /etc/nv_tegra_release (Jetson), /proc/cpuinfo
(ISA flags) and the thermal/cpufreq sysfs nodes. `root` lets tests point at fixture
files instead of the real filesystem. Imports nothing beyond the standard library.
"""
from __future__ import annotations

import os
import platform
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Dict, List, Optional

# Backends each kind of device prefers, in the backend grammar (edgecnn.runtime.backends):
# a backend named without options takes its options from here, and where a file could
# run on several, the first installed one that runs it is chosen. Providers listed here
# are preferences (the ones this onnxruntime build lacks are left out); providers a
# user names must exist. tflite-runtime (the same interpreter as litert) stands in for
# litert before another engine, such as OpenVINO, runs a .tflite file.
PREFERRED_BACKENDS = {
    "jetson": ["onnxruntime:providers=TensorrtExecutionProvider,CUDAExecutionProvider,CPUExecutionProvider",
               "litert", "tflite-runtime"],
    "raspberry-pi": ["litert", "tflite-runtime", "onnxruntime"],
    "desktop": ["litert", "tflite-runtime", "onnxruntime"],
}

INTERESTING_FLAGS = ("avx2", "avx512f", "avx512_vnni", "avx_vnni", "amx_int8", "neon", "asimd", "asimddp",
                     "fphp", "sve")


@dataclass
class DeviceProfile:
    kind: str  # "raspberry-pi" | "jetson" | "desktop"
    model: str  # human-readable board or CPU name
    machine: str  # uname -m
    cores: int
    isa_flags: List[str] = field(default_factory=list)
    preferred_backends: List[str] = field(default_factory=list)  # backend grammar, PREFERRED_BACKENDS
    default_threads: int = 1
    camera: str = "v4l2"  # "picamera2" | "nvargus" | "v4l2"

    def to_dict(self) -> Dict[str, Any]:
        return asdict(self)

    @property
    def int8_dot_products_saturate(self) -> bool:
        """x86-64 without VNNI: onnxruntime's default u8s8 int8 kernel (VPMADDUBSW) sums
        pairs in 16 bits and saturates; its exact kernel must be asked for."""
        return self.machine in ("x86_64", "AMD64") and not {"avx512_vnni", "avx_vnni"} & set(self.isa_flags)


def _read(root: Path, relative: str) -> Optional[str]:
    try:
        return (root / relative.lstrip("/")).read_text(errors="replace").replace("\x00", "").strip()
    except OSError:
        return None


def cpu_flags(cpuinfo: str) -> List[str]:
    """ISA flags that matter for inference speed, from /proc/cpuinfo text (x86 or ARM)."""
    flags: set = set()
    for line in cpuinfo.splitlines():
        key, _, value = line.partition(":")
        if key.strip().lower() in ("flags", "features"):
            flags.update(value.split())
    return sorted(flag for flag in flags if flag in INTERESTING_FLAGS)


def cpu_name(cpuinfo: str) -> Optional[str]:
    for line in cpuinfo.splitlines():
        key, _, value = line.partition(":")
        if key.strip().lower() in ("model name", "hardware", "cpu model") and value.strip():
            return value.strip()
    return None


def detect(root: str = "/") -> DeviceProfile:
    """Recognise the device whose filesystem is mounted at `root`."""
    base = Path(root)
    board = _read(base, "/proc/device-tree/model") or ""
    tegra = _read(base, "/etc/nv_tegra_release")
    cpuinfo = _read(base, "/proc/cpuinfo") or ""
    cores = os.cpu_count() or 1
    machine = platform.machine()
    flags = cpu_flags(cpuinfo)
    if tegra is not None or "jetson" in board.lower():
        return DeviceProfile("jetson", board or "NVIDIA Jetson", machine, cores, flags,
                             list(PREFERRED_BACKENDS["jetson"]), cores, "nvargus")
    if "raspberry pi" in board.lower():
        return DeviceProfile("raspberry-pi", board, machine, cores, flags, list(PREFERRED_BACKENDS["raspberry-pi"]),
                             cores, "picamera2")
    return DeviceProfile("desktop", board or cpu_name(cpuinfo) or platform.processor() or machine, machine,
                         cores, flags, list(PREFERRED_BACKENDS["desktop"]), cores, "v4l2")
