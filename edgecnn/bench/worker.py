"""Measures one bench configuration in a process of its own (started by edgecnn.bench.measure).

Writes JSON lines on stdout: {"event": "progress", "done": N} every few runs and one
{"event": "result", "record": {...}} at the end. A fresh process per configuration
makes load time a cold load and peak RSS that configuration's own.
"""
from __future__ import annotations

import json
import sys
import time


def main(argv=None) -> int:
    from edgecnn.bench.measure import BenchConfig, measure

    args = sys.argv[1:] if argv is None else argv
    config = BenchConfig(**json.loads(args[0]))
    pending = [0]
    last = [time.monotonic()]

    def progress(done: int) -> None:  # at most ~10 messages a second
        pending[0] += done
        now = time.monotonic()
        if now - last[0] >= 0.1:
            emit({"event": "progress", "done": pending[0]})
            pending[0], last[0] = 0, now

    record = measure(config, progress)
    if pending[0]:
        emit({"event": "progress", "done": pending[0]})
    emit({"event": "result", "record": record})
    return 0


def emit(message: dict) -> None:
    sys.stdout.write(json.dumps(message) + "\n")
    sys.stdout.flush()


if __name__ == "__main__":
    sys.exit(main())
