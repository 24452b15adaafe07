"""Running the steps of a check (commands, and the programs/ files under a given Python)
and the two ways one fails: a prerequisite the user can provide (exit 2) or a step
that should have worked (exit 1), each reported in one line."""
from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path
from typing import List, Tuple

PROGRAMS = Path(__file__).resolve().with_name("programs")


class Missing(Exception):
    """A prerequisite or an argument problem: one line on stderr, exit 2."""


class Failed(Exception):
    """A step that should have worked did not: one line on stderr, exit 1."""


def log(message: str) -> None:
    print(f"emulated-pi: {message}", file=sys.stderr, flush=True)


def last_line(text: str) -> str:
    lines = [line.strip() for line in (text or "").strip().splitlines() if line.strip()]
    return lines[-1][:300] if lines else "(no output)"


def run_step(command: List[str], what: str, timeout: float, **kwargs) -> subprocess.CompletedProcess:
    try:
        result = subprocess.run(command, capture_output=True, text=True, timeout=timeout, **kwargs)
    except subprocess.TimeoutExpired:
        raise Failed(f"{what}: timed out after {timeout:.0f} s") from None
    except OSError as exc:
        raise Failed(f"{what}: {exc.strerror or exc}") from None
    if result.returncode != 0:
        raise Failed(f"{what} failed ({result.returncode}): {last_line(result.stderr or result.stdout)}")
    return result


def timed(command: List[str], what: str, timeout: float, **kwargs) -> Tuple[subprocess.CompletedProcess, float]:
    started = time.perf_counter()
    result = run_step(command, what, timeout, **kwargs)
    return result, round(time.perf_counter() - started, 1)


def program(name: str) -> str:
    """The path of programs/NAME.py, to run as `PYTHON PATH ARGS`. The emulated Python
    reads it from the host's file system (qemu -L falls back there for paths not in
    the sysroot)."""
    path = PROGRAMS / f"{name}.py"
    if not path.is_file():
        raise Missing(f"{path}: missing (devices/emulated_pi runs from an edgecnn checkout)")
    return str(path)
