"""`edgecnn eval`: a model's accuracy on a dataset split, any format."""
from __future__ import annotations

import json
import os

from edgecnn.commands import Command


def presets():
    from edgecnn.runtime.card_options import PRESETS

    return PRESETS


def add(p) -> None:
    p.add_argument("model", help="an edgecnn checkpoint, or an .onnx/.tflite file (edgecnn's or another toolkit's)")
    p.add_argument("--data", default=None, help="dataset (default: the one named in the model card); a file's "
                   "labels are matched to the dataset's by name")
    p.add_argument("--split", default="val", choices=["train", "val", "test"])
    p.add_argument("--strict", action="store_true",
                   help="detection and segmentation data: a bad label, mask or image is an error")
    p.add_argument("--plot", default=None, help="PNG path: confusion matrix, detections, or predicted masks beside the truth "
                   "(default: beside the model; '' for none)")
    p.add_argument("--json", action="store_true")
    from edgecnn.runtime.backends import backend_names

    p.add_argument("--backend", default=None, metavar="NAME[:OPTION=VALUE,...]", help=f".onnx/.tflite files: the "
                   f"backend that runs the file named, one of {', '.join(backend_names())} with its options "
                   "(edgecnn.runtime.backends; default: this device's first for the file's format)")
    files = p.add_argument_group(".onnx/.tflite files without a card (as for edgecnn run)")
    files.add_argument("--labels", default=None, metavar="FILE|a,b,c")
    files.add_argument("--preset", default=None, choices=list(presets()))
    files.add_argument("--head", default=None, metavar="FORMAT[:ARGS]")


def run(args) -> int:
    from edgecnn.runtime.model_file import MODEL_SUFFIXES
    from edgecnn.training.evaluate import evaluate_checkpoint, evaluate_file, format_report

    if os.path.splitext(args.model)[1].lower() in MODEL_SUFFIXES:
        from edgecnn.runtime.card_options import CardOptions

        options = CardOptions(labels=args.labels, preset=args.preset, head=args.head)
        report = evaluate_file(args.model, args.data, args.split, args.plot, args.strict, options, args.backend)
    elif args.backend is not None:
        from edgecnn.core.errors import UserError

        raise UserError(f"--backend is for .onnx/.tflite files; {args.model} is a checkpoint, evaluated by PyTorch")
    else:
        report = evaluate_checkpoint(args.model, args.data, args.split, args.plot, args.strict)
    print(json.dumps(report) if args.json else format_report(report))
    return 0


COMMAND = Command(path=("eval",), help="measure accuracy of a model on a dataset split", add=add, run=run,
                  needs="train")
