"""`edgecnn convert`: a source model -> ONNX and/or TFLite files, fp32 or int8, each
checked against PyTorch on held-out real images before it is allowed to exist.

Every file is built in a staging directory inside the output directory and moved into
place (an atomic rename) only after its parity report and accuracy gate pass, so a
refused or killed conversion leaves nothing at the output path. The measured
accuracy goes into the card embedded in the file.
"""
from __future__ import annotations

import json
import os
import shutil
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Dict, List, Optional

import numpy as np

from converters import PRECISIONS, TARGETS
from converters.sources import Source, load_source
from edgecnn.runtime.card_options import CardOptions
from edgecnn.core.card import ModelCard
from edgecnn.core.errors import GateRefused, UserError

FORMATS = {"onnx": ".onnx", "tflite": ".tflite"}


@dataclass
class ConvertOptions:
    to: str = "all"
    precision: Optional[str] = None  # fp32 | int8 | both | auto; None: fp32, or int8 for an int8 program
    out: str = "converted"
    data: Optional[str] = None  # held-out data (default: the card's dataset)
    calib: Optional[str] = None
    calib_images: int = 256
    parity_images: int = 100
    max_drop: float = 1.0
    force: bool = False
    keep_work: bool = False  # keep the staging directory of a refused run (removed by default)
    threads: int = 2
    weights: Optional[str] = None
    float_layers: List[str] = field(default_factory=list)  # int8 from a checkpoint: modules kept float
    flags: CardOptions = field(default_factory=CardOptions)
    dynamic_batch: bool = False  # ONNX: any batch size, so that several cameras' frames go in one call


def rewrite_card(path: str, fmt: str, card: ModelCard) -> None:
    """Replace the embedded card (after its accuracy has been measured)."""
    from converters.card_embed import embed_onnx, embed_tflite
    from edgecnn.core.atomic import write_bytes_atomic

    if fmt == "tflite":
        with open(path, "rb") as handle:
            write_bytes_atomic(path, embed_tflite(handle.read(), card))
        return
    import onnx

    proto = onnx.load(path)
    embed_onnx(proto, card)
    write_bytes_atomic(path, proto.SerializeToString())


def median_latency_ms(backend, runs: int = 50, warmup: int = 10) -> float:
    """Median inference time on this device, with the bench's input and timing loop."""
    from edgecnn.bench.measure import sample_input
    from edgecnn.runtime.backends import timed_runs

    blob = sample_input(backend)
    timed_runs(backend.infer, blob, warmup)
    return float(np.median(timed_runs(backend.infer, blob, runs)))


