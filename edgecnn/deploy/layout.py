"""Where a deployed service lives on the device, and the one atomic step of a deploy:
pointing `current` at a release.

    ROOT/                        (default /opt/SERVICE: root's, read-only to the service)
      venvs/KEY/                 one venv per edgecnn build, extras and Python; releases share it
      releases/ID/               config.yaml, models/, release.json, venv -> ../../venvs/KEY
      current -> releases/ID     what the unit runs: a new link is renamed over it
      deploy.json                what the first deploy created outside ROOT (the service user)
      cache/pip/                 pip's cache, inside ROOT so that --remove takes it too
    /etc/systemd/system/SERVICE.service    SERVICE: edgecnn, or edgecnn-NAME (--name)
    /var/lib/SERVICE/            the outputs the config names by relative paths (StateDirectory)
    /var/cache/SERVICE/          the runtime's own cache (CacheDirectory)

A release directory is written under a temporary name and renamed into place, so a
release either is complete or does not exist. Release ids sort by time.

Runs on the device, sent over ssh: standard library only, Python 3.9.
"""
from __future__ import annotations

import json
import os
import shutil
import time
from typing import Dict, List, Optional

KEEP_RELEASES = 3  # the current release and the two it can roll back to
UNIT_DIRECTORY = "/etc/systemd/system"
STATE_BASE, CACHE_BASE = "/var/lib", "/var/cache"


def service_name(name: str) -> str:
    """`edgecnn` for the default service, `edgecnn-NAME` for another on the same device:
    the unit, its user, /var/lib and /var/cache directories and the default root."""
    return "edgecnn" if name in ("", "edgecnn") else f"edgecnn-{name}"


class Layout:
    def __init__(self, root: str, service: str) -> None:
        self.root, self.service = root.rstrip("/") or "/", service
        self.releases = os.path.join(self.root, "releases")
        self.venvs = os.path.join(self.root, "venvs")
        self.current = os.path.join(self.root, "current")
        self.record = os.path.join(self.root, "deploy.json")
        self.pip_cache = os.path.join(self.root, "cache", "pip")
        self.unit_name = service + ".service"
        self.unit_path = os.path.join(UNIT_DIRECTORY, self.unit_name)
        self.state_dir = os.path.join(STATE_BASE, service)
        self.cache_dir = os.path.join(CACHE_BASE, service)

    def release(self, release_id: str) -> str:
        return os.path.join(self.releases, release_id)

    def venv(self, key: str) -> str:
        return os.path.join(self.venvs, key)

    def venv_python(self, key: str) -> str:
        return os.path.join(self.venv(key), "bin", "python")

    def venv_complete(self, key: str) -> bool:
        return os.path.isfile(os.path.join(self.venv(key), COMPLETE))

    def complete_venvs(self) -> List[str]:
        try:
            names = sorted(os.listdir(self.venvs))
        except OSError:
            return []
        return [key for key in names if self.venv_complete(key)]

    # ------------------------------------------------------------------ releases

    def current_release(self) -> Optional[str]:
        try:
            target = os.readlink(self.current)
        except OSError:
            return None
        release_id = os.path.basename(target.rstrip("/"))
        return release_id if os.path.isdir(self.release(release_id)) else None

    def release_ids(self) -> List[str]:
        """Complete releases, oldest first."""
        try:
            names = os.listdir(self.releases)
        except OSError:
            return []
        return sorted(name for name in names if not name.startswith(".")
                      and os.path.isfile(os.path.join(self.releases, name, MANIFEST)))

    def manifest(self, release_id: str) -> Dict:
        with open(os.path.join(self.release(release_id), MANIFEST), encoding="utf-8") as handle:
            return json.load(handle)

    def write_manifest(self, release_id: str, manifest: Dict) -> None:
        write_atomically(os.path.join(self.release(release_id), MANIFEST), json.dumps(manifest, indent=1) + "\n")

    def previous_release(self, before: Optional[str]) -> Optional[str]:
        """The newest release older than `before` that once ran healthy: where a
        rollback goes."""
        for release_id in reversed(self.release_ids()):
            if before is not None and release_id >= before:
                continue
            if self.manifest(release_id).get("healthy_at"):
                return release_id
        return None

    def switch_current(self, release_id: str) -> None:
        """Point `current` at a release: a new link renamed over the old one, so a
        reader (the unit starting at boot) sees the old release or the new, never none."""
        temporary = f"{self.current}.{os.getpid()}.tmp"
        if os.path.lexists(temporary):
            os.unlink(temporary)
        os.symlink(os.path.join("releases", release_id), temporary)
        os.replace(temporary, self.current)

    def remove_release(self, release_id: str) -> None:
        shutil.rmtree(self.release(release_id), ignore_errors=True)

    def prune(self) -> List[str]:
        """Keep the current release and the newest KEEP_RELEASES - 1 healthy ones before
        it; remove the other releases and the venvs no kept release uses but the newest.
        Returns the removed release ids."""
        current = self.current_release()
        kept = [current] if current else []
        for release_id in reversed(self.release_ids()):
            if len(kept) >= KEEP_RELEASES:
                break
            if release_id not in kept and (current is None or release_id < current) \
                    and self.manifest(release_id).get("healthy_at"):
                kept.append(release_id)
        removed = [release_id for release_id in self.release_ids() if release_id not in kept]
        for release_id in removed:
            self.remove_release(release_id)
        used = {self.manifest(release_id).get("venv") for release_id in kept}
        newest = max(self.complete_venvs(), key=lambda key: os.path.getmtime(self.venv(key)), default=None)
        for key in os.listdir(self.venvs) if os.path.isdir(self.venvs) else ():
            if key not in used and key != newest:  # the newest is kept for the next try of a failed release
                shutil.rmtree(self.venv(key), ignore_errors=True)
        return removed


MANIFEST = "release.json"
COMPLETE = ".edgecnn-complete"  # written last into a venv: a venv without it is half made


def release_id(now: Optional[float] = None, digest: str = "") -> str:
    """YYYYmmdd-HHMMSS-<first 8 of the release's digest>: sorts by time, names the content."""
    stamp = time.strftime("%Y%m%d-%H%M%S", time.gmtime(time.time() if now is None else now))
    return f"{stamp}-{digest[:8]}" if digest else stamp


def write_atomically(path: str, text: str, mode: int = 0o644) -> None:
    temporary = f"{path}.{os.getpid()}.tmp"
    with open(temporary, "w", encoding="utf-8") as handle:
        handle.write(text)
        handle.flush()
        os.fsync(handle.fileno())
    os.chmod(temporary, mode)
    os.replace(temporary, path)
