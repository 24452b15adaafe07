"""Run edgecnn's device runtime on an emulated Raspberry Pi and check it agrees with x86.

    python devices/emulated_pi.py [--workdir DIR] [--cpu cortex-a72|cortex-a76] [--frames 30]
                                  [--camera-frames 3] [--raw-frames 3] [--pytest] [--json PATH]
    python devices/emulated_pi.py --compare REFERENCE.jsonl DEVICE.jsonl [--json PATH]

(`python -m devices.emulated_pi` is the same.) Exit codes: 0 everything agrees (and,
with --pytest, the emulated tests pass); 1 a disagreement, a failed emulated test or a
failed step (the summary or one line says which); 2 a prerequisite is missing or an
argument is wrong (one line on stderr naming it). The harness needs only the standard
library (Python 3.9+); the host Python that computes the x86 reference, --host-python,
needs edgecnn[runtime].
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Optional, Sequence

from devices.emulated_pi.checks import PYTEST_FILES
from devices.emulated_pi.compare import compare_records, read_records
from devices.emulated_pi.emulate import emulate
from devices.emulated_pi.steps import Failed, Missing
from devices.emulated_pi.sysroot import CPUS, debian_mirror

PROG = "emulated_pi.py"
DEFAULT_WORKDIR = "/tmp/edgecnn-emulated-pi"
CHECKOUT = Path(__file__).resolve().parents[2]


class ArgumentParser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # type: ignore[override]
        raise Missing(message)


def parse_args(argv: Optional[Sequence[str]]) -> argparse.Namespace:
    parser = ArgumentParser(prog=PROG, description=__doc__.split("\n\n")[0])
    parser.add_argument("--workdir", default=DEFAULT_WORKDIR, help=f"cache for the sysroot and venv "
                        f"(default {DEFAULT_WORKDIR}; reused when already built)")
    parser.add_argument("--cpu", default="cortex-a76", choices=sorted(CPUS),
                        help="emulated CPU: cortex-a72 (Raspberry Pi 4) or cortex-a76 (Raspberry Pi 5)")
    parser.add_argument("--frames", type=int, default=30, help="demo frames per emulated run (default 30)")
    parser.add_argument("--camera-frames", type=int, default=3,
                        help="frames per camera of the two-camera `edgecnn run --config` check (default 3; 0 skips it)")
    parser.add_argument("--raw-frames", type=int, default=3,
                        help="first demo frames whose raw model outputs are compared (default 3)")
    parser.add_argument("--pytest", action="store_true",
                        help=f"also run the torch-free tests of {', '.join(PYTEST_FILES)} emulated")
    parser.add_argument("--json", metavar="PATH", help="also write the JSON summary here")
    parser.add_argument("--compare", nargs=2, metavar=("REFERENCE", "DEVICE"),
                        help="only compare two `edgecnn run --json` outputs of the same source "
                             "(e.g. x86 and a real Pi)")
    parser.add_argument("--host-python", default=sys.executable,
                        help="Python with edgecnn[runtime] for the x86 reference (default: this one)")
    parser.add_argument("--repo", default=str(CHECKOUT), help="the edgecnn checkout (default: this one)")
    parser.add_argument("--mirror", default=None, help="Debian mirror for the sysroot (default: the host apt's)")
    parser.add_argument("--tools-path", default=None,
                        help="search these directories (':'-separated) for qemu-aarch64-static, apt-get and "
                             "dpkg-deb instead of $PATH")
    args = parser.parse_args(argv)
    args.mirror = (args.mirror or debian_mirror()).rstrip("/")
    return args


def write_json(path: str, summary: dict) -> None:
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    staging = target.with_name(target.name + ".tmp")
    staging.write_text(json.dumps(summary, indent=2) + "\n")
    staging.replace(target)


def main(argv: Optional[Sequence[str]] = None) -> int:
    try:
        args = parse_args(argv)
        if args.compare:
            reference, device = (read_records(path) for path in args.compare)
            summary = {"reference": args.compare[0], "device": args.compare[1],
                       **compare_records(reference, device)}
        else:
            summary = emulate(args)
    except Missing as exc:
        print(f"{PROG}: {exc}", file=sys.stderr)
        return 2
    except Failed as exc:
        print(f"{PROG}: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print(f"{PROG}: interrupted", file=sys.stderr)
        return 1
    print(json.dumps(summary, indent=2))
    if args.json:
        try:
            write_json(args.json, summary)
        except OSError as exc:
            print(f"{PROG}: {args.json}: cannot write: {exc.strerror or exc}", file=sys.stderr)
            return 2
    return 0 if summary.get("agree") and summary.get("pytest", {}).get("passed", True) else 1
