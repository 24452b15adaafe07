"""`edgecnn train`: train a classifier, detector or segmenter (each task adds its own options)."""
from __future__ import annotations

import json
import os
import sys

from edgecnn.commands import Command, positive_float


def add(p) -> None:
    from edgecnn.core.task import task_names

    p.add_argument("--task", default="classify", choices=task_names())
    p.add_argument("--strict", action="store_true",
                   help="detection and segmentation data: a bad label, mask or image is an error")
    p.add_argument("--model", default="mobilenet_v2", help="mobilenet_v1|mobilenet_v2|mobilenet_v3_small|"
                   "mobilenet_v3_large|mobilenet_v3_small_minimal|mobilenet_v3_large_minimal (ReLU, no SE: one "
                   "XNNPACK partition in int8)|lenet5|resnet18")
    p.add_argument("--width", type=positive_float, default=None, help="width multiplier (> 0; "
                   "default 1.0, detectors 0.5)")
    p.add_argument("--data", default=None, help="classify: digits | shapes | ImageFolder DIR "
                   "(DIR/train/<class>/...); detect: shapes | YOLO DIR (DIR/data.yaml) | COCO file.json "
                   "(default: digits / shapes)")
    p.add_argument("--imgsz", type=int, default=None, help="input size (>= 32); default: the dataset's")
    p.add_argument("--epochs", type=int, default=30)
    p.add_argument("--batch", type=int, default=64, help="global batch size (split across processes)")
    p.add_argument("--bn-batch", type=int, default=None, help="BatchNorm statistics over micro-batches of this "
                   "size (as each of N processes sees batch/N under torchrun)")
    add_task_train_options(p)
    p.add_argument("--optimizer", default="adamw", choices=["adamw", "sgd"])
    p.add_argument("--lr", type=positive_float, default=None, help="peak learning rate (default: adamw 3e-3, sgd 0.1)")
    p.add_argument("--weight-decay", type=float, default=None, help="default: adamw 0.05, sgd 5e-4")
    p.add_argument("--workers", type=int, default=0, help="data-loading processes")
    p.add_argument("--val-every", type=int, default=1, metavar="N",
                   help="validate every N epochs and after the last (best.pt is chosen among those)")
    p.add_argument("--no-augment", action="store_true")
    p.add_argument("--out", default="runs/train")
    p.add_argument("--resume", action="store_true", help="continue from OUT/last.pt with its settings")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--json", action="store_true", help="print the summary as JSON")


def add_task_train_options(p) -> None:
    """Each task's own training options, from its Task.train_options (one group per
    task; an option two tasks take appears once, with each task's help)."""
    from edgecnn.core.task import train_option_fields

    groups = {}
    for name, owners in train_option_fields().items():
        first_task, first = owners[0]
        if first_task.name not in groups:
            groups[first_task.name] = p.add_argument_group(f"{first_task.people_name or first_task.name} "
                                                          f"(--task {first_task.name})")
        settings = dict(first.metadata)
        settings["help"] = "; ".join(f"{task.name}: {option.metadata.get('help', '')}" for task, option in owners)
        groups[first_task.name].add_argument(f"--{name.replace('_', '-')}", dest=name, default=None, **settings)


def run(args) -> int:
    from edgecnn.core.task import build_train_options, get_task, train_option_fields
    from edgecnn.training.train import TrainConfig, train

    task = get_task(args.task)
    task_options = build_train_options(task, {name: getattr(args, name) for name in train_option_fields()})
    config = TrainConfig(task=args.task, model=args.model, width=args.width or task.default_width,
                         data=args.data or task.default_data, strict=args.strict,
                         imgsz=args.imgsz, epochs=args.epochs, batch=args.batch, bn_batch=args.bn_batch,
                         task_options=task_options, val_every=args.val_every,
                         optimizer=args.optimizer,
                         lr=args.lr or (0.1 if args.optimizer == "sgd" else 3e-3),
                         weight_decay=args.weight_decay if args.weight_decay is not None else
                         (5e-4 if args.optimizer == "sgd" else 0.05),
                         augment=not args.no_augment, out=args.out, seed=args.seed, workers=args.workers)
    log = (lambda message: print(message, file=sys.stderr, flush=True)) if args.json else None
    try:
        summary = train(config, resume=args.resume, log=log)
    except KeyboardInterrupt:
        print(f"interrupted: the last complete checkpoint is {args.out}/last.pt; continue with --resume",
              file=sys.stderr)
        return 130
    if os.environ.get("RANK", "0") != "0":
        return 0  # under torchrun, rank 0 reports for all
    if args.json:
        print(json.dumps(summary))
    else:
        print(f"done: best val {summary['primary']} {100 * summary['best']:.2f}, weights in "
              f"{summary['out']}/best.pt and {summary['out']}/last.pt")
    return 0


COMMAND = Command(path=("train",), help="train a model", add=add, run=run,
                  description="Train a classifier, detector or segmenter; writes OUT/last.pt every epoch and "
                  "OUT/best.pt on improvement. Under torchrun it trains data-parallel.", needs="train")
