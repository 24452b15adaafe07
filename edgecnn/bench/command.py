"""What `edgecnn bench` does with its parsed arguments: check them, measure here or on
a remote device, print the table, append the JSON lines; or `bench report`."""
from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import List, Optional

from edgecnn.core.errors import UserError
from edgecnn.runtime.card_options import parse_input_size



def parse_threads(text: Optional[str]) -> List[int]:
    """'1,2,4' -> [1, 2, 4]; default: 1 and all cores."""
    if text is None:
        return sorted({1, os.cpu_count() or 1})
    try:
        values = [int(part) for part in text.split(",") if part.strip()]
    except ValueError:
        raise UserError(f"--threads: expected comma-separated integers like 1,2,4, got {text!r}") from None
    if not values or min(values) < 1:
        raise UserError(f"--threads: every count must be >= 1, got {text!r}")
    return list(dict.fromkeys(values))


def check_models(models: List[str]) -> None:
    for model in models:
        suffix = Path(model).suffix.lower()
        if suffix not in (".onnx", ".tflite"):
            raise UserError(f"{model}: the bench runs .onnx and .tflite files")
        if not Path(model).is_file():
            raise UserError(f"{model}: no such model file")


def run(args) -> int:
    if args.backend not in ("all", "auto"):
        from edgecnn.runtime.backends import parse_backend

        try:
            parse_backend(args.backend)  # an unknown backend or option: one line listing the known ones
        except UserError as exc:
            raise UserError(f"--backend: {exc}") from None
    if args.runs < 1 or args.warmup < 0 or args.frames < 1:
        raise UserError("--runs and --frames must be >= 1 and --warmup >= 0")
    threads = parse_threads(args.threads)
    input_size = parse_input_size(args.input_size) if args.input_size else None
    check_models(args.models)
    show_progress = args.progress or sys.stderr.isatty()
    from edgecnn.bench.measure import write_json_lines
    from edgecnn.bench.report import text_table

    if args.remote:
        records = run_on_remote(args, show_progress)
        if args.json:
            write_json_lines(records, args.json)
    else:
        from edgecnn.bench.measure import expand_configs, run_configs

        configs = expand_configs(args.models, args.backend, threads, args.runs, args.warmup, args.pipeline,
                                 args.frames, input_size)
        # each record is written as soon as it is measured: an interrupted bench keeps its results
        records = run_configs(configs, isolate=not args.same_process, show_progress=show_progress,
                              device_name=args.device_name, timeout=args.timeout,
                              on_record=(lambda r: write_json_lines([r], args.json)) if args.json else None)
    table_stream = sys.stderr if args.json == "-" else sys.stdout
    print(text_table(records), file=table_stream, flush=True)
    if args.json and args.json != "-":
        print(f"results appended to {args.json}", file=table_stream)
    if records and all(r.get("status") != "ok" for r in records):
        raise UserError("no configuration could be measured (reasons in the table above)")
    return 0


def run_on_remote(args, show_progress: bool) -> list:
    from edgecnn.bench.remote import SshTarget, run_remote

    names = [Path(m).name for m in args.models]
    if len(set(names)) != len(names):
        raise UserError("--remote: model files need distinct names (they are copied into one directory)")
    target = SshTarget(args.remote, args.ssh_config, args.connect_timeout)
    options = {"backend": args.backend, "threads": args.threads, "runs": args.runs, "warmup": args.warmup,
               "timeout": args.timeout, "input_size": args.input_size,
               "pipeline": args.pipeline, "frames": args.frames if args.pipeline else None,
               "device_name": args.device_name, "progress": show_progress}
    return run_remote(target, args.models, options, python=args.remote_python)


def run_report(files: List[str], out: str) -> int:
    from edgecnn.bench.measure import read_json_lines
    from edgecnn.bench.report import write_report

    if not files:
        raise UserError("bench report: give one or more JSON lines files written by `edgecnn bench --json`")
    records = read_json_lines(files)
    if not records:
        raise UserError("bench report: the files hold no bench records")
    text, md, png = write_report(records, out)
    print(text, end="")
    print(f"wrote {md} and {png}", file=sys.stderr)
    return 0
