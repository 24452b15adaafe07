"""A device fingerprint for benchmark results: what a latency figure was measured on.

A number without its device is not comparable: the same model runs 10x apart on a
Raspberry Pi and a desktop, and 2x apart on one Pi hot and cold. So every bench
record carries the board, CPU, ISA flags, OS and library versions, plus a thermal
snapshot (temperatures, clocks, the Pi firmware's throttle bits) taken before and
after the timed runs, from which `throttling_seen` judges whether the run was slowed.

Reads the same files as devices/profile.py; `root` points tests at fixture trees.
Standard library only: library versions come from package metadata, not imports.
"""
from __future__ import annotations

import hashlib
import platform
import sys
from importlib import metadata
from pathlib import Path
from typing import Any, Dict, List, Optional, Sequence

from devices.profile import _read, cpu_flags, cpu_name, detect

# what to call a library -> its distribution name(s), the first one installed wins. The
# inference engines' own come from the caller (the backend registry, which sits above).
LIBRARIES = {
    "numpy": ("numpy",),
    "opencv": ("opencv-python", "opencv-python-headless", "opencv-contrib-python",
               "opencv-contrib-python-headless"),
    "edgecnn": ("edgecnn",),
}
# modules to ask for __version__ when a library was installed without metadata (apt)
MODULES = {"numpy": "numpy", "opencv": "cv2", "onnxruntime": "onnxruntime"}

# Raspberry Pi firmware throttle bits (vcgencmd get_throttled): now / since boot
PI_THROTTLED_NOW = 0x2 | 0x4 | 0x8  # frequency capped, throttled, soft temperature limit
PI_THROTTLED_SINCE_BOOT = 0x20000 | 0x40000 | 0x80000
PI_THROTTLED_FILES = ("/sys/devices/platform/soc/soc:firmware/get_throttled",
                      "/sys/devices/platform/axi/axi:firmware/get_throttled")
CLOCK_DROP = 0.9  # a core clock below 90% of its value before the run counts as throttling
# ARM cores (implementer 0x41) by "CPU part": arm64 /proc/cpuinfo names no CPU model
ARM_PARTS = {"0xd03": "Cortex-A53", "0xd04": "Cortex-A35", "0xd05": "Cortex-A55", "0xd07": "Cortex-A57",
             "0xd08": "Cortex-A72", "0xd09": "Cortex-A73", "0xd0a": "Cortex-A75", "0xd0b": "Cortex-A76",
             "0xd0c": "Neoverse-N1", "0xd0d": "Cortex-A77", "0xd40": "Neoverse-V1", "0xd41": "Cortex-A78",
             "0xd42": "Cortex-A78AE", "0xd44": "Cortex-X1", "0xd46": "Cortex-A510", "0xd47": "Cortex-A710",
             "0xd4f": "Neoverse-V2"}


def library_versions(engines: Optional[Dict[str, Sequence[str]]] = None) -> Dict[str, Optional[str]]:
    """Installed versions of the libraries a figure depends on; `engines`: more of them
    (name -> distributions), such as each inference backend's."""
    versions: Dict[str, Optional[str]] = {}
    for name, distributions in {**LIBRARIES, **(engines or {})}.items():
        versions[name] = None
        for distribution in distributions:
            try:
                versions[name] = metadata.version(distribution)
                break
            except metadata.PackageNotFoundError:
                continue
        module = sys.modules.get(MODULES.get(name, ""))
        if versions[name] is None and module is not None:
            versions[name] = getattr(module, "__version__", None)
    return versions


def arm_cores(cpuinfo: str) -> Optional[str]:
    """'4x Cortex-A76' from arm64 /proc/cpuinfo ('CPU implementer' 0x41 with a 'CPU part');
    on big.LITTLE chips the highest part number (the big cores) first. None when no ARM
    part is listed."""
    counts: Dict[str, int] = {}
    implementer = None
    for line in cpuinfo.splitlines():
        key, _, value = line.partition(":")
        key, value = key.strip().lower(), value.strip().lower()
        if key == "cpu implementer":
            implementer = value
        elif key == "cpu part" and implementer == "0x41":
            counts[value] = counts.get(value, 0) + 1
    if not counts:
        return None
    ordered = sorted(counts, key=lambda part: int(part, 16) if part.startswith("0x") else 0, reverse=True)
    return " + ".join(f"{counts[p]}x {ARM_PARTS.get(p, f'ARM part {p}')}" for p in ordered)


def os_name(root: Path) -> str:
    release = _read(root, "/etc/os-release") or ""
    for line in release.splitlines():
        key, _, value = line.partition("=")
        if key == "PRETTY_NAME":
            return value.strip().strip('"')
    return platform.platform()


