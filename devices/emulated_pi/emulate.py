"""One run from start to end: the prerequisites, the emulated Pi set up (or reused from
--workdir, which a lock keeps to one run at a time), then the checks."""
from __future__ import annotations

import contextlib
import fcntl
import json
import time
from pathlib import Path
from typing import Dict, Iterator

from devices.emulated_pi.checks import host_environment, run_checks
from devices.emulated_pi.install import build_wheel, ensure_venv, install_into_venv
from devices.emulated_pi.prerequisites import check_index, check_prerequisites, host_versions
from devices.emulated_pi.steps import Missing
from devices.emulated_pi.sysroot import Layout, ensure_qemu, ensure_sysroot, write_board_files


@contextlib.contextmanager
def workdir_lock(workdir: Path) -> Iterator[None]:
    workdir.mkdir(parents=True, exist_ok=True)
    with open(workdir / ".lock", "w") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            raise Missing(f"{workdir} is in use by another emulated_pi.py run; wait for it or pass --workdir") from None
        yield


def emulate(args) -> dict:
    repo = Path(args.repo).resolve()
    if not (repo / "pyproject.toml").is_file() or not (repo / "edgecnn").is_dir():
        raise Missing(f"{repo}: not an edgecnn checkout (no pyproject.toml and edgecnn/); pass --repo")
    onnx_model = repo / "tests" / "data" / "models" / "shapes_detector.onnx"
    if not onnx_model.is_file():
        raise Missing(f"{onnx_model}: missing (it is committed with the tests)")
    if args.frames < 1 or args.raw_frames < 0 or args.camera_frames < 0:
        raise Missing("--frames must be >= 1, --raw-frames and --camera-frames >= 0")
    layout = Layout(Path(args.workdir).resolve())
    timings: Dict[str, float] = {}
    started = time.perf_counter()
    how, qemu = check_prerequisites(args, layout)
    with workdir_lock(layout.workdir):
        host_python = args.host_python
        pins = host_versions(host_python, host_environment(repo))
        current = None
        with contextlib.suppress(OSError, ValueError):
            current = json.loads(layout.deps_stamp.read_text())
        if not current or current.get("pins") != pins:
            check_index(host_python, pins)
        qemu = ensure_qemu(layout, qemu, args.tools_path)
        ensure_sysroot(layout, args.mirror, args.tools_path)
        write_board_files(layout, args.cpu)
        ensure_venv(layout, qemu)
        timings["setup_sysroot_venv_s"] = round(time.perf_counter() - started, 1)
        mark = time.perf_counter()
        wheel = build_wheel(repo, host_python, layout)
        installed = install_into_venv(layout, wheel, host_python, pins)
        timings["wheel_build_install_s"] = round(time.perf_counter() - mark, 1)
        return run_checks(args, repo, layout, qemu, how, host_python, onnx_model, installed, timings, started)
