"""`--backend auto`: the fastest way to run a model on this device, chosen by
measurement among the files of the model that passed their accuracy gate and the
backends installed here that run them. Which is fastest depends on the CPU's int8
instructions and each engine's kernels for them (the bundled int8 detector is faster
than its fp32 file on CPUs with VNNI and slower on AVX2 alone; OpenVINO's int8 kernels
pay on AVX2 where LiteRT's do not), so it is measured rather than assumed: each
candidate is timed here once (a few ms of inference each, with the bench's timing
loop), and the choice is cached per device, files, backends and thread count, so later
runs start without timing anything.

The candidates: the file given and its siblings of another precision in the same
directory (`x.tflite`, `x-int8.tflite`, `x-fp32.tflite`, ...: what `edgecnn convert
--precision both|auto` writes), or the bundled files when no model is given; each on
every installed backend that runs its format. A sibling (and a bundled file) takes part
when it is the fp32 reference or its card records a measured drop within the budget it
was gated at; the file a user names always does. The choice is logged with the figures
behind it.
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
from edgecnn.core.errors import UserError
from edgecnn.core.files import sha256_hex

TIMED_RUNS, WARMUP_RUNS, ROUNDS = 10, 2, 3


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
    drop, budget = card.metrics.get("drop_points"), card.metrics.get("max_drop_points")
    if drop is None or budget is None:
        return f"{card.precision}, no gate recorded in its card"
    verdict = "within" if float(drop) <= float(budget) else "beyond"
    return f"{card.precision}, {metric} drop {float(drop):.2f} {verdict} {float(budget):.2f} points"


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
    """This device (CPU, ISA flags, cores), the files' contents, the backends installed
    and the run's settings."""
    from devices.profile import detect
    from edgecnn.runtime.backends import backends_for

    profile = detect()
    engines = sorted({name for path in paths for name in backends_for(str(path))}) if backend == "auto" else []
    parts = [profile.model, profile.machine, str(profile.cores), ",".join(profile.isa_flags),
             platform.python_version(), backend, str(threads), ",".join(engines)]
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


def precision_siblings(path: Path) -> List[Path]:
    """The file and the files of another precision beside it: NAME.EXT, NAME-fp32.EXT,
    NAME-int8.EXT, NAME-fp16.EXT share the stem NAME."""
    stem = path.stem
    for precision in PRECISION_SUFFIXES:
        if stem.endswith(precision):
            stem = stem[:-len(precision)]
            break
    names = [f"{stem}{path.suffix}"] + [f"{stem}{precision}{path.suffix}" for precision in PRECISION_SUFFIXES]
    found = [path.parent / name for name in names if (path.parent / name).is_file()]
    return [path] + [p for p in found if p.resolve() != path.resolve()]


PRECISION_SUFFIXES = ("-fp32", "-int8", "-fp16")


def label(path: Path, backend: str, preferred: str) -> str:
    """How a candidate is named in the log: its file, and its backend unless it is the
    device's preferred one for the format."""
    return path.name if backend == preferred else f"{path.name} on {backend}"


def choose(variants: Sequence[Path], backend: str = "auto", threads: Optional[int] = None,
           log: Callable[[str], None] = print, use_cache: bool = True, prefix: str = "bundled model",
           required: Optional[Path] = None) -> Tuple[str, str]:
    """The fastest passing file among `variants` on this device, and the line that says
    why (the caller logs it once the model has loaded, so that an error stays one line;
    `log` gets only the files skipped). The backend chosen with it: `chosen_backend`."""
    path, backend_name, line = choose_run(variants, backend, threads, log, use_cache, prefix, required)
    return path, line


def choose_run(variants: Sequence[Path], backend: str = "auto", threads: Optional[int] = None,
               log: Callable[[str], None] = print, use_cache: bool = True, prefix: str = "bundled model",
               required: Optional[Path] = None) -> Tuple[str, str, str]:
    """(file, backend, why) of the fastest passing candidate: every file of `variants` on
    every installed backend that runs it (`backend` "auto"), or on the one named.
    `required`: a file that takes part whatever its card says (the one a user named)."""
    from edgecnn.runtime.backends import backends_for, open_backend

    paths = [Path(p) for p in variants if Path(p).is_file()]
    if not paths:
        raise FileNotFoundError("no bundled model is installed with this package")
    key = cache_key(paths, backend, threads)
    if use_cache and key in _CHOSEN:
        return _CHOSEN[key]
    cached = read_cache(key) if use_cache else None
    if cached is not None and any(path.name == cached["file"] for path in paths):
        chosen_path = next(path for path in paths if path.name == cached["file"])
        name = cached.get("backend", backend)
        return (str(chosen_path), name,
                f"{prefix}: {label(chosen_path, name, _preferred(chosen_path, backend))} ({cached['why']}; "
                f"chosen on this device earlier, cache {cache_path()})")
    candidates: List[tuple] = []
    for path in paths:
        names = backends_for(str(path)) if backend == "auto" else [backend]
        for position, name in enumerate(names):
            try:
                opened = open_backend(str(path), name, threads)
            except UserError as exc:
                if position == 0:  # the device's own way to run the file: its error is the file's
                    raise
                log(f"{prefix}: {path.name} not timed on {name}: {exc}")
                continue
            if required is not None and path.resolve() == Path(required).resolve() or passes_gate(opened.card):
                why = describe_gate(opened.card) if opened.card is not None else "the file named"
                candidates.append((opened, position, path, name, why))
            elif position == 0:
                log(f"{prefix}: {path.name} skipped: its card records no drop within its budget")
                break
    # alternating rounds: the machine's speed drifts within seconds, and falls on every candidate alike
    rounds = [[median_ms(opened) for opened, *_ in candidates] for _ in range(ROUNDS)]
    timings = [(float(np.median([times[i] for times in rounds])), *rest)
               for i, (_, *rest) in enumerate(candidates)]
    del candidates
    if not timings:
        raise FileNotFoundError("no bundled model passed its accuracy gate")
    timings.sort(key=lambda entry: (entry[0], entry[1]))
    best_ms, _, best, best_backend, why = timings[0]
    preferred = {path: _preferred(path, backend) for _, _, path, _, _ in timings}
    others = ", ".join(f"{label(path, name, preferred[path])} {ms:.2f} ms" for ms, _, path, name, _ in timings[1:])
    chosen = (str(best), best_backend,
              f"{prefix}: {label(best, best_backend, preferred[best])} ({why}): {best_ms:.2f} ms median inference "
              f"on this device" + (f" against {others}" if others else ""))
    if use_cache:
        problem = write_cache(key, {"file": best.name, "backend": best_backend, "why": why,
                                    "ms": {label(path, name, preferred[path]): round(ms, 3)
                                           for ms, _, path, name, _ in timings}})
        if problem is not None:
            if not _WARNED:
                _WARNED.append(problem)
                log(f"{prefix}: cannot write the choice cache {cache_path()} ({problem}); this process "
                    f"keeps {best.name}, the next run times the files again")
            _CHOSEN[key] = chosen
    return chosen


def _preferred(path: Path, backend: str) -> str:
    from edgecnn.runtime.backends import backends_for

    installed = backends_for(str(path)) if backend == "auto" else [backend]
    return installed[0] if installed else backend