class Converter:
    """Holds what every output of one source shares: the source, its held-out images,
    calibration images, the fp32 reference and its measured accuracy."""

    def __init__(self, src: str, options: ConvertOptions, log) -> None:
        from edgecnn.compress.quantize.calibration import image_files, load_images, training_images

        self.options, self.log = options, log
        if options.to not in TARGETS:
            raise UserError(f"--to must be onnx, tflite or all, got {options.to!r}")
        if options.precision is not None and options.precision not in PRECISIONS:
            raise UserError(f"--precision must be fp32, int8, both or auto, got {options.precision!r}")
        if options.calib_images < 1:
            raise UserError("--calib-images must be >= 1")
        self.source: Source = load_source(src, options.flags, options.weights)
        self.int8_program = self.source.model is None  # from `edgecnn quantize`: no fp32 model inside
        self.precision = options.precision or ("int8" if self.int8_program else "fp32")
        if self.int8_program and self.precision != "int8":
            raise UserError(f"{src} is an int8 program: it converts with --precision int8 (fp32 files come "
                            "from the fp32 checkpoint)")
        if options.float_layers:
            if self.int8_program:
                raise UserError(f"{src} is an int8 program: its float layers were chosen by "
                                "`edgecnn quantize --float-layers`")
            from edgecnn.compress.quantize.ptq import check_float_layers

            check_float_layers(self.source.model, options.float_layers)
        card = self.source.card
        self.data_spec = options.data or card.dataset.get("name")
        if not self.data_spec:
            raise UserError(f"{src}: pass --data (a dataset, or a directory or glob of real images) for the "
                            "parity check and calibration")
        self.labelled = not image_files(self.data_spec)
        needs_calibration = self.precision != "fp32" and self.source.quantized is None
        self.calibration = None
        if self.labelled:
            self.held_out = training_images(card, self.data_spec, "val", options.parity_images)
            if needs_calibration:
                self.calibration = load_images(options.calib or self.data_spec, card, options.calib_images)
        else:  # one directory of images: calibrate on the first half, check parity on the second
            images = load_images(self.data_spec, card, None)
            if len(images) < 2:
                raise UserError(f"{self.data_spec}: need at least 2 images (calibration and parity)")
            half = len(images) // 2
            self.held_out = images[half:][:options.parity_images]
            if needs_calibration:
                self.calibration = (load_images(options.calib, card, options.calib_images) if options.calib
                                    else images[:half][:options.calib_images])
        self.reference_card = card.replace(layout="nchw") if self.source.model is not None else card
        self.baseline = self._baseline()

    def reference_predict(self):
        from edgecnn.training.evaluate import torch_predictor

        if self.source.kind == "export":  # a torch.export program is traced for batch 1
            from converters.parity import one_at_a_time

            return one_at_a_time(torch_predictor(self.source.model))
        if self.source.model is not None:
            return torch_predictor(self.source.model)
        return self.source.quantized.predict

    def _baseline(self) -> Optional[Dict[str, Any]]:
        """The fp32 PyTorch model's accuracy on the held-out split (None: unlabelled data)."""
        if not self.labelled:
            return None
        from edgecnn.core.task import get_task
        from edgecnn.training.evaluate import evaluate_predictor

        if self.source.model is None:  # an int8 program: its card holds the fp32 figure measured beside it
            metric = get_task(self.source.card.task).primary_metric
            if f"fp32_{metric}" not in self.source.card.metrics:
                raise UserError(f"{self.source.path}: its card holds no fp32 accuracy to compare against")
            return {metric: self.source.card.metrics[f"fp32_{metric}"]}
        self.log(f"measuring the PyTorch model on {self.data_spec} (held-out split)")
        return evaluate_predictor(self.reference_predict(), self.reference_card, self.data_spec)

    def build(self, fmt: str, precision: str, path: str) -> ModelCard:
        card = self.source.card  # an int8 program only gets here at int8 (checked in __init__)
        if fmt == "onnx":
            from converters import to_onnx

            if self.source.model is None:
                raise UserError("ONNX int8 is made by onnxruntime from the fp32 model: convert the fp32 checkpoint "
                                "with --precision int8")
            return to_onnx.convert(self.source.model, card, path, precision, self.calibration,
                                   float_layers=self.options.float_layers, dynamic_batch=self.options.dynamic_batch)
        from converters import to_tflite

        quantized = self.source.quantized
        if precision == "int8" and quantized is None:
            from edgecnn.compress.quantize.ptq import quantize_model

            self.log(f"quantizing (PT2E, {len(self.calibration)} calibration images)")
            quantized = self.source.quantized = quantize_model(self.source.model, card, self.calibration,
                                                               float_layers=self.options.float_layers)
        return to_tflite.convert(self.source.model, card, path, precision, quantized)

    def check(self, fmt: str, path: str, card: ModelCard):
        """Parity against PyTorch, then the accuracy gate for int8 files."""
        from converters.parity import backend_predictor, compare
        from edgecnn.core.task import get_task
        from edgecnn.training.evaluate import evaluate_predictor
        from edgecnn.compress.gate import GateReport, compare as gate_compare
        from edgecnn.runtime.backends import open_backend

        backend = open_backend(path, threads=self.options.threads)
        predict = backend_predictor(backend)
        report = compare(path, fmt, card, self.reference_card, self.reference_predict(), predict, self.held_out)
        if self.baseline is not None:
            measured = evaluate_predictor(predict, card, self.data_spec)
            report.metrics = {**{k: measured[k] for k in get_task(card.task).metrics if k in measured},
                              "images": measured.get("images")}
            gate = gate_compare(card.task, self.baseline, measured, self.options.max_drop)
        else:  # unlabelled images: agreement with the fp32 model is the accuracy proxy
            gate = GateReport(report.agreement_kind, 1.0, report.agreement, self.options.max_drop, report.images)
        report.gate = gate.to_dict()
        if card.precision == "int8" and not gate.passed:
            report.problems.append(gate.describe())
        if self.precision == "auto":
            report.latency_ms = median_latency_ms(backend)
        return report

    def card_with_metrics(self, card: ModelCard, report) -> ModelCard:
        from edgecnn.core.files import file_hash

        metrics = dict(report.metrics or {})
        if self.baseline is not None:
            metric = report.gate["metric"]
            metrics.update({f"fp32_{metric}": report.gate["before"], "drop_points": report.gate["drop"],
                            "max_drop_points": report.gate["max_drop"], "split": "val", "dataset": self.data_spec})
        metrics.update({"parity_relative_error": report.relative_error, "parity_agreement": report.agreement})
        return card.replace(metrics=metrics, source_hash=file_hash(self.source.path)
                            if os.path.isfile(self.source.path) else card.source_hash)


