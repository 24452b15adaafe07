"""How fast a PyTorch model runs as the file that will be deployed: converted to that
format and precision (an int8 TFLite file where int8 TFLite is what will run) and timed
in a fresh process by the bench. Pruning to a latency target calls it (the command line
hands it to edgecnn.compress.prune, which sits below the exporters): a float PyTorch or
fp32 ONNX timing says little about an int8 file, whose kernels differ (on CPUs without
int8 dot products int8 can even be the slower one).
"""
from __future__ import annotations

import os
import tempfile
from typing import Optional

from converters import DEPLOYMENTS
from edgecnn.core.card import ModelCard
from edgecnn.core.errors import UserError

# format -> the bench backend that times it
BACKENDS = {"onnx": "onnxruntime", "tflite": "litert"}
# int8 files are calibrated on this many training images: the graph, and so the latency,
# does not depend on how well the ranges are chosen (the converter's gate measures that)
CALIBRATION_IMAGES = 16


class DeployedLatency:
    """Median latency (ms) of a model converted to `deployment` (FORMAT-PRECISION, one
    of DEPLOYMENTS) and run by the bench's isolated measurement: a fresh process, so
    that PyTorch's worker threads, which keep spinning for a while after training, do
    not slow down what is timed. int8 files are calibrated on training images of
    `data` (default: the dataset the model's card names)."""

    def __init__(self, deployment: str = "tflite-int8", data: Optional[str] = None, runs: int = 300,
                 warmup: int = 50) -> None:
        if deployment not in DEPLOYMENTS:
            raise UserError(f"unknown deployment {deployment!r}; choose from {', '.join(DEPLOYMENTS)}")
        self.format, self.precision = deployment.split("-")
        self.backend = BACKENDS[self.format]
        self.data, self.runs, self.warmup = data, runs, warmup
        self._calibration = None

    @property
    def name(self) -> str:
        return f"{self.precision} {self.format} on {self.backend}"

    def calibration(self, card: ModelCard) -> list:
        from edgecnn.compress.quantize.calibration import load_images

        if self._calibration is None:
            data = self.data or card.dataset.get("name")
            if not data:
                raise UserError("int8 latency needs calibration images: pass --data")
            self._calibration = load_images(data, card, CALIBRATION_IMAGES)
        return self._calibration

    def write(self, model, card: ModelCard, path: str) -> None:
        """The deployed file of `model` at `path`."""
        model = model.eval()
        if self.format == "onnx":
            from converters import to_onnx

            images = self.calibration(card) if self.precision == "int8" else None
            to_onnx.convert(model, card, path, self.precision, images)
            return
        from converters import to_tflite

        quantized = None
        if self.precision == "int8":
            from edgecnn.compress.quantize.ptq import quantize_model

            quantized = quantize_model(model, card, self.calibration(card))
        to_tflite.convert(model, card, path, self.precision, quantized)

    def __call__(self, model, card: ModelCard, threads: int = 2) -> float:
        from edgecnn.bench.measure import BenchConfig, run_isolated

        with tempfile.TemporaryDirectory() as tmp:
            path = os.path.join(tmp, f"model.{self.format}")
            self.write(model, card, path)
            record = run_isolated(BenchConfig(model=path, backend=self.backend, threads=threads, runs=self.runs,
                                              warmup=self.warmup))
        if record.get("status") != "ok":
            raise UserError(f"latency measurement failed: {record.get('error', 'no result')}")
        return float(record["latency_ms"]["p50"])
