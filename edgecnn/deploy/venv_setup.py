"""The device's venv for a release: made once per edgecnn build, extras and Python
(the key), then shared by every release that needs the same, so that an update which
changes only a model or the config installs nothing.

pip installs from the device's package index, or only from what the desktop sent
(the edgecnn wheel, and a wheelhouse of its dependencies for a device without
internet). pip's cache lives under the deploy's root, so --remove takes it too. A venv
is marked complete last: one left half made by a lost connection is made again.

Runs on the device, sent over ssh: standard library only, Python 3.9.
"""
from __future__ import annotations

import os
import shutil
import subprocess
from typing import Dict, List, Optional

from edgecnn.deploy.layout import COMPLETE, Layout

PIP_SECONDS = 3600  # pip on a small board, building nothing, over a slow link
MADE_WITH = ".edgecnn-python"  # the Python a venv was made from, and its --system-site-packages
CHECK = "import edgecnn.runtime.runner, edgecnn.runtime.config; import yaml, jsonschema"


class SetupError(Exception):
    """What went wrong, with pip's last lines."""


def _tail(text: str, lines: int = 8) -> str:
    """pip's errors (its ERROR: lines) where it printed any, else its last lines."""
    kept = [line.strip() for line in (text or "").splitlines() if line.strip()]
    errors = [line for line in kept if line.startswith("ERROR:")]
    return " | ".join((errors or kept)[-lines:])


def _site_packages(directory: str) -> List[str]:
    lib = os.path.join(directory, "lib")
    return [os.path.join(lib, name, "site-packages") for name in sorted(os.listdir(lib))
            if os.path.isdir(os.path.join(lib, name, "site-packages"))] if os.path.isdir(lib) else []


def _seed(layout: Layout, key: str, directory: str, python: str, system_site_packages: bool) -> bool:
    """Fill the new venv's site-packages with hard links to those of the newest complete
    venv made by the same Python the same way: pip then installs only what differs
    (this build of edgecnn, a new extra) in seconds instead of minutes. Safe to share:
    pip removes a file before it writes one of the same name, and never writes into one."""
    sources = [other for other in layout.complete_venvs() if other != key and
               _made_with(layout.venv(other)) == (os.path.realpath(python), system_site_packages)]
    if not sources:
        return False
    source = max(sources, key=lambda other: os.path.getmtime(layout.venv(other)))
    old, new = _site_packages(layout.venv(source)), _site_packages(directory)
    if len(old) != 1 or len(new) != 1:
        return False
    shutil.rmtree(new[0])
    copied = subprocess.run(["cp", "-al", old[0], new[0]], stdin=subprocess.DEVNULL, capture_output=True, timeout=600)
    if copied.returncode != 0:  # another filesystem, or no cp -l: install everything instead
        shutil.rmtree(new[0], ignore_errors=True)
        os.makedirs(new[0])
        return False
    return True


def _made_with(directory: str):
    """(the Python a venv was made from, whether it sees system packages), from the
    marker make_venv writes."""
    try:
        with open(os.path.join(directory, MADE_WITH), encoding="utf-8") as handle:
            python, system = handle.read().split("\n")[:2]
        return python, system == "True"
    except (OSError, ValueError):
        return None


def make_venv(layout: Layout, key: str, python: str, requirements: List[str], find_links: Optional[str],
              no_index: bool, system_site_packages: bool) -> Dict:
    """The venv for `key`, made now unless a complete one exists."""
    directory = layout.venv(key)
    if layout.venv_complete(key):
        return {"venv": key, "made": False}
    shutil.rmtree(directory, ignore_errors=True)
    os.makedirs(layout.venvs, mode=0o755, exist_ok=True)
    argv = [python, "-m", "venv", *(["--system-site-packages"] if system_site_packages else []), directory]
    try:
        made = subprocess.run(argv, stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=600)
    except OSError as exc:
        raise SetupError(f"cannot run {python}: {exc.strerror or exc}") from None
    if made.returncode != 0:
        raise SetupError(f"{python} -m venv failed: {_tail(made.stderr or made.stdout, 3)} (Debian and Raspberry Pi "
                         f"OS: apt-get install python3-venv)")
    seeded = _seed(layout, key, directory, python, system_site_packages)
    pip = [os.path.join(directory, "bin", "python"), "-m", "pip", "install", "--disable-pip-version-check",
           "--no-input", "--progress-bar", "off"]
    if no_index:
        pip.append("--no-index")
    if find_links:
        pip += ["--find-links", find_links]
    env = {**os.environ, "PIP_CACHE_DIR": layout.pip_cache}
    steps = [pip + list(requirements)]
    wheel = requirements[0].split("[")[0]
    if seeded and wheel.endswith(".whl"):  # pip takes the same version as installed: put this build in its place
        steps.insert(0, pip + ["--force-reinstall", "--no-deps", wheel])
    for argv in steps:
        installed = subprocess.run(argv, stdin=subprocess.DEVNULL, capture_output=True, text=True,
                                   timeout=PIP_SECONDS, env=env)
        if installed.returncode != 0:
            shutil.rmtree(directory, ignore_errors=True)
            raise SetupError(f"pip could not install {' '.join(requirements)}: "
                             f"{_tail(installed.stderr or installed.stdout)}")
    checked = subprocess.run([os.path.join(directory, "bin", "python"), "-c", CHECK], stdin=subprocess.DEVNULL,
                             capture_output=True, text=True, timeout=300)
    if checked.returncode != 0:
        shutil.rmtree(directory, ignore_errors=True)
        raise SetupError(f"the installed edgecnn does not import: {_tail(checked.stderr, 3)}")
    with open(os.path.join(directory, MADE_WITH), "w", encoding="utf-8") as handle:
        handle.write(f"{os.path.realpath(python)}\n{system_site_packages}\n")
    with open(os.path.join(directory, COMPLETE), "w", encoding="utf-8") as handle:
        handle.write(" ".join(requirements) + "\n")
    return {"venv": key, "made": True, "seeded": seeded}
