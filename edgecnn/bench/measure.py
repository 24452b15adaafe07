"""Inference latency you can compare across devices: `edgecnn bench`.

One *configuration* is (model file, backend, threads). Each one runs in a fresh
Python process (edgecnn.bench.worker) so that its load time is a cold load and its
peak RSS is its own, not the high-water mark of the models measured before it in
the same process; a backend that crashes on a bad file also takes down only its
own configuration. The worker reports progress and one JSON record per
configuration; `run_configs` collects them into JSON lines records that carry the
device fingerprint, so files from several devices can simply be concatenated.

The timed loop is `Backend.infer` on a preprocessed input (inference only, the same
call `edgecnn run` makes); capture-to-result latency is edgecnn.bench.pipeline's.
Imports neither torch nor onnx: it runs on a device with only `edgecnn[runtime]`.
"""
from __future__ import annotations

import importlib
import json
import os
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Callable, Dict, Iterable, List, Optional, Sequence, Tuple

import numpy as np

from edgecnn.core.errors import UserError
from edgecnn.core.files import sha256_hex
from edgecnn.runtime.backends import timed_runs

RECORD_SCHEMA = "edgecnn.bench.measure/1"
NOISY_RATIO = 1.5  # p90 / p50 above this: the run is flagged as noisy
# CPU seconds the calling thread got per wall second of timed runs below this: other processes
# took the CPU (both backends keep the calling thread busy, whatever the thread count). The
# calling thread's clock is exact; the whole process's is not over short windows, since the
# kernel adds the other threads' time at scheduler ticks (it read 10 on two cores over 1 ms)
MIN_CPU_SHARE = 0.8


@dataclass
class BenchConfig:
    """One configuration to measure. threads None: the backend's default."""

    model: str
    backend: str
    threads: Optional[int] = None
    runs: int = 100
    warmup: int = 10
    pipeline: Optional[str] = None  # a source URI: also measure capture-to-result on it
    frames: int = 100
    input_size: Optional[Tuple[int, int]] = None  # (h, w) for a model whose input size is dynamic

    @property
    def steps(self) -> int:
        """Progress units: warm-up and timed runs, then pipeline frames."""
        return self.warmup + self.runs + (self.frames if self.pipeline else 0)

    @property
    def label(self) -> str:
        return f"{Path(self.model).name} {self.backend} t{self.threads or 'default'}"


def latency_stats(times_ms: Sequence[float]) -> Dict[str, float]:
    """Percentiles, mean and spread of per-run latencies, in milliseconds."""
    values = np.asarray(times_ms, dtype=np.float64)
    p50, p90, p99 = np.percentile(values, [50, 90, 99])
    mean = float(values.mean())
    return {"p50": round(float(p50), 4), "p90": round(float(p90), 4), "p99": round(float(p99), 4),
            "mean": round(mean, 4), "std": round(float(values.std()), 4),
            "min": round(float(values.min()), 4), "max": round(float(values.max()), 4),
            "fps": round(1000.0 / mean, 2) if mean > 0 else None}


def noise_reasons(latency: Dict[str, float], throttling: Iterable[str],
                  cpu_share: Optional[float] = None) -> List[str]:
    """Why a run's figures should not be trusted as-is (empty: none)."""
    reasons = []
    if latency.get("p50") and latency["p90"] / latency["p50"] > NOISY_RATIO:
        reasons.append(f"p90/p50 = {latency['p90'] / latency['p50']:.2f} > {NOISY_RATIO}")
    if cpu_share is not None and cpu_share < MIN_CPU_SHARE:
        reasons.append(f"the calling thread got {cpu_share:.2f} CPU-seconds per second (other processes competing)")
    return reasons + list(throttling)


