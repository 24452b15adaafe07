"""The emulated venv's `edgecnn` command.

Copied into the venv's bin/ below a shebang naming the venv's python (the wrapper that
runs the arm64 Python under qemu): the console script pip would write names the host's
Python instead.
"""
import sys

from edgecnn.cli import main

if __name__ == "__main__":
    sys.exit(main())
