"""The files a run writes, claimed before any model loads, so that no output ever
destroys an input or another output:

- an output that is one of the run's inputs (a source file, a model, the config) is
  refused: `--json video.mp4` would truncate the video it reads;
- an output named twice in one run (two cameras, or a camera and the whole run) is
  refused;
- an output another running edgecnn is writing is refused: each claim holds an
  exclusive lock (in the temporary directory, keyed by the output's real path) until
  the run ends, so two runs never share one file and lose records;
- an output whose directory cannot be written is one line before the model loads, not
  a failure after it.
"""
from __future__ import annotations

import fcntl
import hashlib
import os
import tempfile
from pathlib import Path
from typing import Dict, Iterable, List, Optional

from edgecnn.core.errors import UserError

LOCKS = Path(tempfile.gettempdir()) / "edgecnn-outputs"


def real_path(path: str) -> Path:
    return Path(os.path.abspath(os.path.expanduser(str(path)))).resolve()


class OutputClaims:
    """The outputs of one run; `release()` (or leaving a with-block) lets them go."""

    def __init__(self, inputs: Iterable[str] = ()) -> None:
        self.inputs = {real_path(p): str(p) for p in inputs if p and os.path.exists(str(p))}
        self.claimed: Dict[Path, str] = {}
        self._locks: List[int] = []

    def claim(self, path: Optional[str], what: str) -> None:
        """`what` names the output in messages ("--json", "camera front's --save")."""
        if path in (None, "", "-"):
            return
        resolved = real_path(path)
        if resolved.exists() and not resolved.is_file() and not resolved.is_dir():
            return  # /dev/null, a FIFO, a terminal: nothing on disk to protect or to share
        if resolved in self.inputs:
            raise UserError(f"{what} {path} is an input of this run ({self.inputs[resolved]}); writing it would "
                            f"destroy it: choose another path")
        if resolved in self.claimed:
            raise UserError(f"{what} {path} is also {self.claimed[resolved]}: two outputs of one run cannot share "
                            f"a file")
        if resolved.is_dir():
            raise UserError(f"{what} {path} is a directory; name a file")
        parent = resolved.parent
        try:
            parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise UserError(f"cannot write {path}: {exc.strerror or exc}") from None
        try:  # a real file made and removed: permissions, read-only mounts and full disks all show here
            with tempfile.NamedTemporaryFile(dir=parent, prefix=f".{resolved.name}.", suffix=".check"):
                pass
        except OSError as exc:
            raise UserError(f"cannot write {path}: {exc.strerror or exc} ({parent})") from None
        self._lock(resolved, path, what)
        self.claimed[resolved] = what

    def claim_directory(self, path: Optional[str], what: str) -> None:
        """A directory the run writes files into (event clips): made if missing, and
        proven writable by making a file there, before any model loads."""
        if path in (None, ""):
            return
        resolved = real_path(path)
        if resolved in self.inputs:
            raise UserError(f"{what} {path} is an input of this run; choose another directory")
        try:
            resolved.mkdir(parents=True, exist_ok=True)
            with tempfile.NamedTemporaryFile(dir=resolved, prefix=".edgecnn.", suffix=".check"):
                pass
        except OSError as exc:
            raise UserError(f"cannot write into {what} {path}: {exc.strerror or exc}") from None

    def _lock(self, resolved: Path, path: str, what: str) -> None:
        LOCKS.mkdir(parents=True, exist_ok=True)
        lock = LOCKS / (hashlib.sha256(str(resolved).encode()).hexdigest()[:32] + ".lock")
        fd = os.open(lock, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.pread(fd, 32, 0).decode(errors="replace").strip()
            os.close(fd)
            raise UserError(f"{what} {path} is being written by another edgecnn run"
                            f"{f' (process {holder})' if holder else ''}; name another file") from None
        os.ftruncate(fd, 0)
        os.pwrite(fd, str(os.getpid()).encode(), 0)
        self._locks.append(fd)

    def release(self) -> None:
        for fd in self._locks:
            try:
                os.ftruncate(fd, 0)
                fcntl.flock(fd, fcntl.LOCK_UN)
            finally:
                os.close(fd)
        self._locks.clear()

    def __enter__(self) -> "OutputClaims":
        return self

    def __exit__(self, *exc) -> None:
        self.release()
