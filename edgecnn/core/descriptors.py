"""Output that native libraries print straight to file descriptors 1 and 2, around
Python's error handling, redirected for a block: one lock and one way of saving and
restoring the descriptors for both uses.

- `native_stderr()`: TFLite and FFmpeg (inside OpenCV) write to descriptor 2 (a corrupt
  video gives "moov atom not found" before our own one-line error; every TFLite load
  says "INFO: Created ... XNNPACK delegate"). What was printed is passed on afterwards
  unless the caller drops it because its own error line says it better.
- `quiet()`: the conversion toolchain (litert-torch's progress tree, absl and TFLite
  logs, torchao's warnings about GPU kernels a CPU build lacks, the ONNX exporter's
  graph dump) is silenced on descriptors 1 and 2 and in Python's warnings; edgecnn
  reports what matters itself.
"""
from __future__ import annotations

import contextlib
import io
import logging
import os
import sys
import tempfile
import threading
import warnings
from typing import Dict, Iterator, List

_LOCK = threading.RLock()  # descriptors are process-wide: one redirection at a time
NOISE = ("INFO: Created TensorFlow Lite",)

for _name in ("torchao", "torch.utils._pytree", "root"):
    logging.getLogger(_name).setLevel(logging.ERROR)


@contextlib.contextmanager
def _redirected(descriptors, target: int) -> Iterator[None]:
    """Descriptors pointed at `target` for the block, then restored."""
    sys.stdout.flush()
    sys.stderr.flush()
    saved: Dict[int, int] = {fd: os.dup(fd) for fd in descriptors}
    try:
        for fd in saved:
            os.dup2(target, fd)
        yield
    finally:
        sys.stdout.flush()
        sys.stderr.flush()
        for fd, copy in saved.items():
            os.dup2(copy, fd)
            os.close(copy)


class Captured:
    def __init__(self) -> None:
        self.lines: List[str] = []
        self.forward = True  # set False inside the block to swallow what was printed


@contextlib.contextmanager
def native_stderr() -> Iterator[Captured]:
    captured = Captured()
    with _LOCK, tempfile.TemporaryFile() as sink:
        with _redirected((2,), sink.fileno()):
            yield captured
        sink.seek(0)
        captured.lines = [line for line in sink.read().decode(errors="replace").splitlines()
                          if line.strip() and not line.startswith(NOISE)]
    if captured.forward and captured.lines:
        print("\n".join(captured.lines), file=sys.stderr, flush=True)


@contextlib.contextmanager
def quiet() -> Iterator[None]:
    with _LOCK:
        devnull = os.open(os.devnull, os.O_WRONLY)
        try:
            with _redirected((1, 2), devnull), contextlib.redirect_stdout(io.StringIO()), \
                    warnings.catch_warnings():
                warnings.simplefilter("ignore")
                yield
        finally:
            os.close(devnull)