def peak_rss_mb() -> float:
    """This process's peak resident set size so far, in MiB.

    Linux: VmHWM from /proc/self/status. Not ru_maxrss: Linux folds the RSS that the
    forked child shared with its parent into ru_maxrss at exec, so a worker started by
    a large parent would report the parent's size. Elsewhere ru_maxrss (KiB on Linux
    and the BSDs, bytes on macOS)."""
    try:
        with open("/proc/self/status", encoding="ascii", errors="replace") as handle:
            for line in handle:
                if line.startswith("VmHWM:"):
                    return round(int(line.split()[1]) / 1024.0, 1)
    except (OSError, ValueError, IndexError):
        pass
    import resource  # POSIX only

    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return round(peak / (1024.0 * 1024.0) if sys.platform == "darwin" else peak / 1024.0, 1)


def sample_input(backend, input_size: Optional[Sequence[int]] = None) -> np.ndarray:
    """A realistic preprocessed input: a random image through the model's own preprocessing
    when it has a card (so int8 quantization sees the real value range), else N(0, 1).
    A dynamic input runs at `input_size`, else the card's size, else the exporter's imgsz;
    a fixed one only at its own size."""
    from edgecnn.runtime.recognition import concrete_input

    rng = np.random.default_rng(0)
    size = tuple(input_size) if input_size else None
    shape, _, own_size, _ = concrete_input(backend, size)
    if size is not None and own_size != size:
        takes = f"{own_size[0]}x{own_size[1]}" if own_size else str(backend.input_shape)
        raise UserError(f"{backend.path}: --input-size {size[0]}x{size[1]}: the model takes only {takes}")
    if backend.card is not None:
        from edgecnn.core.preprocess import preprocess

        card = backend.card if own_size is None else backend.card.replace(input_size=own_size)
        height, width = card.input_size
        image = rng.integers(0, 256, (height, width, 3), dtype=np.uint8)
        return preprocess(image, card)
    return rng.standard_normal(shape).astype(np.float32)


def model_facts(backend) -> Dict[str, Any]:
    """What the model is: its card's task, precision and accuracy, or what the file says."""
    from edgecnn.runtime.precision import file_precision

    card = backend.card
    facts: Dict[str, Any] = {
        "input_shape": list(backend.input_shape),
        "input_dtype": str(np.dtype(backend.input_dtype)),
        "precision": card.precision if card else file_precision(backend.path),
        "task": card.task if card else None,
        "architecture": card.architecture if card else {},
        "metrics": card.metrics if card else {},
    }
    facts["ran_on"] = backend.ran_on()  # execution providers, delegates and their partitions
    if "providers" in facts["ran_on"]:  # onnxruntime: which execution providers ran it
        facts["providers"] = list(facts["ran_on"]["providers"])
    facts["accuracy"] = primary_accuracy(facts["metrics"])
    return facts


def primary_accuracy(metrics: Dict[str, Any]) -> Optional[Dict[str, Any]]:
    from edgecnn.core.task import primary_metrics

    for key in primary_metrics():  # the card metric shown beside latency: the first gate metric found
        if isinstance(metrics.get(key), (int, float)):
            return {"metric": key, "value": float(metrics[key]), "dataset": metrics.get("dataset"),
                    "split": metrics.get("split")}
    return None


def base_record(config: BenchConfig) -> Dict[str, Any]:
    path = config.model
    return {"schema": RECORD_SCHEMA, "time": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            "model": Path(path).name, "model_path": str(path), "model_sha256": sha256_hex(path)[:16],
            "size_kb": round(os.path.getsize(path) / 1024, 1),
            "format": Path(path).suffix.lstrip(".").lower(), "backend": config.backend,
            "threads": config.threads, "runs": config.runs, "warmup": config.warmup,
            "pipeline_source": config.pipeline}


