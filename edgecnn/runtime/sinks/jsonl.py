"""JSON lines: the result records (edgecnn.runtime.schema: one per frame, then one per
track event), flushed per line so a reader (a robot process, `tail -f`) sees each
frame as it happens. "-" is stdout."""
from __future__ import annotations

import sys
from pathlib import Path

from edgecnn.core.errors import UserError
from edgecnn.runtime.schema import encode, records
from edgecnn.runtime.sinks import Sink, SinkType


class JsonLinesSink(Sink):
    """The records of each frame, one JSON line each, flushed per frame. "-" is stdout."""

    uses_image = False  # records only: the queue in front keeps no frames

    def __init__(self, target: str, **record_options) -> None:
        self.target = target
        self.options = record_options  # what the tasks' records carry by option (a segmenter's masks=)
        if target == "-":
            self.handle, self._owned = sys.stdout, False
        else:
            try:
                Path(target).parent.mkdir(parents=True, exist_ok=True)
                self.handle, self._owned = open(target, "w", encoding="utf-8"), True
            except OSError as exc:
                raise UserError(f"cannot write {target}: {exc.strerror or exc}") from None

    def write(self, image, result) -> None:
        try:
            self.handle.write("".join(encode(record).decode() + "\n" for record in records(result, **self.options)))
            self.handle.flush()
        except OSError as exc:  # a full disk, a pipe closed by its reader
            raise UserError(f"cannot write {self.target}: {exc.strerror or exc}") from None

    def records_in(self, result) -> int:
        return sum(1 for _ in records(result, **self.options))

    def close(self, completed: bool = True) -> None:
        if self._owned:
            try:
                self.handle.close()
            except OSError as exc:
                raise UserError(f"cannot write {self.target}: {exc.strerror or exc}") from None


SINK = SinkType(
    name="jsonl",
    records_the_run=True,
    options={"json": dict(default=None, metavar="PATH", help="JSON lines, one record per frame ('-': stdout; "
                          "the default when no other output is named)")},
    opener=lambda values, context: JsonLinesSink(values["json"], **context.record_options),
    writes=lambda values: [values["json"]] if values.get("json") not in (None, "-") else [],
    default={"json": "-"},
)
