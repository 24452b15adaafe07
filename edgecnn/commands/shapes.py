"""`edgecnn shapes`: write the synthetic shapes set of a task to disk."""
from __future__ import annotations

from edgecnn.commands import Command
from edgecnn.core.errors import UserError


def add(p) -> None:
    from edgecnn.core.task import task_names

    p.add_argument("--task", default="detect", choices=task_names())
    p.add_argument("--out", required=True)
    p.add_argument("--train", type=int, default=None, help="number of training images")
    p.add_argument("--val", type=int, default=None, help="number of validation images")
    p.add_argument("--imgsz", type=int, default=None)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--min-visible", type=float, default=None, metavar="F",
                   help="detect, segment: the least fraction of a shape that occlusion may leave visible "
                   "(default 0.4)")


def run(args) -> int:
    from edgecnn.core.task import get_task

    writer = get_task(args.task).training()
    for split, count in (("train", args.train), ("val", args.val)):
        if count is not None and count < 1:
            raise UserError(f"--{split} must be >= 1")
        written = writer.write_shapes(args.out, split, args.seed, args.imgsz, count, args.min_visible)
        print(f"wrote {written} {split} images to {args.out}")
    return 0


COMMAND = Command(path=("shapes",), help="write the synthetic shapes set to disk", add=add, run=run,
                  description="Detection: YOLO format (DIR/data.yaml, images/, labels/). "
                       "Classification: ImageFolder (DIR/train/<class>/*.png). "
                       "Segmentation: images/ and masks/ (class-index PNGs) with DIR/data.yaml.", needs="train")
