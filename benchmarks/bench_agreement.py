"""Does `edgecnn bench` measure what the backend does? Its p50 against a bare timing
loop over the backend's own API, in the same run.

For each model, `--rounds` times in alternation: the bench's figure (a fresh
process through edgecnn.bench.measure.run_isolated, i.e. Backend.infer), then a plain loop
in this process over onnxruntime.InferenceSession.run or ai_edge_litert's
Interpreter (set_tensor, invoke, get_tensor), same thread count. Alternating
rounds and taking the median of each side keeps drifting machine load from
posing as a difference. The loop shares no code with edgecnn.

    python benchmarks/bench_agreement.py MODEL.onnx MODEL.tflite [--threads 1] [--runs 300] [--rounds 3] [--json]
"""
from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def raw_onnxruntime(path: str, threads: int):
    import onnxruntime

    options = onnxruntime.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    session = onnxruntime.InferenceSession(path, options, providers=["CPUExecutionProvider"])
    first = session.get_inputs()[0]
    dtype = {"tensor(float)": np.float32, "tensor(uint8)": np.uint8, "tensor(int8)": np.int8}[first.type]
    feed = {first.name: random_input([d if isinstance(d, int) else 1 for d in first.shape], dtype)}
    return "onnxruntime.InferenceSession", lambda: session.run(None, feed)


def raw_litert(path: str, threads: int):
    from ai_edge_litert.interpreter import Interpreter

    interpreter = Interpreter(model_path=path, num_threads=threads)
    interpreter.allocate_tensors()
    detail = interpreter.get_input_details()[0]
    data = random_input(detail["shape"], detail["dtype"])
    outputs = [o["index"] for o in interpreter.get_output_details()]

    def call():
        interpreter.set_tensor(detail["index"], data)
        interpreter.invoke()
        return [interpreter.get_tensor(i) for i in outputs]

    return "ai_edge_litert Interpreter", call


def random_input(shape, dtype) -> np.ndarray:
    rng = np.random.default_rng(0)
    if np.issubdtype(dtype, np.integer):
        info = np.iinfo(dtype)
        return rng.integers(info.min, info.max, size=tuple(shape), endpoint=True).astype(dtype)
    return rng.standard_normal(tuple(shape)).astype(dtype)


def raw_p50(call, runs: int, warmup: int) -> float:
    for _ in range(warmup):
        call()
    times = []
    for _ in range(runs):
        start = time.perf_counter_ns()
        call()
        times.append((time.perf_counter_ns() - start) / 1e6)
    return float(np.median(times))


def compare(path: str, threads: int, runs: int, warmup: int, rounds: int) -> dict:
    from edgecnn.bench.measure import BenchConfig, run_isolated
    from edgecnn.runtime.backends import backends_for

    backend = backends_for(path)[0]
    make_raw = raw_onnxruntime if path.endswith(".onnx") else raw_litert
    bench, raw = [], []
    raw_name = None
    for _ in range(rounds):
        record = run_isolated(BenchConfig(path, backend, threads, runs, warmup))
        if record["status"] != "ok":
            raise SystemExit(f"{path}: the bench failed: {record['error']}")
        bench.append(record["latency_ms"]["p50"])
        raw_name, call = make_raw(path, threads)
        raw.append(raw_p50(call, runs, warmup))
    bench_p50, raw_median = statistics.median(bench), statistics.median(raw)
    return {"model": Path(path).name, "backend": backend, "raw_backend": raw_name, "threads": threads,
            "runs": runs, "rounds": rounds, "bench_p50_ms": round(bench_p50, 4), "raw_p50_ms": round(raw_median, 4),
            "difference": round((bench_p50 - raw_median) / raw_median, 4),
            "bench_rounds_ms": [round(v, 4) for v in bench], "raw_rounds_ms": [round(v, 4) for v in raw]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("models", nargs="+")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--runs", type=int, default=300)
    parser.add_argument("--warmup", type=int, default=20)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--json", action="store_true", help="print the rows as JSON")
    args = parser.parse_args()
    rows = [compare(m, args.threads, args.runs, args.warmup, args.rounds) for m in args.models]
    if args.json:
        print(json.dumps(rows))
        return
    print("| model | backend | threads | bench p50 ms | raw loop p50 ms | difference |")
    print("|---|---|---|---|---|---|")
    for r in rows:
        print(f"| {r['model']} | {r['backend']} vs {r['raw_backend']} | {r['threads']} | {r['bench_p50_ms']:.3f} "
              f"| {r['raw_p50_ms']:.3f} | {100 * r['difference']:+.1f}% |")


if __name__ == "__main__":
    main()