def measure(config: BenchConfig, progress: Optional[Callable[[int], None]] = None,
            device_root: str = "/") -> Dict[str, Any]:
    """Load, warm up and time one configuration in this process; a record (status "ok"),
    or a failed record with the reason when the model does not load or run."""
    from devices.fingerprint import thermal_snapshot, throttling_seen

    record = base_record(config)
    record["loadavg"] = [round(v, 2) for v in os.getloadavg()]
    record["rss_before_load_mb"] = peak_rss_mb()
    try:
        from edgecnn.runtime.backends import open_backend

        from edgecnn.runtime.backends import get_backend, parse_backend

        start = time.perf_counter()
        spec = parse_backend(config.backend)
        if spec.name != "auto":
            importlib.import_module(get_backend(spec.name).module)
        record["import_ms"] = round((time.perf_counter() - start) * 1e3, 2)
        start = time.perf_counter()
        backend = open_backend(config.model, spec, config.threads)
        record["load_ms"] = round((time.perf_counter() - start) * 1e3, 2)
        record.update(model_facts(backend))
        blob = sample_input(backend, config.input_size)
        record["run_input_shape"] = list(blob.shape)
        start = time.perf_counter()
        backend.infer(blob)
        record["first_inference_ms"] = round((time.perf_counter() - start) * 1e3, 2)
        before = thermal_snapshot(device_root)
        for _ in range(config.warmup):
            backend.infer(blob)
            if progress:
                progress(1)
        cpu_start, wall_start = time.thread_time(), time.perf_counter()
        times = timed_runs(backend.infer, blob, config.runs, progress)
        cpu_share = (time.thread_time() - cpu_start) / max(time.perf_counter() - wall_start, 1e-9)
        after = thermal_snapshot(device_root)
        peak = peak_rss_mb()  # before the pipeline's video buffers
        if config.pipeline:
            from edgecnn.bench.pipeline import measure_pipeline

            record["pipeline"] = measure_pipeline(backend, config.pipeline, config.frames, progress)
    except UserError as exc:
        return {**record, "status": "failed", "error": str(exc)}
    except ImportError as exc:
        return {**record, "status": "failed", "error": f"backend not importable: {exc}"}
    except Exception as exc:  # a backend's own exception types: report, do not stop the bench
        reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        return {**record, "status": "failed", "error": f"{type(exc).__name__}: {reason[:200]}"}
    record["latency_ms"] = latency_stats(times)
    record["fps"] = record["latency_ms"].pop("fps")
    record["peak_rss_mb"] = peak
    record["thermal_before"], record["thermal_after"] = before, after
    record["throttling"] = throttling_seen(before, after)
    record["cpu_share"] = round(cpu_share, 3)
    record["noisy"] = noise_reasons(record["latency_ms"], record["throttling"], cpu_share)
    record["status"] = "ok"
    return record


def expand_configs(models: Sequence[str], backend: str, threads: Sequence[Optional[int]], runs: int,
                   warmup: int, pipeline: Optional[str] = None, frames: int = 100,
                   input_size: Optional[Tuple[int, int]] = None) -> List[BenchConfig]:
    """Every (model, backend, threads) to measure. A model no installed backend can run
    still gets a configuration, so that it shows as failed with the reason."""
    from edgecnn.runtime.backends import backends_for

    configs = []
    for model in models:
        if backend in ("all", "auto"):
            names = backends_for(model) or ["auto"]  # none installed: "auto" fails with the pip hint
            names = names if backend == "all" else names[:1]
        else:
            names = [backend]  # a name with its options (edgecnn.runtime.backends grammar)
        for name in names:
            configs.extend(BenchConfig(model, name, t, runs, warmup, pipeline, frames, input_size) for t in threads)
    return configs


def worker_command(config: BenchConfig) -> List[str]:
    return [sys.executable, "-m", "edgecnn.bench.worker", json.dumps(asdict(config))]


