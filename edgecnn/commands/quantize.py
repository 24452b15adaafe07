"""`edgecnn quantize`: int8 post-training quantization (or QAT), refused beyond the accuracy budget."""
from __future__ import annotations

import json

from edgecnn.commands import Command, positive_float, stderr_or_print


def add(p) -> None:
    from edgecnn.runtime.card_options import PRESETS

    p.add_argument("model", help="an fp32 edgecnn checkpoint, or an fp32 .onnx file of any origin (written as an "
                   "int8 QDQ .onnx by onnxruntime's static quantization)")
    p.add_argument("--data", default=None, help="held-out data for the gate (default: the card's dataset; "
                   "required for .onnx files)")
    p.add_argument("--labels", default=None, metavar="FILE|a,b,c", help=".onnx files without a card, as for run")
    p.add_argument("--preset", default=None, choices=list(PRESETS), help=".onnx files without a card, as for run")
    p.add_argument("--calib", default=None, help="calibration images: a dataset (its train split), a "
                   "directory or a glob of images (default: the training split of --data)")
    p.add_argument("--calib-images", type=int, default=256, help="number of calibration images")
    p.add_argument("--per-tensor", action="store_true", help="one weight scale per tensor (default per channel)")
    p.add_argument("--weight-bits", type=int, choices=(7, 8), default=None, help=".onnx files: int8 weights in "
                   "all 8 bits (default) or in 7, which onnxruntime keeps on its fast int8 kernel on x86 CPUs "
                   "without VNNI (8-bit weights there need its slower exact kernel)")
    p.add_argument("--mixed", action="store_true", help="keep the most sensitive layers float until the "
                   "budget holds (per-layer sensitivity report)")
    p.add_argument("--float-layers", default="", metavar="NAMES", help="comma-separated module names to keep "
                   "float (e.g. a detector's box convs: heads.0.box,heads.1.box,heads.2.box)")
    p.add_argument("--qat", action="store_true", help="quantization-aware training, for when "
                   "post-training quantization misses the budget")
    p.add_argument("--epochs", type=int, default=2, help="QAT epochs")
    p.add_argument("--lr", type=positive_float, default=None, help="QAT learning rate (SGD; default 1e-3 for "
                   "classifiers, 1e-4 for detectors)")
    from edgecnn.training import DISTILL_WEIGHT, OUTPUT_DISTILL_MODES

    p.add_argument("--distill", default=None, choices=OUTPUT_DISTILL_MODES,
                   help="QAT against the float model's outputs "
                   "as well as the labels (default logits), or on the labels alone (off)")
    p.add_argument("--distill-weight", type=float, default=None, help=f"QAT: the teacher's share of the loss, "
                   f"0..1 (default {DISTILL_WEIGHT})")
    p.add_argument("--teacher", default=None, metavar="CKPT", help="QAT: the checkpoint distilled from "
                   "(default: the fp32 model being quantized)")
    p.add_argument("--max-drop", type=float, default=1.0, help="accuracy budget in points (top-1, or "
                   "mAP@0.5:0.95 for detectors)")
    p.add_argument("--force", action="store_true", help="write the model even beyond the budget")
    p.add_argument("--out", required=True, help="output .pt2 path (.onnx for an .onnx source)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--json", action="store_true")


def run(args) -> int:
    from edgecnn.compress.quantize import QuantizeOptions, quantize_checkpoint
    from edgecnn.runtime.card_options import CardOptions

    options = QuantizeOptions(data=args.data, calib=args.calib, calib_images=args.calib_images,
                              per_channel=not args.per_tensor, max_drop=args.max_drop, mixed=args.mixed,
                              float_layers=[n for n in args.float_layers.split(",") if n],
                              qat=args.qat, epochs=args.epochs, lr=args.lr, force=args.force, seed=args.seed,
                              distill=args.distill, distill_weight=args.distill_weight, teacher=args.teacher,
                              card_options=CardOptions(labels=args.labels, preset=args.preset),
                              weight_bits=args.weight_bits)
    log = stderr_or_print(args.json)
    if args.model.lower().endswith(".onnx"):
        from converters.quantize_onnx import quantize_onnx_file

        summary = quantize_onnx_file(args.model, args.out, options, log=log)
    else:
        summary = quantize_checkpoint(args.model, args.out, options, log=log)
    print(json.dumps(summary) if args.json else f"wrote {args.out}: {summary['gate']['metric']} "
          f"{100 * summary['int8'][summary['gate']['metric']]:.2f} (fp32 "
          f"{100 * summary['fp32'][summary['gate']['metric']]:.2f})")
    return 0


COMMAND = Command(path=("quantize",), help="int8 post-training quantization, refused beyond the accuracy budget",
                  add=add, run=run, needs="convert",
                  description="PT2E int8 (per-channel weights) calibrated on real images through the training "
                  "preprocessing; measured on the held-out split beside the fp32 model. Writes a .pt2 program with "
                  "its card, which `edgecnn convert` turns into a full-int8 TFLite file.")
