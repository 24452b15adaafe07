"""Keeping the conversion toolchain's chatter out of edgecnn's output.

litert-torch prints a progress tree per stage, absl and TFLite log to descriptor 2,
torchao warns about GPU kernels a CPU build lacks, and the ONNX exporter dumps the
whole graph to descriptor 1 before raising. edgecnn reports what matters itself (one
line on failure, a parity report on success), so the toolchain runs inside `quiet()`,
which silences descriptors 1 and 2 and Python warnings for the block.
"""
from __future__ import annotations

import contextlib
import io
import logging
import os
import sys
import threading
import warnings
from typing import Iterator

for _name in ("torchao", "torch.utils._pytree", "root"):
    logging.getLogger(_name).setLevel(logging.ERROR)

_LOCK = threading.RLock()


@contextlib.contextmanager
def quiet() -> Iterator[None]:
    with _LOCK:
        sys.stdout.flush()
        sys.stderr.flush()
        saved = {fd: os.dup(fd) for fd in (1, 2)}
        devnull = os.open(os.devnull, os.O_WRONLY)
        try:
            for fd in saved:
                os.dup2(devnull, fd)
            with contextlib.redirect_stdout(io.StringIO()), warnings.catch_warnings():
                warnings.simplefilter("ignore")
                yield
        finally:
            sys.stdout.flush()
            sys.stderr.flush()
            for fd, copy in saved.items():
                os.dup2(copy, fd)
                os.close(copy)
            os.close(devnull)
