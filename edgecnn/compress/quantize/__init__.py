"""`edgecnn quantize`: int8 post-training quantization (or QAT), measured on the held-out
split beside the fp32 model and refused beyond the accuracy budget.

calibration.py: calibration images; ptq.py: the PT2E flow and sensitivity; qat.py:
quantization-aware training; program.py: the .pt2 program format."""
from __future__ import annotations

import copy
from dataclasses import dataclass
from typing import Any, Dict, List, Optional, Sequence, Tuple

import numpy as np
import torch

from edgecnn.core.errors import UserError
from edgecnn.core.preprocess import preprocess_batch
from edgecnn.training import DISTILL_WEIGHT, OUTPUT_DISTILL_MODES
from edgecnn.compress.quantize.calibration import check_calibration, load_images, training_images
from edgecnn.compress.quantize.program import save_quantized
from edgecnn.compress.quantize.ptq import channel_last, check_float_layers, export_graph, output_error, quantize_model, sensitivity
from edgecnn.compress.quantize.qat import quantization_aware_training


@dataclass
class QuantizeOptions:
    data: Optional[str] = None  # held-out evaluation data (default: the card's dataset)
    calib: Optional[str] = None  # calibration images (default: the training split of `data`)
    calib_images: int = 256
    per_channel: bool = True
    max_drop: float = 1.0
    mixed: bool = False
    float_layers: Sequence[str] = ()  # module names kept float from the start
    qat: bool = False
    epochs: int = 0  # QAT epochs
    lr: Optional[float] = None  # QAT learning rate (default: the task training module's QAT_LR)
    force: bool = False
    seed: int = 0
    card_options: Any = None  # model files without a card: the flags (edgecnn.runtime.card_options.CardOptions)
    # QAT's distillation: None means "logits" (from `teacher`, default the fp32 model itself)
    # and the default weight; "off" trains on the labels alone
    distill: Optional[str] = None
    distill_weight: Optional[float] = None
    teacher: Optional[str] = None
    weight_bits: Optional[int] = None  # .onnx files: 8 (the default there) or 7


def qat_teacher(model, card, options: QuantizeOptions):
    """The model QAT distils from (None: none), checked before any work: the fp32 model
    being quantized unless --teacher names another checkpoint or --distill is off."""
    from edgecnn.training.distill import check_distill, load_teacher

    if not options.qat:
        if options.distill is not None or options.distill_weight is not None or options.teacher:
            raise UserError("--distill, --distill-weight and --teacher are for quantization-aware training (--qat)")
        return None
    mode = options.distill or "logits"
    check_distill(mode, DISTILL_WEIGHT if options.distill_weight is None else options.distill_weight,
                  OUTPUT_DISTILL_MODES)
    if mode == "off":
        if options.teacher:
            raise UserError("--teacher is for distillation: drop it or drop --distill off")
        return None
    return load_teacher(options.teacher, card) if options.teacher else copy.deepcopy(model)


def quantize_checkpoint(source: str, out: str, options: QuantizeOptions, log=print) -> Dict[str, Any]:
    """fp32 checkpoint -> measured int8 program (.pt2), or GateRefused with nothing written."""
    from edgecnn.core.files import file_hash
    from edgecnn.training.checkpoint import load_for_compression
    from edgecnn.training.evaluate import evaluate_predictor, torch_predictor
    from edgecnn.compress.gate import compare, enforce

    if not str(out).endswith(".pt2"):
        raise UserError(f"--out must end in .pt2 (a torch.export program), got {out}")
    if options.weight_bits is not None:
        raise UserError("--weight-bits is for .onnx files; an edgecnn checkpoint's int8 weights are 8-bit")
    model, card, data_spec = load_for_compression(source, options.data, "quantize")
    teacher = qat_teacher(model, card, options)
    if options.calib_images < 1:
        raise UserError("--calib-images must be >= 1")
    check_float_layers(model, options.float_layers)
    calibration = load_images(options.calib or data_spec, card, options.calib_images, options.seed)
    reference = training_images(card, data_spec, "train", 256, options.seed + 1)
    nhwc = card.replace(layout="nhwc")
    check = check_calibration(preprocess_batch(calibration, nhwc), preprocess_batch(reference, nhwc))
    for warning in check.warnings:
        log(f"warning: {warning}")

    fp32 = evaluate_predictor(torch_predictor(model), card, data_spec)
    sample = np.repeat(preprocess_batch(calibration[:1], nhwc), 2, 0)
    graph = None if options.qat else export_graph(channel_last(model), torch.from_numpy(sample))
    if options.qat:
        quantized = quantization_aware_training(model, card, data_spec, options.epochs, calibration, options.lr,
                                                per_channel=options.per_channel, float_layers=options.float_layers,
                                                seed=options.seed, teacher=teacher,
                                                distill_weight=DISTILL_WEIGHT if options.distill_weight is None
                                                else options.distill_weight, log=log)
    else:
        quantized = quantize_model(model, card, calibration, options.per_channel, options.float_layers, graph)
    int8 = evaluate_predictor(quantized.predict, quantized.card, data_spec)
    gate = compare(card.task, fp32, int8, options.max_drop)
    kept = f"{', '.join(options.float_layers)} float" if options.float_layers else "all layers"
    log(f"int8 ({'QAT, ' if options.qat else ''}{kept}): {gate.describe()}")
    ranking: List[Tuple[str, float]] = []
    if not gate.passed and options.mixed and not options.qat:
        probe = preprocess_batch(reference[:64], nhwc)
        channel_last_model = channel_last(model)
        score = output_error(torch_predictor(channel_last_model), probe)
        log("per-layer sensitivity (error recovered when the layer stays float):")
        ranking = sensitivity(model, card, calibration, score, graph, quantized, options.per_channel,
                              progress=lambda i, n, name, gain: log(
                                  f"  [{i}/{n}] {name}: " + ("cannot stay float alone" if gain is None else f"{gain:+.4f}")))
        for keep in (1, 2, 4, 8, 16):
            if keep > len(ranking) // 2:
                break
            float_layers = list(dict.fromkeys([*options.float_layers, *(name for name, _ in ranking[:keep])]))
            quantized = quantize_model(model, card, calibration, options.per_channel, float_layers, graph)
            int8 = evaluate_predictor(quantized.predict, quantized.card, data_spec)
            gate = compare(card.task, fp32, int8, options.max_drop)
            log(f"int8 with {keep} float layer(s) {', '.join(float_layers)}: {gate.describe()}")
            if gate.passed:
                break
    metric = gate.metric
    summary = {"source": str(source), "out": str(out), "gate": gate.to_dict(), "fp32": fp32, "int8": int8,
               "calibration_images": check.images, "warnings": check.warnings,
               "float_layers": quantized.float_layers, "sensitivity": ranking[:10]}
    enforce(gate, options.force, what=str(out))
    quantized.card = quantized.card.replace(
        source_hash=file_hash(source),
        metrics={metric: int8[metric], f"fp32_{metric}": fp32[metric], "drop_points": gate.drop,
                 "max_drop_points": gate.max_drop, "split": int8.get("split", "val"), "dataset": data_spec, "images": int8.get("images")})
    save_quantized(out, quantized, sample)
    return summary
