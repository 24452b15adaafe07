"""How fast a PyTorch model runs where it will be deployed: exported and timed in a fresh
process by the bench. Pruning to a latency target calls it (the command line hands it to
edgecnn.compress.prune, which sits below the exporters)."""
from __future__ import annotations

import os
import tempfile

from edgecnn.core.card import ModelCard
from edgecnn.core.errors import UserError


def onnx_latency_ms(model, card: ModelCard, threads: int = 2, runs: int = 300) -> float:
    """Median fp32 latency of the model exported to ONNX, run by onnxruntime in a fresh
    process (the bench's isolated measurement): after training, PyTorch's worker threads
    keep spinning for a while and would slow down anything timed in this process."""
    from converters.to_onnx import export_fp32
    from edgecnn.bench.measure import BenchConfig, run_isolated

    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "model.onnx")
        export_fp32(model.eval(), card, path)
        record = run_isolated(BenchConfig(model=path, backend="onnxruntime", threads=threads, runs=runs, warmup=50))
    if record.get("status") != "ok":
        raise UserError(f"latency measurement failed: {record.get('error', 'no result')}")
    return float(record["latency_ms"]["p50"])
