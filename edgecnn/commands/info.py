"""`edgecnn info`: a model's card, tensors, ops and head (.tflite/.onnx, no torch needed) or
its parameters and MACs (checkpoints)."""
from __future__ import annotations

import json
import os

from edgecnn.commands import Command


def add(p) -> None:
    p.add_argument("model", nargs="?", default=None, help=".tflite, .onnx or checkpoint (default: the bundled "
                   "checkpoint; without torch installed, the bundled .tflite file)")
    p.add_argument("--json", action="store_true")


def run(args) -> int:
    import importlib.util

    from edgecnn.runtime.model_file import MODEL_SUFFIXES

    if args.model is None and importlib.util.find_spec("torch") is None:
        from edgecnn.assets import RUNTIME_DEFAULT  # a device without torch: the bundled file it runs

        args.model = str(RUNTIME_DEFAULT)
    if args.model and os.path.splitext(args.model)[1].lower() in MODEL_SUFFIXES:  # no torch needed
        from edgecnn.runtime.inspect import describe_file, format_file_description

        info = describe_file(args.model)
        print(json.dumps(info) if args.json else format_file_description(info))
        return 0
    from edgecnn.assets import default_model
    from edgecnn.training.info import describe, format_description

    info = describe(args.model or str(default_model()))
    print(json.dumps(info) if args.json else format_description(info))
    return 0


COMMAND = Command(path=("info",), help="show a model's card, tensors, ops and head (.tflite/.onnx) or its "
                       "parameters and MACs (checkpoints)", add=add, run=run,
                  needs="train")
