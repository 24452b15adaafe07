"""Native libraries (TFLite, FFmpeg inside OpenCV) print straight to file descriptor 2,
around Python's error handling: a corrupt video gives "moov atom not found" before our
own one-line error, every TFLite load says "INFO: Created ... XNNPACK delegate".
`native_stderr()` captures descriptor 2 for a block; what was printed is passed on
afterwards unless the caller drops it (because its own error line says it better).
"""
from __future__ import annotations

import contextlib
import os
import sys
import tempfile
import threading
from typing import Iterator, List

_LOCK = threading.RLock()  # descriptor 2 is process-wide: one capture at a time
NOISE = ("INFO: Created TensorFlow Lite",)


class Captured:
    def __init__(self) -> None:
        self.lines: List[str] = []
        self.forward = True  # set False inside the block to swallow what was printed


@contextlib.contextmanager
def native_stderr() -> Iterator[Captured]:
    captured = Captured()
    with _LOCK:
        sys.stderr.flush()
        saved = os.dup(2)
        with tempfile.TemporaryFile() as sink:
            os.dup2(sink.fileno(), 2)
            try:
                yield captured
            finally:
                sys.stderr.flush()
                os.dup2(saved, 2)
                os.close(saved)
                sink.seek(0)
                captured.lines = [line for line in sink.read().decode(errors="replace").splitlines()
                                  if line.strip() and not line.startswith(NOISE)]
    if captured.forward and captured.lines:
        print("\n".join(captured.lines), file=sys.stderr, flush=True)
