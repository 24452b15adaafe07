"""Which bundled model `edgecnn run` uses when given none: the fastest one on this device
among those that passed their accuracy gate.

The package carries the shapes detector as fp32 and full-int8 TFLite files. int8 is
about 1.5-2x faster on the desktops measured, and faster still on ARM boards, but the
ratio depends on the CPU's int8 instructions and XNNPACK's kernels for it, so it is
measured rather than assumed: each passing file is timed here once (a few ms of
inference each, with the bench's timing loop), and the choice is
cached per device, file and thread count, so later runs start without timing anything.
A file passes when it is the fp32 reference, or when its card records a measured drop
within the budget it was gated at; an int8 file whose card says neither is never picked.

The choice is logged with the figures behind it.
"""
from __future__ import annotations

import hashlib
import json
import os
import platform
from pathlib import Path
from typing import Callable, Dict, List, Optional, Sequence, Tuple

import numpy as np

from edgecnn.core.atomic import write_bytes_atomic
from edgecnn.core.files import sha256_hex

TIMED_RUNS, WARMUP_RUNS = 15, 3


def passes_gate(card) -> bool:
    """fp32 is the reference; a compressed file passes when its card records a drop
    within its budget."""
    if card is None:
        return False
    if card.precision == "fp32":
        return True
    drop, budget = card.metrics.get("drop_points"), card.metrics.get("max_drop_points")
    return drop is not None and budget is not None and float(drop) <= float(budget)


def describe_gate(card) -> str:
    if card.precision == "fp32":
        return "fp32 reference"
    metric = next((key[len("fp32_"):] for key in card.metrics if key.startswith("fp32_")), "accuracy")
    return (f"{card.precision}, {metric} drop {float(card.metrics['drop_points']):.2f} "
            f"within {float(card.metrics['max_drop_points']):.2f} points")


def median_ms(backend, runs: int = TIMED_RUNS, warmup: int = WARMUP_RUNS) -> float:
    """Median inference time of a blank input, with the bench's timing loop: what the
    choice between files of one model needs (same graph and input size, so the content
    barely matters, and a few runs separate 2x apart files)."""
    from edgecnn.runtime.backends import timed_runs

    blob = np.zeros([d if d > 0 else 1 for d in backend.input_shape], np.float32)
    timed_runs(backend.infer, blob, warmup)
    return float(np.median(timed_runs(backend.infer, blob, runs)))


def cache_path() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "edgecnn" / "bundled-choice.json"


def cache_key(paths: Sequence[Path], backend: str, threads: Optional[int]) -> str:
    """This device (CPU, ISA flags, cores), the files' contents and the run's settings."""
    from devices.profile import detect

    profile = detect()
    parts = [profile.model, profile.machine, str(profile.cores), ",".join(profile.isa_flags),
             platform.python_version(), backend, str(threads)]
    parts += [f"{path.name}:{sha256_hex(path)[:16]}" for path in paths]
    return hashlib.sha256("|".join(parts).encode()).hexdigest()[:32]


def read_cache(key: str) -> Optional[Dict]:
    try:
        with open(cache_path(), encoding="utf-8") as handle:
            entry = json.load(handle).get(key)
    except (OSError, ValueError, AttributeError):
        return None
    return entry if isinstance(entry, dict) and "file" in entry else None


_CHOSEN: Dict[str, Tuple[str, str]] = {}  # choices this process could not cache: one choice for the run
_WARNED: List[str] = []


def write_cache(key: str, entry: Dict) -> Optional[str]:
    """Best effort: a read-only home only means the next run times the files again.
    Returns why it could not be written (None: written)."""
    path = cache_path()
    try:
        with open(path, encoding="utf-8") as handle:
            entries = json.load(handle)
        entries = entries if isinstance(entries, dict) else {}
    except (OSError, ValueError):
        entries = {}
    entries[key] = entry
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        write_bytes_atomic(path, json.dumps(entries, indent=1).encode())
    except OSError as exc:
        return exc.strerror or str(exc)
    return None


def choose(variants: Sequence[Path], backend: str = "auto", threads: Optional[int] = None,
           log: Callable[[str], None] = print, use_cache: bool = True) -> Tuple[str, str]:
    """The fastest passing file among `variants` on this device, and the line that says
    why (the caller logs it once the model has loaded, so that an error stays one line;
    `log` gets only the files skipped)."""
    from edgecnn.runtime.backends import open_backend

    paths = [Path(p) for p in variants if Path(p).is_file()]
    if not paths:
        raise FileNotFoundError("no bundled model is installed with this package")
    key = cache_key(paths, backend, threads)
    if use_cache and key in _CHOSEN:
        return _CHOSEN[key]
    cached = read_cache(key) if use_cache else None
    if cached is not None and any(path.name == cached["file"] for path in paths):
        return (str(next(path for path in paths if path.name == cached["file"])),
                f"bundled model: {cached['file']} ({cached['why']}; chosen on this device earlier, "
                f"cache {cache_path()})")
    timings: List[tuple] = []
    for path in paths:
        opened = open_backend(str(path), backend, threads)
        if passes_gate(opened.card):
            timings.append((median_ms(opened), path, describe_gate(opened.card)))
        else:
            log(f"bundled model: {path.name} skipped: its card records no drop within its budget")
    if not timings:
        raise FileNotFoundError("no bundled model passed its accuracy gate")
    timings.sort(key=lambda entry: entry[0])
    best_ms, best, why = timings[0]
    others = ", ".join(f"{path.name} {ms:.2f} ms" for ms, path, _ in timings[1:])
    chosen = (str(best), f"bundled model: {best.name} ({why}): {best_ms:.2f} ms median inference on this device"
                         + (f" against {others}" if others else ""))
    if use_cache:
        problem = write_cache(key, {"file": best.name, "why": why,
                                    "ms": {path.name: round(ms, 3) for ms, path, _ in timings}})
        if problem is not None:
            if not _WARNED:
                _WARNED.append(problem)
                log(f"bundled model: cannot write the choice cache {cache_path()} ({problem}); this process "
                    f"keeps {best.name}, the next run times the files again")
            _CHOSEN[key] = chosen
    return chosen
