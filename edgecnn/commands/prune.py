"""`edgecnn prune`: structured channel pruning and fine-tuning, refused beyond the accuracy budget."""
from __future__ import annotations

import json
import sys

from edgecnn.commands import Command, positive_float, stderr_or_print


def add(p) -> None:
    p.add_argument("model", help="an fp32 edgecnn checkpoint")
    target = p.add_mutually_exclusive_group(required=True)
    target.add_argument("--target-macs", type=float, help="fraction of the MACs to keep, e.g. 0.5")
    target.add_argument("--target-latency-ms", type=float, help="fp32 latency to reach, measured with "
                        "onnxruntime on this device")
    from edgecnn.compress import IMPORTANCE

    p.add_argument("--importance", default="magnitude", choices=IMPORTANCE)
    p.add_argument("--data", default=None, help="training and held-out data (default: the card's dataset)")
    p.add_argument("--epochs", type=int, default=5, help="fine-tuning epochs")
    p.add_argument("--lr", type=positive_float, default=0.01, help="fine-tuning learning rate (SGD)")
    p.add_argument("--batch", type=int, default=32)
    p.add_argument("--max-drop", type=float, default=1.0, help="accuracy budget in points")
    p.add_argument("--force", action="store_true", help="write the model even beyond the budget")
    p.add_argument("--threads", type=int, default=2, help="threads for latency measurements")
    p.add_argument("--keep-work", action="store_true", help="keep OUT-finetune/ when the gate refuses the result "
                   "(removed by default, so no refused weights stay behind)")
    p.add_argument("--out", required=True, help="output checkpoint path")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--json", action="store_true")


def run(args) -> int:
    from converters.latency import onnx_latency_ms
    from edgecnn.compress.prune import PruneOptions, prune_checkpoint

    options = PruneOptions(target_macs=args.target_macs, target_latency_ms=args.target_latency_ms,
                           importance=args.importance, data=args.data, epochs=args.epochs, lr=args.lr,
                           batch=args.batch, max_drop=args.max_drop, force=args.force, threads=args.threads,
                           seed=args.seed, keep_work=args.keep_work, latency_ms=onnx_latency_ms)
    log = stderr_or_print(args.json)
    try:
        summary = prune_checkpoint(args.model, args.out, options, log=log)
    except KeyboardInterrupt:
        print(f"interrupted: the last complete fine-tuning checkpoint is in "
              f"{args.out.rsplit('.', 1)[0]}-finetune/last.pt", file=sys.stderr)
        return 130
    print(json.dumps(summary) if args.json else f"wrote {args.out}")
    return 0


COMMAND = Command(path=("prune",), help="structured channel pruning + fine-tuning, refused beyond the accuracy budget",
                  add=add, run=run, needs="train",
                  description="Removes whole channels through Torch-Pruning's dependency graph until the target is "
                  "met, fine-tunes, and measures the result beside the original on the held-out split.")