def run_isolated(config: BenchConfig, progress: Optional[Callable[[int], None]] = None,
                 timeout: Optional[float] = None) -> Dict[str, Any]:
    """Measure one configuration in a fresh Python process (see the module docstring)."""
    env = dict(os.environ)
    package_root = str(Path(__file__).resolve().parents[1])
    env["PYTHONPATH"] = os.pathsep.join(p for p in (package_root, env.get("PYTHONPATH")) if p)
    errors = tempfile.TemporaryFile(mode="w+")  # a file, not a pipe: a chatty backend cannot block
    process = subprocess.Popen(worker_command(config), stdout=subprocess.PIPE, stderr=errors, text=True, env=env)
    expired = threading.Event()

    def expire() -> None:
        expired.set()
        process.kill()

    timer = threading.Timer(timeout, expire) if timeout else None
    if timer:
        timer.start()
    result = None
    assert process.stdout is not None
    for line in process.stdout:
        try:
            message = json.loads(line)
        except json.JSONDecodeError:
            continue
        if message.get("event") == "progress" and progress:
            progress(int(message["done"]))
        elif message.get("event") == "result":
            result = message["record"]
    try:
        process.wait(timeout=30)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()
    if timer:
        timer.cancel()
    errors.seek(0)
    stderr = errors.read()
    errors.close()
    if result is not None:
        return result
    if expired.is_set():
        return {**base_record(config), "status": "failed", "error": f"did not finish within {timeout:g} s"}
    last = [line for line in (stderr or "").strip().splitlines() if line.strip()][-1:]
    if process.returncode is not None and process.returncode < 0:
        why = f"benchmark process killed by signal {-process.returncode}"
    else:
        why = f"benchmark process exited with code {process.returncode}"
    reason = f"{why}: {last[0][:200]}" if last else why
    return {**base_record(config), "status": "failed", "error": reason}


def run_configs(configs: Sequence[BenchConfig], isolate: bool = True, show_progress: bool = True,
                device_name: Optional[str] = None, timeout: Optional[float] = None,
                on_record: Optional[Callable[[Dict[str, Any]], None]] = None) -> List[Dict[str, Any]]:
    """Measure every configuration, one after the other, with a progress bar on stderr.
    Each record gets the device fingerprint and a `noisy` flag. `timeout` (seconds, per
    configuration, isolated runs only): a configuration still running then is killed
    and reported as failed, and the others still run. `on_record` gets each record as
    soon as it is complete (so an interrupted bench keeps what it measured)."""
    from tqdm import tqdm

    from devices.fingerprint import fingerprint

    from edgecnn.runtime.backends import backend_types

    device = fingerprint(name=device_name, engines={kind.name: kind.distributions for kind in backend_types()})
    total = sum(c.steps for c in configs)
    records = []
    with tqdm(total=total, unit="run", disable=not show_progress, file=sys.stderr,
              dynamic_ncols=True) as bar:
        for config in configs:
            bar.set_description(config.label)
            start = bar.n
            record = run_isolated(config, bar.update, timeout) if isolate else measure(config, bar.update)
            bar.update(start + config.steps - bar.n)  # a failed run skips its share
            record["isolated"] = isolate
            record["device"] = device
            records.append(record)
            if on_record:
                on_record(record)
    return records


def write_json_lines(records: Iterable[Dict[str, Any]], destination: str) -> None:
    """Append records as JSON lines ('-': standard output), so that runs and devices accumulate."""
    lines = "".join(json.dumps(r, sort_keys=True) + "\n" for r in records)
    if destination == "-":
        sys.stdout.write(lines)
        sys.stdout.flush()
        return
    try:
        with open(destination, "a", encoding="utf-8") as handle:
            handle.write(lines)
    except OSError as exc:
        raise UserError(f"cannot write {destination}: {exc.strerror or exc}") from None


def read_json_lines(paths: Sequence[str]) -> List[Dict[str, Any]]:
    """Bench records from one or more JSON lines files; other lines are a clear error."""
    records = []
    for path in paths:
        try:
            text = Path(path).read_text(encoding="utf-8")
        except OSError as exc:
            raise UserError(f"cannot read {path}: {exc.strerror or exc}") from None
        for number, line in enumerate(text.splitlines(), 1):
            if not line.strip():
                continue
            try:
                record = json.loads(line)
            except json.JSONDecodeError:
                raise UserError(f"{path}:{number}: not a JSON line") from None
            if not isinstance(record, dict) or record.get("schema") != RECORD_SCHEMA:
                raise UserError(f"{path}:{number}: not an edgecnn bench record")
            records.append(record)
    return records
