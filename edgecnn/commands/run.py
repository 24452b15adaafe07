"""`edgecnn run`: a model on a camera, video, images or a stream, its results sent to
sinks. Its options come from the registries: every sink's own options, the sources,
backends, trackers and heads."""
from __future__ import annotations

from edgecnn.commands import Command, add_card_flags, card_options
from edgecnn.core.errors import UserError


def add(p) -> None:
    from edgecnn.runtime.backends import backend_names
    from edgecnn.runtime.sinks import sink_types
    from edgecnn.runtime.sources import source_types
    from edgecnn.runtime.trackers import DEFAULT_TRACKER, tracker_names

    p.add_argument("model", nargs="?", default=None, help=".tflite or .onnx file (default: the bundled model)")
    p.add_argument("--config", default=None, metavar="FILE.yaml", help="several cameras (and models, sinks) in one "
                   "process, described by a config file (python -m edgecnn.config prints its JSON Schema); "
                   "--json, --serve, --publish and --max-frames beside it apply to the whole run")
    p.add_argument("--check", action="store_true", help="with --config: validate the file and open nothing")
    p.add_argument("--strict", action="store_true", help="an input that cannot be decoded ends the run (exit 2) "
                   "instead of being counted and skipped (exit 4 at the end)")
    where = p.add_mutually_exclusive_group()
    where.add_argument("--camera", type=int, default=None, metavar="N", help="camera N (V4L2 index; CSI/libcamera "
                       "on a Jetson/Pi)")
    where.add_argument("--source", default=None, metavar="URI[?OPTION=VALUE&...]", help=" | ".join(
        kind.example or kind.name for kind in source_types()) + " (default: demo)")
    for kind in sink_types():  # each sink's options come from its module (edgecnn.runtime.sinks)
        for dest, settings in kind.options.items():
            p.add_argument(f"--{dest.replace('_', '-')}", dest=dest, **settings)
    p.add_argument("--health", default=None, metavar="HOST:PORT", help="serve only /healthz (200 while every "
                   "camera is live, else 503) and /metrics (Prometheus), without a token (states and counters "
                   "only; host defaults to 127.0.0.1)")
    p.add_argument("--backend", default="auto", metavar="NAME[:OPTION=VALUE,...]",
                   help=f"auto | {' | '.join(backend_names())} (edgecnn.runtime.backends), with its options, e.g. "
                   "onnxruntime:providers=cuda,cpu or litert:delegate=/usr/lib/libedgetpu.so.1")
    p.add_argument("--threads", type=int, default=None, help="inference threads (default: the backend's)")
    p.add_argument("--max-frames", type=int, default=None, metavar="N", help="stop after N results")
    p.add_argument("--realtime", action="store_true", help="play files at their frame rate, dropping frames "
                   "inference cannot keep up with (as a camera would)")
    p.add_argument("--conf", type=float, default=0.25, help="detector score threshold")
    p.add_argument("--iou", type=float, default=None, help="detector NMS overlap threshold (default 0.7)")
    p.add_argument("--track", nargs="?", const=DEFAULT_TRACKER, default=None, metavar="TRACKER",
                   help=f"give each detection a track id, age and state, and send track events new | update | "
                   f"end; TRACKER: {', '.join(tracker_names())} (default {DEFAULT_TRACKER})")
    p.add_argument("--no-verify", action="store_true", help="run a model whose weights do not match the digest "
                   "its card records (changed or corrupted after conversion)")
    p.add_argument("--zone", action="append", default=None, metavar="NAME=x1,y1,x2,y2,...[:OPTION=VALUE,...]",
                   help="a zone whose enter, exit and dwell are events and whose occupancy is counted; coordinates "
                   "in pixels, or fractions of the frame when all are within 0..1; options labels=a,b, "
                   "min_time=S, dwell=S, dwell_repeat=1, anchor=bottom-center|center|..., fractions=0|1; "
                   "may be repeated")
    p.add_argument("--line", action="append", default=None, metavar="NAME=x1,y1,x2,y2[:OPTION=VALUE,...]",
                   help="a line whose crossings are events, counted in and out; options in=left|right (of "
                   "x1,y1 -> x2,y2: which way is in), labels=a,b, margin=PIXELS, anchor=...; may be repeated")
    add_card_flags(p)
    from edgecnn.core.task import record_option_specs

    records = p.add_argument_group("what each task's records carry (JSON lines and every publisher)")
    for name, settings in record_option_specs().items():
        records.add_argument(f"--{name.replace('_', '-')}", dest=name, **{**settings, "default": None})


