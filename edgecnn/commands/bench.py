"""`edgecnn bench`: latency of model files per backend and thread count, here or on a remote device."""
from __future__ import annotations

from edgecnn.commands import Command, positive_float


def add(p) -> None:
    from edgecnn.runtime.backends import backend_names

    p.add_argument("models", nargs="+", metavar="MODEL", help=".onnx/.tflite files")
    p.add_argument("--backend", default="all", metavar="all|auto|NAME[:OPTION=VALUE,...]",
                   help=f"all (every installed backend that runs the file), auto, or one of {', '.join(backend_names())} "
                   "with its options (edgecnn.runtime.backends)")
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


def run(args) -> int:
    from edgecnn.bench.command import run as run_bench

    return run_bench(args)


COMMAND = Command(path=("bench",), help="measure inference latency (`bench report` turns results into tables)",
                  add=add, run=run, description="Latency p50/p90/p99, FPS, load time, first inference and peak RSS "
                  "per model, backend and thread count, each configuration in a fresh process. "
                  "`edgecnn bench report FILES... [--out DIR]` turns JSON lines results into a Markdown table and "
                  "a PNG chart.")
