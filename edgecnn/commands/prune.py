"""`edgecnn prune`: structured channel pruning and fine-tuning, refused beyond the accuracy budget."""
from __future__ import annotations

import json
import sys

from edgecnn.commands import Command, positive_float, stderr_or_print


def add(p) -> None:
    p.add_argument("model", help="an fp32 edgecnn checkpoint")
    target = p.add_mutually_exclusive_group(required=True)
    target.add_argument("--target-macs", type=float, help="fraction of the MACs to keep, e.g. 0.5")
    target.add_argument("--target-latency-ms", type=float, help="latency to reach on this device, measured as "
                        "the --latency-on file (converted and timed by the bench, as is the final model)")
    from converters import DEPLOYMENTS
    from edgecnn.compress import IMPORTANCE, OPTIMIZER_DECAY, SCOPES
    from edgecnn.training import DISTILL_MODES, DISTILL_WEIGHT

    p.add_argument("--latency-on", default="tflite-int8", choices=DEPLOYMENTS, help="the file that will run, "
                   "whose latency is the target's and is reported before and after (default: int8 TFLite on LiteRT)")
    p.add_argument("--importance", default=None, choices=IMPORTANCE, help="how channels are ranked (default: the "
                   "task's, lamp for detectors and segmenters, magnitude for classifiers)")
    p.add_argument("--scope", default=None, choices=list(SCOPES), help="rank channels within each layer, "
                   "cutting the same share from each, or across the network, so that some layers keep more than "
                   "others (at most 90%% of any layer goes; lamp's scores are made for this). Default: the task's, "
                   "global for detectors and segmenters, layer for classifiers")
    p.add_argument("--data", default=None, help="training and held-out data (default: the card's dataset)")
    p.add_argument("--epochs", type=int, default=5, help="fine-tuning epochs in all (shared among the --steps "
                   "rounds)")
    p.add_argument("--steps", type=int, default=1, help="reach the target in N rounds of pruning, each followed "
                   "by its share of the epochs (at most one round per epoch)")
    p.add_argument("--distill", default="logits", choices=DISTILL_MODES, help="fine-tune against the teacher's "
                   "outputs as well as the labels (logits: classes; a detector's class maps and boxes; a "
                   "segmenter's per-pixel classes), also against where its last feature maps are active "
                   "(features), or on the labels alone (off)")
    p.add_argument("--distill-weight", type=float, default=DISTILL_WEIGHT, help="the teacher's share of the "
                   "fine-tuning loss, 0..1 (the labels' is the rest)")
    p.add_argument("--teacher", default=None, metavar="CKPT", help="the checkpoint distilled from (default: the "
                   "unpruned model)")
    p.add_argument("--lr", type=positive_float, default=None, help="fine-tuning learning rate (default: the "
                   "task's, 0.01 for classifiers, 0.006 for detectors and segmenters)")
    p.add_argument("--optimizer", default=None, choices=list(OPTIMIZER_DECAY), help="fine-tuning optimiser (default: "
                   "the task's, SGD with Nesterov momentum for classifiers, AdamW for detectors and segmenters)")
    p.add_argument("--weight-decay", type=float, default=None, help="fine-tuning weight decay (default 5e-4 with "
                   "sgd, 0.01 with adamw)")
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
    from converters.latency import DeployedLatency
    from edgecnn.compress.prune import PruneOptions, prune_checkpoint

    options = PruneOptions(target_macs=args.target_macs, target_latency_ms=args.target_latency_ms,
                           importance=args.importance, scope=args.scope, data=args.data, epochs=args.epochs,
                           steps=args.steps,
                           lr=args.lr, optimizer=args.optimizer, weight_decay=args.weight_decay, batch=args.batch,
                           max_drop=args.max_drop, force=args.force,
                           threads=args.threads, seed=args.seed, keep_work=args.keep_work, distill=args.distill,
                           distill_weight=args.distill_weight, teacher=args.teacher,
                           latency_ms=DeployedLatency(args.latency_on, args.data))
    log = stderr_or_print(args.json)
    try:
        summary = prune_checkpoint(args.model, args.out, options, log=log)
    except KeyboardInterrupt:
        where = "round-N/" if args.steps > 1 else ""
        print(f"interrupted: the last complete fine-tuning checkpoint is in "
              f"{args.out.rsplit('.', 1)[0]}-finetune/{where}last.pt", file=sys.stderr)
        return 130
    print(json.dumps(summary) if args.json else f"wrote {args.out}")
    return 0


COMMAND = Command(path=("prune",), help="structured channel pruning + fine-tuning, refused beyond the accuracy budget",
                  add=add, run=run, needs="train",
                  description="Removes whole channels through Torch-Pruning's dependency graph until the target is "
                  "met (in one round or --steps rounds), fine-tunes after each round distilled from the unpruned "
                  "model, and measures the result beside the original on the held-out split.")