def fingerprint(root: str = "/", name: Optional[str] = None,
                engines: Optional[Dict[str, Sequence[str]]] = None) -> Dict[str, Any]:
    """Static facts about the device (they do not change during a run); `engines` as
    for library_versions."""
    base = Path(root)
    profile = detect(root)
    cpuinfo = _read(base, "/proc/cpuinfo") or ""
    cpu = cpu_name(cpuinfo) or arm_cores(cpuinfo) or platform.processor() or profile.machine
    facts = {
        "kind": profile.kind,
        "board": profile.model,
        "cpu": cpu,
        "machine": profile.machine,
        "cores": profile.cores,
        "isa_flags": cpu_flags(cpuinfo),
        "os": os_name(base),
        "kernel": platform.release(),
        "python": platform.python_version(),
        "versions": library_versions(engines),
    }
    identity = "|".join(str(facts[k]) for k in ("board", "cpu", "machine", "cores", "isa_flags"))
    facts["id"] = hashlib.sha256(identity.encode()).hexdigest()[:12]
    facts["name"] = name or default_name(facts)
    return facts


def default_name(facts: Dict[str, Any]) -> str:
    """A short label for tables: the board for Pi/Jetson, the CPU and cores otherwise."""
    if facts["kind"] == "desktop":
        return f"{facts['cpu']} ({facts['cores']} cores)"
    return str(facts["board"])


def _zone_temperatures(base: Path) -> Dict[str, Any]:
    zones: Dict[str, Any] = {}
    for zone in sorted((base / "sys/class/thermal").glob("thermal_zone*")):
        temp = _number(zone / "temp")
        if temp is None:
            continue
        label = (_text(zone / "type") or zone.name)
        if label in zones:
            label = f"{label}-{zone.name[len('thermal_zone'):]}"
        passive = [_number(zone / f"trip_point_{i}_temp") for i in range(16)
                   if _text(zone / f"trip_point_{i}_type") == "passive"]
        passive = [t for t in passive if t]
        zones[label] = {"c": round(temp / 1000.0, 1),
                        "passive_trip_c": round(min(passive) / 1000.0, 1) if passive else None}
    return zones


def _cpu_clocks(base: Path) -> Dict[str, Any]:
    current: List[float] = []
    maximum: List[float] = []
    cpus = sorted((base / "sys/devices/system/cpu").glob("cpu[0-9]*"), key=lambda p: int(p.name[3:]))
    for cpu in cpus:
        khz = _number(cpu / "cpufreq/scaling_cur_freq")
        if khz is not None:
            current.append(round(khz / 1000.0, 1))
            top = _number(cpu / "cpufreq/cpuinfo_max_freq")
            if top is not None:
                maximum.append(round(top / 1000.0, 1))
    return {"mhz": current, "max_mhz": max(maximum) if maximum else None}


def thermal_snapshot(root: str = "/") -> Dict[str, Any]:
    """Temperatures (deg C), core clocks (MHz) and Pi throttle bits, where readable."""
    base = Path(root)
    snapshot: Dict[str, Any] = {"temps": _zone_temperatures(base), **_cpu_clocks(base)}
    for relative in PI_THROTTLED_FILES:
        text = _read(base, relative)
        if text:
            try:
                snapshot["pi_throttled"] = int(text, 16)
            except ValueError:
                pass
            break
    return snapshot


def throttling_seen(before: Dict[str, Any], after: Dict[str, Any]) -> List[str]:
    """Reasons to believe the CPU was slowed during the run (empty: none seen).

    A run counts as throttled when the Pi firmware says so, a core clock fell below
    90% of its value before the run, or a temperature reached its zone's passive trip
    point (where the kernel starts cutting clocks).
    """
    reasons = []
    bits_after = after.get("pi_throttled")
    if bits_after is not None:
        bits_before = before.get("pi_throttled") or 0
        new_since_boot = (bits_after & ~bits_before) & PI_THROTTLED_SINCE_BOOT
        if bits_after & PI_THROTTLED_NOW or new_since_boot:
            reasons.append(f"firmware reports throttling (get_throttled=0x{bits_after:x})")
    clocks_before, clocks_after = before.get("mhz") or [], after.get("mhz") or []
    if clocks_before and len(clocks_before) == len(clocks_after):
        if max(clocks_after) < CLOCK_DROP * max(clocks_before):
            reasons.append(f"CPU clock fell from {max(clocks_before):.0f} to {max(clocks_after):.0f} MHz")
    for label, zone in (after.get("temps") or {}).items():
        trip = zone.get("passive_trip_c")
        if trip is not None and zone["c"] >= trip:
            reasons.append(f"{label} at {zone['c']:.0f} C, at or above its {trip:.0f} C throttle point")
    return reasons


def _text(path: Path) -> Optional[str]:
    try:
        return path.read_text(errors="replace").strip()
    except OSError:
        return None


def _number(path: Path) -> Optional[float]:
    text = _text(path)
    try:
        return float(text) if text else None
    except ValueError:
        return None

