"""The `edgecnn` command: parses arguments and calls the library (imports lazily,
so that commands that do not train never import torch).

Exit codes: 0 done, 2 bad input or usage (one line), 3 refused by a gate,
130 interrupted.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
from typing import List, Optional

from edgecnn.core.errors import GateRefused, UserError
from edgecnn.runtime.card_options import PRESETS
from edgecnn.runtime.heads import head_names
from edgecnn.runtime.sinks import option_dests, sink_types
from edgecnn.runtime.trackers import DEFAULT_TRACKER, tracker_names
from edgecnn.core.task import get_task, task_names


class ArgumentParser(argparse.ArgumentParser):
    """argparse that reports usage errors as one line with exit code 2."""

    def error(self, message: str) -> None:  # type: ignore[override]
        raise UserError(f"{self.prog}: {message}")


def positive_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
    if not value > 0:
        raise argparse.ArgumentTypeError(f"must be > 0, got {text}")
    return value


def add_train(sub) -> None:
    p = sub.add_parser("train", help="train a model", description="Train a classifier; writes OUT/last.pt "
                       "every epoch and OUT/best.pt on improvement. Under torchrun it trains data-parallel.")
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


def run_train(args) -> int:
    from edgecnn.core.task import build_train_options, train_option_fields
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
    if not _is_main_process():
        return 0  # under torchrun, rank 0 reports for all
    if args.json:
        print(json.dumps(summary))
    else:
        print(f"done: best val {summary['primary']} {100 * summary['best']:.2f}, weights in "
              f"{summary['out']}/best.pt and {summary['out']}/last.pt")
    return 0


def _is_main_process() -> bool:
    return os.environ.get("RANK", "0") == "0"


def add_eval(sub) -> None:
    p = sub.add_parser("eval", help="measure accuracy of a model on a dataset split")
    p.add_argument("model", help="an edgecnn checkpoint, or an .onnx/.tflite file (edgecnn's or another toolkit's)")
    p.add_argument("--data", default=None, help="dataset (default: the one named in the model card); a file's "
                   "labels are matched to the dataset's by name")
    p.add_argument("--split", default="val", choices=["train", "val", "test"])
    p.add_argument("--strict", action="store_true",
                   help="detection and segmentation data: a bad label, mask or image is an error")
    p.add_argument("--plot", default=None, help="PNG path: confusion matrix, detections, or predicted masks beside the truth "
                   "(default: beside the model; '' for none)")
    p.add_argument("--json", action="store_true")
    files = p.add_argument_group(".onnx/.tflite files without a card (as for edgecnn run)")
    files.add_argument("--labels", default=None, metavar="FILE|a,b,c")
    files.add_argument("--preset", default=None, choices=list(PRESETS))
    files.add_argument("--head", default=None, metavar="FORMAT[:ARGS]")


def run_eval(args) -> int:
    from edgecnn.runtime.model_file import MODEL_SUFFIXES
    from edgecnn.training.evaluate import evaluate_checkpoint, evaluate_file, format_report

    if os.path.splitext(args.model)[1].lower() in MODEL_SUFFIXES:
        from edgecnn.runtime.card_options import CardOptions

        options = CardOptions(labels=args.labels, preset=args.preset, head=args.head)
        report = evaluate_file(args.model, args.data, args.split, args.plot, args.strict, options)
    else:
        report = evaluate_checkpoint(args.model, args.data, args.split, args.plot, args.strict)
    print(json.dumps(report) if args.json else format_report(report))
    return 0


def add_info(sub) -> None:
    p = sub.add_parser("info", help="show a model's card, tensors, ops and head (.tflite/.onnx) or its "
                       "parameters and MACs (checkpoints)")
    p.add_argument("model", nargs="?", default=None, help=".tflite, .onnx or checkpoint (default: the bundled "
                   "checkpoint)")
    p.add_argument("--json", action="store_true")


def run_info(args) -> int:
    from edgecnn.runtime.model_file import MODEL_SUFFIXES

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


def add_shapes(sub) -> None:
    p = sub.add_parser("shapes", help="write the synthetic shapes set to disk",
                       description="Detection: YOLO format (DIR/data.yaml, images/, labels/). "
                       "Classification: ImageFolder (DIR/train/<class>/*.png). "
                       "Segmentation: images/ and masks/ (class-index PNGs) with DIR/data.yaml.")
    p.add_argument("--task", default="detect", choices=task_names())
    p.add_argument("--out", required=True)
    p.add_argument("--train", type=int, default=None, help="number of training images")
    p.add_argument("--val", type=int, default=None, help="number of validation images")
    p.add_argument("--imgsz", type=int, default=None)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--min-visible", type=float, default=None, metavar="F",
                   help="detect, segment: the least fraction of a shape that occlusion may leave visible "
                   "(default 0.4)")


def run_shapes(args) -> int:
    writer = get_task(args.task).training()
    for split, count in (("train", args.train), ("val", args.val)):
        if count is not None and count < 1:
            raise UserError(f"--{split} must be >= 1")
        written = writer.write_shapes(args.out, split, args.seed, args.imgsz, count, args.min_visible)
        print(f"wrote {written} {split} images to {args.out}")
    return 0


def add_bench(sub) -> None:
    p = sub.add_parser("bench", help="measure inference latency (or `bench report FILES...`)",
                       description="Latency p50/p90/p99, FPS, load time, first inference and peak RSS per model, "
                       "backend and thread count, each configuration in a fresh process. "
                       "`edgecnn bench report FILES... [--out DIR]` turns JSON lines results into a "
                       "Markdown table and a PNG chart.")
    p.add_argument("models", nargs="+", metavar="MODEL", help=".onnx/.tflite files (or: report FILES...)")
    p.add_argument("--backend", default="all", help="all | auto | onnxruntime | litert | tflite-runtime | openvino")
    p.add_argument("--threads", default=None, help="comma-separated thread counts (default: 1 and all cores)")
    p.add_argument("--runs", type=int, default=100, help="timed inferences per configuration")
    p.add_argument("--warmup", type=int, default=10, help="untimed inferences before timing")
    p.add_argument("--pipeline", default=None, metavar="SOURCE",
                   help="also measure capture-to-result latency and frame age on this source (camera:0, video, demo)")
    p.add_argument("--frames", type=int, default=100, help="frames for --pipeline")
    p.add_argument("--input-size", default=None, metavar="N|HxW",
                   help="the size to run a model whose input size is dynamic (default: its card's or its exporter's)")
    p.add_argument("--json", default=None, metavar="PATH", help="append one JSON line per configuration ('-': stdout)")
    p.add_argument("--device-name", default=None, help="label for this device in results")
    p.add_argument("--timeout", type=positive_float, default=None,
                   help="seconds per configuration; one still running then is reported as failed")
    p.add_argument("--same-process", action="store_true",
                   help="measure in this process (load time and peak RSS then include earlier configurations)")
    p.add_argument("--progress", action="store_true", help="show the progress bar even when stderr is not a terminal")
    p.add_argument("--remote", default=None, metavar="USER@HOST", help="copy the models to this device and run there")
    p.add_argument("--remote-python", default="python3", help="Python with edgecnn[runtime] on the device")
    p.add_argument("--ssh-config", default=None, help="ssh_config file for --remote (port, key, known hosts)")
    p.add_argument("--connect-timeout", type=positive_float, default=10.0, help="seconds to reach --remote")
    p.add_argument("--out", default="bench-report", help="bench report: output directory")


def run_bench(args) -> int:
    from edgecnn.bench.command import run

    return run(args)


def add_run(sub) -> None:
    p = sub.add_parser("run", help="run a converted model on a camera, video, images or a stream",
                       description="Run a .tflite/.onnx model (default: the bundled shapes detector) on a source "
                       "and send the results to sinks. Without a sink option, one JSON line per frame goes to "
                       "stdout; progress and the summary go to stderr.")
    p.add_argument("model", nargs="?", default=None, help=".tflite or .onnx file (default: the bundled model)")
    where = p.add_mutually_exclusive_group()
    where.add_argument("--camera", type=int, default=None, metavar="N", help="camera N (V4L2 index; CSI/libcamera "
                       "on a Jetson/Pi)")
    where.add_argument("--source", default=None, metavar="URI", help="camera:N | demo | video file | image | DIR | "
                       "glob | rtsp://... | http://... | GStreamer pipeline (default: demo)")
    for kind in sink_types():  # each sink's options come from its module (edgecnn.runtime.sinks)
        for dest, settings in kind.options.items():
            p.add_argument(f"--{dest.replace('_', '-')}", dest=dest, **settings)
    p.add_argument("--backend", default="auto", help="auto | litert | tflite-runtime | onnxruntime")
    p.add_argument("--threads", type=int, default=None, help="inference threads (default: the backend's)")
    p.add_argument("--max-frames", type=int, default=None, metavar="N", help="stop after N results")
    p.add_argument("--realtime", action="store_true", help="play files at their frame rate, dropping frames "
                   "inference cannot keep up with (as a camera would)")
    p.add_argument("--conf", type=float, default=0.25, help="detector score threshold")
    p.add_argument("--iou", type=float, default=None, help="detector NMS overlap threshold (default 0.7)")
    p.add_argument("--track", nargs="?", const=DEFAULT_TRACKER, default=None, metavar="TRACKER",
                   help=f"give each detection a track id, age and state, and send track events new | update | "
                   f"end; TRACKER: {', '.join(tracker_names())} (default {DEFAULT_TRACKER})")
    card = p.add_argument_group("models without a card")
    card.add_argument("--task", default=None, choices=task_names())
    card.add_argument("--input-size", default=None, metavar="N|HxW")
    card.add_argument("--layout", default=None, choices=["nchw", "nhwc"])
    card.add_argument("--mean", default=None, metavar="M[,M,M]", help="pixel units 0..255, input = (pixel - mean) / std")
    card.add_argument("--std", default=None, metavar="S[,S,S]")
    card.add_argument("--labels", default=None, metavar="FILE|a,b,c")
    card.add_argument("--bgr", action="store_true", help="the model takes BGR (default RGB)")
    card.add_argument("--preset", default=None, choices=list(PRESETS), help="the usual mean/std of a family: "
                      "imagenet (torchvision, timm), unit (pixel / 255), symmetric (-1..1)")
    card.add_argument("--head", default=None, metavar="FORMAT[:ARGS]",
                      help=f"detector output format: {', '.join(head_names())} (edgecnn.runtime.heads; "
                      "ltrb-sigmoid takes its strides, e.g. ltrb-sigmoid:8,16,32)")
    card.add_argument("--mask-threshold", type=float, default=None, metavar="P",
                      help="a one-channel segmenter's probability threshold (default 0.5)")


def run_run(args) -> int:
    import time

    started = time.perf_counter()
    from edgecnn.runtime.card_options import CardOptions
    from edgecnn.runtime.runner import RunOptions, run

    card = CardOptions(task=args.task, input_size=args.input_size, layout=args.layout, mean=args.mean,
                       std=args.std, labels=args.labels, bgr=args.bgr, head=args.head, preset=args.preset,
                       mask_threshold=args.mask_threshold)
    sinks = {dest: getattr(args, dest) for dest in option_dests()}
    run(RunOptions(model=args.model, source=args.source, camera=args.camera, backend=args.backend,
                   threads=args.threads, max_frames=args.max_frames, realtime=args.realtime, conf=args.conf,
                   iou=args.iou, card=card, sinks=sinks, track=args.track), started=started)
    return 0


def add_quantize(sub) -> None:
    p = sub.add_parser("quantize", help="int8 post-training quantization, refused beyond the accuracy budget",
                       description="PT2E int8 (per-channel weights) calibrated on real images through the "
                       "training preprocessing; measured on the held-out split beside the fp32 model. Writes a "
                       ".pt2 program with its card, which `edgecnn convert` turns into a full-int8 TFLite file.")
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
    p.add_argument("--max-drop", type=float, default=1.0, help="accuracy budget in points (top-1, or "
                   "mAP@0.5:0.95 for detectors)")
    p.add_argument("--force", action="store_true", help="write the model even beyond the budget")
    p.add_argument("--out", required=True, help="output .pt2 path (.onnx for an .onnx source)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--json", action="store_true")


def run_quantize(args) -> int:
    from edgecnn.compress.quantize import QuantizeOptions, quantize_checkpoint
    from edgecnn.runtime.card_options import CardOptions

    options = QuantizeOptions(data=args.data, calib=args.calib, calib_images=args.calib_images,
                              per_channel=not args.per_tensor, max_drop=args.max_drop, mixed=args.mixed,
                              float_layers=[n for n in args.float_layers.split(",") if n],
                              qat=args.qat, epochs=args.epochs, lr=args.lr, force=args.force, seed=args.seed,
                              card_options=CardOptions(labels=args.labels, preset=args.preset),
                              weight_bits=args.weight_bits)
    log = (lambda message: print(message, file=sys.stderr, flush=True)) if args.json else print
    if args.model.lower().endswith(".onnx"):
        from converters.quantize_onnx import quantize_onnx_file

        summary = quantize_onnx_file(args.model, args.out, options, log=log)
    else:
        summary = quantize_checkpoint(args.model, args.out, options, log=log)
    print(json.dumps(summary) if args.json else f"wrote {args.out}: {summary['gate']['metric']} "
          f"{100 * summary['int8'][summary['gate']['metric']]:.2f} (fp32 "
          f"{100 * summary['fp32'][summary['gate']['metric']]:.2f})")
    return 0


def add_convert(sub) -> None:
    p = sub.add_parser("convert", help="convert to ONNX and/or TFLite (fp32, int8), checked against PyTorch",
                       description="SRC: an edgecnn checkpoint, an int8 .pt2 from `edgecnn quantize`, "
                       "file.py:factory (+ --weights), TorchScript, or a torch.export .pt2. Each file gets a "
                       "parity report on held-out real images and is written only if it passes.")
    p.add_argument("src")
    p.add_argument("--to", default="all", choices=["onnx", "tflite", "all"])
    p.add_argument("--precision", default=None, choices=["fp32", "int8", "both", "auto"],
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
    p.add_argument("--task", default="classify", choices=task_names(), help="models without a card")
    p.add_argument("--input-size", default=None, help="N or HxW, for models without a card")
    p.add_argument("--labels", default=None, help="FILE or name,name,... for models without a card")
    p.add_argument("--mean", default=None, help="M or M,M,M in pixel units (default 127.5)")
    p.add_argument("--std", default=None, help="S or S,S,S in pixel units (default 127.5)")
    p.add_argument("--color", default="rgb", choices=["rgb", "bgr", "gray"])
    p.add_argument("--json", action="store_true")


def run_convert(args) -> int:
    from converters.sources import CardFlags
    from converters.convert import ConvertOptions, convert

    flags = CardFlags(task=args.task, input_size=args.input_size, labels=args.labels, mean=args.mean,
                      std=args.std, color=args.color)
    options = ConvertOptions(to=args.to, precision=args.precision, out=args.out, data=args.data, calib=args.calib,
                             calib_images=args.calib_images, parity_images=args.parity_images,
                             max_drop=args.max_drop, force=args.force, threads=args.threads, keep_work=args.keep_work,
                             weights=args.weights, flags=flags,
                             float_layers=[n for n in args.float_layers.split(",") if n])
    log = (lambda message: print(message, file=sys.stderr, flush=True)) if args.json else print
    summaries = convert(args.src, options, log)
    if args.json:
        print(json.dumps(summaries, default=float))
    else:
        for summary in summaries:
            print(f"wrote {summary['file']}")
    return 0


def add_prune(sub) -> None:
    p = sub.add_parser("prune", help="structured channel pruning + fine-tuning, refused beyond the accuracy budget",
                       description="Removes whole channels through Torch-Pruning's dependency graph until the "
                       "target is met, fine-tunes, and measures the result beside the original on the held-out split.")
    p.add_argument("model", help="an fp32 edgecnn checkpoint")
    target = p.add_mutually_exclusive_group(required=True)
    target.add_argument("--target-macs", type=float, help="fraction of the MACs to keep, e.g. 0.5")
    target.add_argument("--target-latency-ms", type=float, help="fp32 latency to reach, measured with "
                        "onnxruntime on this device")
    p.add_argument("--importance", default="magnitude", choices=["magnitude", "taylor", "bn-scale", "lamp", "random"])
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


def run_prune(args) -> int:
    from converters.latency import onnx_latency_ms
    from edgecnn.compress.prune import PruneOptions, prune_checkpoint

    options = PruneOptions(target_macs=args.target_macs, target_latency_ms=args.target_latency_ms,
                           importance=args.importance, data=args.data, epochs=args.epochs, lr=args.lr,
                           batch=args.batch, max_drop=args.max_drop, force=args.force, threads=args.threads,
                           seed=args.seed, keep_work=args.keep_work, latency_ms=onnx_latency_ms)
    log = (lambda message: print(message, file=sys.stderr, flush=True)) if args.json else print
    try:
        summary = prune_checkpoint(args.model, args.out, options, log=log)
    except KeyboardInterrupt:
        print(f"interrupted: the last complete fine-tuning checkpoint is in "
              f"{args.out.rsplit('.', 1)[0]}-finetune/last.pt", file=sys.stderr)
        return 130
    print(json.dumps(summary) if args.json else f"wrote {args.out}")
    return 0


COMMANDS = {"train": (add_train, run_train), "eval": (add_eval, run_eval), "info": (add_info, run_info),
            "shapes": (add_shapes, run_shapes), "bench": (add_bench, run_bench)}
COMMANDS["run"] = (add_run, run_run)
COMMANDS["quantize"] = (add_quantize, run_quantize)
COMMANDS["convert"] = (add_convert, run_convert)
COMMANDS["prune"] = (add_prune, run_prune)


def build_parser() -> ArgumentParser:
    from edgecnn import __version__

    parser = ArgumentParser(prog="edgecnn", description="Train, compress, convert and run CNNs on edge devices.")
    parser.add_argument("--version", action="version", version=f"edgecnn {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=ArgumentParser)
    for add, _ in COMMANDS.values():
        add(sub)
    return parser


def main(argv: Optional[List[str]] = None) -> None:
    try:
        parser = build_parser()
        args = parser.parse_args(argv)
        if not args.command:
            parser.print_help()
            sys.exit(2)
        code = COMMANDS[args.command][1](args)
    except UserError as exc:
        print(f"edgecnn: error: {exc}", file=sys.stderr)
        code = exc.exit_code
    except GateRefused as exc:
        print(f"edgecnn: refused: {exc}", file=sys.stderr)
        code = exc.exit_code
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        code = 130
    except BrokenPipeError:  # output piped into `head` and the like: stop quietly
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        code = 0
    sys.exit(code)
