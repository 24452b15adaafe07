"""Print the host's versions of the named packages as JSON (python host_versions.py NAME...).

Run by the host Python before anything is built: the emulated venv gets aarch64 wheels
of these same versions, so both sides run the same library releases. It also imports
the runtime, so that a host Python that cannot compute the x86 reference fails here,
with its import error as the last line on stderr.
"""
import json
import sys
from importlib.metadata import PackageNotFoundError, version


def main(names):
    found = {}
    for name in names:
        try:
            found[name] = version(name)
        except PackageNotFoundError:
            pass
    import edgecnn  # noqa: F401
    import numpy  # noqa: F401
    import cv2  # noqa: F401
    import onnxruntime  # noqa: F401
    from ai_edge_litert.interpreter import Interpreter  # noqa: F401
    print(json.dumps(found))


if __name__ == "__main__":
    main(sys.argv[1:])
