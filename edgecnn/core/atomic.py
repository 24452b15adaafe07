"""Atomic file output: a reader never sees a half-written file at the final path."""
from __future__ import annotations

import contextlib
import os
import tempfile
from pathlib import Path
from typing import Iterator, Union

from edgecnn.core.errors import UserError


@contextlib.contextmanager
def atomic_path(path: Union[str, Path]) -> Iterator[Path]:
    """Yield a temporary path beside `path`; rename it over `path` only on success.

    A crash, Ctrl-C or kill before the rename leaves the previous file (or no file)
    in place; the temporary file is removed on any exception.
    """
    final = Path(path)
    try:
        final.parent.mkdir(parents=True, exist_ok=True)
        tmp = temporary_beside(final)
    except OSError as exc:
        raise UserError(f"cannot write {final}: {exc.strerror or exc}") from None
    try:
        yield tmp
        os.replace(tmp, final)
    finally:
        if tmp.exists():
            tmp.unlink()


def temporary_beside(final: Path) -> Path:
    """A new empty file in `final`'s folder, named for it and unique to this call (two
    processes writing the same final path never share one), to be renamed over it."""
    # the temporary name keeps the final suffix: writers such as torch.export.save check it
    fd, tmp_name = tempfile.mkstemp(prefix=f".{final.name}.", suffix=f".tmp{final.suffix}", dir=final.parent)
    os.close(fd)
    return Path(tmp_name)


def write_bytes_atomic(path: Union[str, Path], data: bytes) -> None:
    with atomic_path(path) as tmp:
        tmp.write_bytes(data)


def write_text_atomic(path: Union[str, Path], text: str) -> None:
    write_bytes_atomic(path, text.encode("utf-8"))