def convert(src: str, options: ConvertOptions, log=print) -> List[Dict[str, Any]]:
    """Convert, check and write; GateRefused when any requested file failed its checks."""
    out_dir = Path(options.out)
    out_is_new = not out_dir.exists()
    keep_staging = False
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
        staging = Path(tempfile.mkdtemp(prefix=".convert-", dir=out_dir))
    except OSError as exc:
        raise UserError(f"cannot write to {out_dir}: {exc.strerror}") from None
    try:
        converter = Converter(src, options, log)
        stem = Path(src.split(":")[0] if ".py:" in src else src).stem
        formats = ["onnx", "tflite"] if options.to == "all" else [options.to]
        if converter.int8_program and options.to == "all":
            log("an int8 program converts to TFLite only (ONNX int8 comes from the fp32 checkpoint)")
            formats = ["tflite"]
        precisions = ["fp32", "int8"] if converter.precision in ("both", "auto") else [converter.precision]
        summaries, refused = [], []
        for fmt in formats:
            candidates = []
            for precision in precisions:
                base = stem if stem.endswith(f"-{precision}") else f"{stem}-{precision}"
                name = base + FORMATS[fmt]
                staged = str(staging / name)
                log(f"converting to {fmt} {precision}")
                card = converter.build(fmt, precision, staged)
                report = converter.check(fmt, staged, card)
                report.path = str(out_dir / name)
                rewrite_card(staged, fmt, converter.card_with_metrics(card, report))
                log(report.describe())
                candidates.append((name, staged, report))
            if converter.precision == "auto":
                passing = [c for c in candidates if c[2].passed]
                chosen = min(passing, key=lambda c: c[2].latency_ms) if passing else candidates[-1]
                for name, _, report in candidates:
                    log(f"auto: {name} {report.latency_ms:.2f} ms{'' if report.passed else ' (failed its checks)'}")
                candidates = [chosen]
            for name, staged, report in candidates:
                summary = {"file": str(out_dir / name), **report.to_dict()}
                if report.passed or options.force:
                    os.replace(staged, out_dir / name)
                    with open(staging / "report.json", "w") as handle:
                        json.dump(summary, handle, indent=1, default=float)
                    os.replace(staging / "report.json", out_dir / f"{name}.parity.json")
                    summary["written"] = True
                else:
                    summary["written"] = False
                    refused.append(f"{name}: {'; '.join(report.problems)}")
                summaries.append(summary)
        if refused:
            keep_staging = options.keep_work
            kept = f"; refused files kept for inspection in {staging}" if keep_staging else ""
            raise GateRefused("not written: " + " | ".join(refused) + f" (pass --force to write anyway){kept}")
        return summaries
    finally:
        if not keep_staging:
            shutil.rmtree(staging, ignore_errors=True)
            if out_is_new and not any(out_dir.iterdir()):  # a refused run leaves no empty output directory
                out_dir.rmdir()
