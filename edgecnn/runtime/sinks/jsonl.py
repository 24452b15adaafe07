"""JSON lines: the result records (edgecnn.runtime.schema: one per frame, then one per
track event), flushed per line so a reader (a robot process, `tail -f`) sees each
frame as it happens. "-" is stdout."""
from __future__ import annotations

import sys
from pathlib import Path

from edgecnn.core.errors import UserError
from edgecnn.runtime.schema import encode, records
from edgecnn.runtime.sinks import Sink, SinkType
from edgecnn.tasks.segment.result import MASK_FORMATS


class JsonLinesSink(Sink):
    """The records of each frame, one JSON line each, flushed per frame. "-" is stdout."""

    def __init__(self, target: str, masks: str = "rle") -> None:
        self.target = target
        self.options = {"masks": masks}  # what a segmenter's records carry besides per-label areas
        if target == "-":
            self.handle, self._owned = sys.stdout, False
        else:
            try:
                Path(target).parent.mkdir(parents=True, exist_ok=True)
                self.handle, self._owned = open(target, "w", encoding="utf-8"), True
            except OSError as exc:
                raise UserError(f"cannot write {target}: {exc.strerror or exc}") from None

    def write(self, image, result) -> None:
        self.handle.write("".join(encode(record).decode() + "\n" for record in records(result, **self.options)))
        self.handle.flush()

    def close(self, completed: bool = True) -> None:
        if self._owned:
            self.handle.close()


SINK = SinkType(
    name="jsonl",
    records_the_run=True,
    options={"json": dict(default=None, metavar="PATH", help="JSON lines, one record per frame ('-': stdout; "
                          "the default when no other output is named)"),
             "masks": dict(default="rle", choices=MASK_FORMATS, help="segmenters: what each record carries "
                           "besides per-label areas: the label map run-length encoded (default), its outline "
                           "polygons, or none")},
    opener=lambda values, context: JsonLinesSink(values["json"], values.get("masks") or "rle"),
    default={"json": "-"},
)
