"""What a device offers, asked before anything is written to it: its Python, machine,
free disk, cameras, systemd, user, and what an earlier deploy left (venvs, current
release). Sent as `python -c` with the deploy root and service as arguments; prints one
JSON object.

Written so that any Python answers, 2.7 included, so that an old one is reported by
its version instead of failing on syntax it cannot read.
"""
import glob
import json
import os
import platform
import sys


def reachable_by_others(path):
    """Whether a user other than its owner can run `path`: every directory above it
    searchable by others (a Python under /root, mode 700, is not)."""
    import stat
    directory = os.path.dirname(path)
    while True:
        try:
            if not os.stat(directory).st_mode & stat.S_IXOTH:
                return False
        except OSError:
            return False
        if directory in ("/", ""):
            return True
        directory = os.path.dirname(directory)


def probe(root, service):
    existing = root
    while existing and not os.path.isdir(existing):
        existing = os.path.dirname(existing.rstrip("/")) or "/"
    try:
        stat = os.statvfs(existing)
        free = stat.f_bavail * stat.f_frsize
    except OSError:
        free = None
    venvs = []
    try:
        for key in sorted(os.listdir(os.path.join(root, "venvs"))):
            if os.path.isfile(os.path.join(root, "venvs", key, ".edgecnn-complete")):
                venvs.append(key)
    except OSError:
        pass
    current = None
    try:
        current = os.path.basename(os.readlink(os.path.join(root, "current")).rstrip("/"))
    except OSError:
        pass
    try:
        import grp
        groups = sorted(group.gr_name for group in grp.getgrall())
    except ImportError:
        groups = []
    try:
        import ensurepip  # noqa: F401  (python3 -m venv needs it: Debian's python3-venv)
        venv_module = True
    except ImportError:
        venv_module = False
    executable = os.path.realpath(sys.executable)
    return {"python": list(sys.version_info[:3]), "executable": executable,
            "executable_shared": reachable_by_others(executable),
            "prefix": getattr(sys, "base_prefix", sys.prefix), "machine": platform.machine(),
            "system": platform.system(), "uid": os.getuid(), "free_bytes": free, "free_path": existing,
            "cameras": sorted(glob.glob("/dev/video*")), "systemd": os.path.isdir("/run/systemd/system"),
            "groups": groups, "venv_module": venv_module, "venvs": venvs, "current": current,
            "service": service}


if __name__ == "__main__":
    sys.stdout.write(json.dumps(probe(sys.argv[1], sys.argv[2])) + "\n")