# one-camera options that a config file gives per camera or per model instead
ONE_CAMERA = ("model", "camera", "source", "backend", "threads", "realtime", "conf", "iou", "track", "zone", "line",
              "task",
              "input_size", "layout", "mean", "std", "labels", "bgr", "preset", "head", "mask_threshold")
DEFAULTS = {"backend": "auto", "conf": 0.25}


def run(args) -> int:
    import sys
    import time

    started = time.perf_counter()
    from edgecnn.core.task import record_option_specs
    from edgecnn.runtime.runner import EXIT_SKIPPED, RunOptions, run as run_model
    from edgecnn.runtime.sinks import option_dests

    sinks = {dest: getattr(args, dest) for dest in option_dests()}
    records = {name: getattr(args, name) for name in record_option_specs()}
    if args.config is not None:
        summary = run_config(args, sinks, records, started)
        if summary is None:
            return 0
    else:
        if args.check:
            raise UserError("--check validates a config file: give --config FILE.yaml")
        summary = run_model(RunOptions(model=args.model, source=args.source, camera=args.camera,
                                       backend=args.backend, threads=args.threads, max_frames=args.max_frames,
                                       realtime=args.realtime, conf=args.conf, iou=args.iou, card=card_options(args),
                                       sinks=sinks, track=args.track, records=records, strict=args.strict,
                                       verify=not args.no_verify, health=args.health,
                                       zones=args.zone or [], lines=args.line or []),
                            started=started)
    skipped = summary.get("skipped", 0)
    if skipped:
        print(f"edgecnn: {skipped} input(s) could not be decoded and were skipped (named above); exit "
              f"{EXIT_SKIPPED}", file=sys.stderr)
        return EXIT_SKIPPED
    return 0


def run_config(args, sinks, records, started):
    """`--config FILE`: the file's plan, with the run-wide options given beside it."""
    from edgecnn.runtime.config import check_plan, load_config
    from edgecnn.runtime.runner import run as run_model

    given = [name for name in ONE_CAMERA if getattr(args, name, None) not in (None, False, DEFAULTS.get(name))]
    if given:
        raise UserError(f"--{given[0].replace('_', '-')} is given per camera or per model in the config file, "
                        f"not beside --config")
    plan = load_config(args.config)
    for dest, value in sinks.items():
        if value not in (None, False):
            plan.sinks[dest] = value
    plan.records.update({k: v for k, v in records.items() if v is not None})
    if args.max_frames is not None:
        for camera in plan.cameras.values():
            camera.max_frames = args.max_frames
    plan.strict = plan.strict or args.strict
    if args.health is not None:  # checked here, so that an error names the option, not the file
        from edgecnn.runtime.http_server import parse_address

        parse_address(args.health, "--health")
        plan.health = args.health
    if args.no_verify:
        for model in plan.models.values():
            model.verify = False
    if args.check:
        lines = check_plan(plan)
        print("\n".join([f"{args.config}: valid, {len(plan.cameras)} camera(s), "
                          f"{len({c.model for c in plan.cameras.values()})} model(s)", *lines]))
        return None
    return run_model(plan, started=started)


COMMAND = Command(path=("run",), help="run a converted model on a camera, video, images or a stream", add=add,
                  run=run, description="Run a .tflite/.onnx model (default: the bundled shapes detector) on a "
                  "source and send the results to sinks. Without a sink option, one JSON line per frame goes to "
                  "stdout; progress and the summary go to stderr.")
