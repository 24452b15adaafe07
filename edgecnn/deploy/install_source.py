"""What the device's venv installs, at this desktop's edgecnn version:

    from the package index   edgecnn[EXTRAS]==VERSION (the default)
    --wheel [FILE]           a wheel copied from here: FILE, or one built from this
                             checkout (`pip wheel --no-deps`, from a copy so the tree gets
                             no build/; kept in ~/.cache/edgecnn/wheels by the tree's
                             digest, so an unchanged checkout is not built again); its
                             dependencies come from the device's index, or from
    --wheelhouse DIR         a directory of wheels for the device's Python and machine,
                             copied too: then pip uses nothing else (no internet needed)

The venv key names what was installed: an update that changes only the config or a
model finds the venv already there and installs nothing.
"""
from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import List, Optional, Tuple

from edgecnn.core.errors import UserError

PACKAGES = ("edgecnn", "converters", "devices")
PROJECT_FILES = ("pyproject.toml", "README.md", "LICENSE", "setup.cfg", "setup.py", "MANIFEST.in")
UPLOAD = "{upload}"  # where the device unpacked what was sent (edgecnn.deploy.agent.prepare)
BUILDS_KEPT = 3  # wheels of this checkout kept in the cache (about 10 MB each)


@dataclass
class InstallPlan:
    requirements: List[str]
    key: str  # the venv's name on the device
    upload: List[Tuple[str, Path]] = field(default_factory=list)  # (name in the upload, file here)
    no_index: bool = False
    wheelhouse: bool = False
    description: str = ""


def checkout_root() -> Optional[Path]:
    """The source tree this edgecnn is imported from, when it is a checkout."""
    import edgecnn

    root = Path(edgecnn.__file__).resolve().parents[1]
    return root if (root / "pyproject.toml").is_file() and (root / "edgecnn").is_dir() else None


def _tree_files(root: Path) -> List[Path]:
    files = [root / name for name in PROJECT_FILES if (root / name).is_file()]
    for package in PACKAGES:
        for directory, subdirectories, names in os.walk(root / package):
            subdirectories[:] = sorted(d for d in subdirectories if d != "__pycache__" and not d.endswith(".egg-info"))
            files += [Path(directory) / name for name in sorted(names) if not name.endswith(".pyc")]
    return files


def tree_digest(root: Path) -> str:
    digest = hashlib.sha256()
    for path in _tree_files(root):
        digest.update(str(path.relative_to(root)).encode() + b"\0")
        digest.update(hashlib.sha256(path.read_bytes()).digest())
    return digest.hexdigest()


def _cache_dir() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "edgecnn" / "wheels"


def built_wheel(log=print) -> Tuple[Path, str]:
    """A wheel of this checkout (built now unless cached) and the tree's digest."""
    root = checkout_root()
    if root is None:
        raise UserError("--wheel without a file builds one from an edgecnn checkout; this edgecnn is an installed "
                        "package: give --wheel FILE.whl")
    digest = tree_digest(root)
    cached = _cache_dir() / digest[:16]
    wheels = sorted(cached.glob("edgecnn-*.whl"))
    if wheels:
        return wheels[-1], digest
    log(f"building the edgecnn wheel from {root}")
    cached.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="edgecnn-wheel-", dir=cached.parent) as work:
        source, out = Path(work) / "src", Path(work) / "out"
        source.mkdir()
        for path in _tree_files(root):
            target = source / path.relative_to(root)
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(path, target)
        isolation = ["--no-build-isolation"] if _has_setuptools() else []
        built = subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", *isolation, "-q", "-w", str(out),
                                str(source)], capture_output=True, text=True, timeout=900)
        wheels = sorted(out.glob("edgecnn-*.whl"))
        if built.returncode != 0 or not wheels:
            lines = [line for line in built.stderr.splitlines() if line.strip()]
            raise UserError(f"pip wheel could not build edgecnn: {lines[-1] if lines else built.returncode}")
        os.replace(out, cached)  # the directory appears whole, or not at all
    _forget_old_builds(cached.parent)
    return cached / wheels[-1].name, digest


def _forget_old_builds(directory: Path) -> None:
    """Keep the newest BUILDS_KEPT builds: a checkout being edited makes one per change."""
    builds = sorted((path for path in directory.iterdir() if path.is_dir() and not path.name.startswith("edgecnn-")),
                    key=lambda path: path.stat().st_mtime, reverse=True)
    for old in builds[BUILDS_KEPT:]:
        shutil.rmtree(old, ignore_errors=True)


def _has_setuptools() -> bool:
    try:
        import setuptools
    except ImportError:
        return False
    return int(setuptools.__version__.split(".")[0]) >= 68


def _file_digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def check_sources(wheel: Optional[str], wheelhouse: Optional[str]) -> None:
    """--wheel FILE and --wheelhouse DIR as given, before any device is reached."""
    if wheel is None and wheelhouse:
        raise UserError("--wheelhouse goes with --wheel (the edgecnn wheel is not in a wheelhouse of its "
                        "dependencies)")
    if wheel:
        path = Path(wheel)
        if not path.is_file() or path.suffix != ".whl" or not path.name.startswith("edgecnn-"):
            raise UserError(f"--wheel: not an edgecnn wheel file: {wheel}")
    if wheelhouse and not sorted(Path(wheelhouse).glob("*.whl")):
        raise UserError(f"--wheelhouse: no .whl files in {wheelhouse}")


def plan_install(extras: List[str], wheel: Optional[str], wheelhouse: Optional[str], python_id: str,
                 system_site_packages: bool, log=print, built: Optional[Tuple[Path, str]] = None) -> InstallPlan:
    """What pip installs on the device. `wheel` None: from the index; "": built here
    (`built`: the wheel and tree digest built_wheel gave already); else a wheel file.
    `python_id` names the device's Python and machine."""
    import edgecnn

    version = edgecnn.__version__
    names = ",".join(sorted(extras))
    check_sources(wheel, wheelhouse)
    upload: List[Tuple[str, Path]] = []
    if wheel is None:
        requirements = [f"edgecnn[{names}]=={version}"]
        identity, description = f"index {version}", f"edgecnn {version} from the device's package index"
    else:
        if wheel == "":
            path, identity = built or built_wheel(log)
            description = f"a wheel of this checkout ({path.name})"
        else:
            path = Path(wheel)
            identity, description = _file_digest(path), f"the wheel {path.name}"
        upload.append((path.name, path))
        requirements = [f"{UPLOAD}/{path.name}[{names}]"]
    if wheelhouse:
        files = sorted(Path(wheelhouse).glob("*.whl"))
        upload += [(f"wheelhouse/{path.name}", path) for path in files]
        identity += "".join(f" {path.name}" for path in files)
    key_source = "\n".join([identity, names, python_id, str(system_site_packages)])
    key = f"{version}-{hashlib.sha256(key_source.encode()).hexdigest()[:12]}"
    return InstallPlan(requirements=requirements, key=key, upload=upload, no_index=bool(wheelhouse),
                       wheelhouse=bool(wheelhouse), description=description)
