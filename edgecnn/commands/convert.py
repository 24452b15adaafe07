"""`edgecnn convert`: PyTorch to ONNX and TFLite (fp32, int8), each file checked against PyTorch."""
from __future__ import annotations

import json

from edgecnn.commands import Command, add_card_flags, card_options, stderr_or_print


def add(p) -> None:
    p.add_argument("src")
    from converters import PRECISIONS, TARGETS

    p.add_argument("--to", default="all", choices=TARGETS)
    p.add_argument("--precision", default=None, choices=PRECISIONS,
                   help="default fp32 (int8 for an int8 program from `edgecnn quantize`); both: write fp32 and "
                   "int8; auto: measure both here and keep the faster one that passes")
    p.add_argument("--out", default="converted", help="output directory")
    p.add_argument("--data", default=None, help="held-out data: a dataset, or a directory/glob of real "
                   "images (default: the card's dataset)")
    p.add_argument("--calib", default=None, help="int8 calibration images (default: train split of --data)")
    p.add_argument("--calib-images", type=int, default=256)
    p.add_argument("--parity-images", type=int, default=100)
    p.add_argument("--max-drop", type=float, default=1.0, help="int8 accuracy budget in points")
    p.add_argument("--force", action="store_true", help="write files that fail their checks")
    p.add_argument("--keep-work", action="store_true", help="keep the staging directory of refused files "
                   "(removed by default)")
    p.add_argument("--threads", type=int, default=2, help="threads for the checks and timings")
    p.add_argument("--weights", default=None, help="state dict for file.py:factory")
    p.add_argument("--float-layers", default="", metavar="NAMES", help="int8: comma-separated convolution/linear "
                   "layers to keep float (as `edgecnn quantize --float-layers`)")
    p.add_argument("--dynamic-batch", action="store_true", help="ONNX: any batch size, so that the frames of "
                   "several cameras sharing the model go through in one call (edgecnn run --config)")
    add_card_flags(p, color=True, runtime=False)
    p.add_argument("--json", action="store_true")


def run(args) -> int:
    from converters.convert import ConvertOptions, convert

    flags = card_options(args)
    options = ConvertOptions(to=args.to, precision=args.precision, out=args.out, data=args.data, calib=args.calib,
                             calib_images=args.calib_images, parity_images=args.parity_images,
                             max_drop=args.max_drop, force=args.force, threads=args.threads, keep_work=args.keep_work,
                             weights=args.weights, flags=flags,
                             float_layers=[n for n in args.float_layers.split(",") if n],
                             dynamic_batch=args.dynamic_batch)
    log = stderr_or_print(args.json)
    summaries = convert(args.src, options, log)
    if args.json:
        print(json.dumps(summaries, default=float))
    else:
        for summary in summaries:
            print(f"wrote {summary['file']}")
    return 0


COMMAND = Command(path=("convert",), help="convert to ONNX and/or TFLite (fp32, int8), checked against PyTorch",
                  add=add, run=run, needs="convert",
                  description="SRC: an edgecnn checkpoint, an int8 .pt2 from `edgecnn quantize`, file.py:factory "
                  "(+ --weights), TorchScript, or a torch.export .pt2. Each file gets a parity report on held-out "
                  "real images and is written only if it passes.")
