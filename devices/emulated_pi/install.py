"""The emulated venv and what is installed in it: edgecnn[runtime] from a wheel of the
checkout, with pytest, as a Pi would get it.

pip never runs under emulation (it would take many minutes): the host pip resolves the
aarch64 wheels for the target Python and installs them into the venv's site-packages,
pinned to the host's versions of the runtime's dependencies so that both sides run the
same library releases.
"""
from __future__ import annotations

import contextlib
import json
import shutil
import subprocess
import tempfile
import zipfile
from pathlib import Path
from typing import Dict, List

from devices.emulated_pi.steps import Failed, log, program, run_step
from devices.emulated_pi.sysroot import GUEST_PYTHON, Layout

# Runtime dependencies whose aarch64 wheels are pinned to the host's versions.
PINNED = ("numpy", "opencv-python", "onnxruntime", "ai-edge-litert", "tqdm")
WHEEL_PLATFORMS = ["manylinux2014_aarch64"] + [f"manylinux_2_{v}_aarch64" for v in (17, 27, 28, 31, 34, 35, 36)]


def target_options() -> List[str]:
    """pip's options that select wheels for the emulated Python (CPython 3.11, aarch64)."""
    options = ["--only-binary=:all:", "--python-version", "3.11", "--implementation", "cp", "--abi", "cp311"]
    for name in WHEEL_PLATFORMS:
        options += ["--platform", name]
    return options


def ensure_venv(layout: Layout, qemu: str) -> None:
    """A venv whose python is a shell wrapper around qemu, so that sys.executable is a
    host-executable file and subprocesses of the emulated Python work."""
    wrapper = layout.venv / "bin" / "python3.11"
    if (layout.venv / "pyvenv.cfg").is_file() and wrapper.is_file() and not wrapper.is_symlink():
        content = wrapper.read_text()
        if qemu in content and str(layout.root) in content:
            return
    shutil.rmtree(layout.venv, ignore_errors=True)
    layout.deps_stamp.unlink(missing_ok=True)
    run_step([qemu, "-L", str(layout.root), str(layout.root / GUEST_PYTHON), "-m", "venv", "--without-pip",
              str(layout.venv)], "creating the emulated venv", 600)
    for name in ("python", "python3", "python3.11"):
        (layout.venv / "bin" / name).unlink(missing_ok=True)
    wrapper.write_text(f'#!/bin/sh\nexec "{qemu}" -L "{layout.root}" -cpu "${{QEMU_CPU:-cortex-a76}}" -0 "$0" '
                       f'"{layout.root / GUEST_PYTHON}" "$@"\n')
    wrapper.chmod(0o755)
    for name in ("python", "python3"):
        (layout.venv / "bin" / name).symlink_to("python3.11")
    script = layout.venv / "bin" / "edgecnn"
    script.write_text(f"#!{layout.venv / 'bin' / 'python'}\n" + Path(program("edgecnn_command")).read_text())
    script.chmod(0o755)


def build_wheel(repo: Path, host_python: str, layout: Layout) -> Path:
    """An edgecnn wheel from the checkout, built from a copy so the tree gets no build/."""
    shutil.rmtree(layout.wheels, ignore_errors=True)
    layout.wheels.mkdir(parents=True)
    with tempfile.TemporaryDirectory(prefix="edgecnn-src-") as source:
        for name in ("pyproject.toml", "README.md", "LICENSE", "setup.cfg", "setup.py", "MANIFEST.in"):
            if (repo / name).is_file():
                shutil.copy2(repo / name, source)
        for package in ("edgecnn", "converters", "devices"):
            shutil.copytree(repo / package, Path(source) / package,
                            ignore=shutil.ignore_patterns("__pycache__", "*.pyc", "*.egg-info"))
        # The host's own setuptools when it is recent enough; else pip fetches one.
        isolation = ["--no-build-isolation"] if _has_setuptools(host_python) else []
        run_step([host_python, "-m", "pip", "wheel", "--no-deps", *isolation, "-q", "-w", str(layout.wheels), source],
                 "building the edgecnn wheel", 600)
    wheels = sorted(layout.wheels.glob("edgecnn-*.whl"))
    if not wheels:
        raise Failed("pip wheel wrote no edgecnn wheel")
    return wheels[-1]


def _has_setuptools(host_python: str) -> bool:
    result = subprocess.run([host_python, "-c", "import setuptools, sys; "
                             "sys.exit(int(setuptools.__version__.split('.')[0]) < 68)"], capture_output=True)
    return result.returncode == 0


def wheel_requires(wheel: Path) -> List[str]:
    """The Requires-Dist lines of the wheel's METADATA, sorted."""
    with zipfile.ZipFile(wheel) as archive:
        name = next((n for n in archive.namelist() if n.endswith(".dist-info/METADATA")), None)
        text = archive.read(name).decode("utf-8", "replace") if name else ""
    return sorted(line.split(":", 1)[1].strip() for line in text.splitlines() if line.startswith("Requires-Dist:"))


def install_into_venv(layout: Layout, wheel: Path, host_python: str, pins: Dict[str, str]) -> dict:
    """edgecnn[runtime] from the wheel, with the aarch64 wheels of its dependencies
    resolved by the host pip for the target, plus pytest. Dependencies are installed
    once per set of pins and of the wheel's own requirements (a dependency the checkout
    gains is installed at the next run); the edgecnn wheel every run."""
    wanted = {"pins": pins, "platforms": WHEEL_PLATFORMS, "extra": ["pytest"], "requires": wheel_requires(wheel)}
    current = None
    with contextlib.suppress(OSError, ValueError):
        current = json.loads(layout.deps_stamp.read_text())
    common = [host_python, "-m", "pip", "install", "-q", "--disable-pip-version-check", "--no-compile",
              "--no-warn-script-location", "--target", str(layout.site), *target_options()]
    if current != wanted:
        log("resolving aarch64 wheels on the host: " + ", ".join(f"{k}=={v}" for k, v in sorted(pins.items())))
        shutil.rmtree(layout.site, ignore_errors=True)
        layout.site.mkdir(parents=True)
        pins_file = layout.workdir / "pins.txt"
        pins_file.write_text("".join(f"{name}=={version}\n" for name, version in sorted(pins.items())))
        run_step([*common, "-c", str(pins_file), f"edgecnn[runtime] @ {wheel.as_uri()}", "pytest"],
                 "installing edgecnn[runtime] and pytest (aarch64 wheels)", 1800)
        layout.deps_stamp.write_text(json.dumps(wanted))
    else:
        run_step([*common, "--no-deps", "--upgrade", str(wheel)], "installing the edgecnn wheel", 600)
    for stray in ("bin",):  # console scripts pip wrote for the host's Python
        shutil.rmtree(layout.site / stray, ignore_errors=True)
    return {"wheel": wheel.name}
