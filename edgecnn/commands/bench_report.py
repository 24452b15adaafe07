"""`edgecnn bench report FILES... [--out DIR]`: JSON lines written by `edgecnn bench
--json` (from any number of devices) as one Markdown table, a Pareto table of accuracy
against speed, and a PNG chart."""
from __future__ import annotations

from edgecnn.commands import Command


def add(p) -> None:
    p.add_argument("files", nargs="+", metavar="FILE", help="JSON lines files written by `edgecnn bench --json`")
    p.add_argument("--out", default="bench-report", help="output directory (default bench-report)")


def run(args) -> int:
    from edgecnn.bench.command import run_report

    return run_report(args.files, args.out)


COMMAND = Command(path=("bench", "report"), help="tables and a chart from `edgecnn bench --json` results", add=add,
                  run=run)
