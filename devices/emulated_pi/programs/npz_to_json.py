"""Print an .npz dump's arrays as JSON lists (python npz_to_json.py FILE.npz).

Run by the host Python (which has numpy), so that the harness, which compares raw
outputs, needs only the standard library.
"""
import json
import sys

import numpy as np


def main(path):
    with np.load(path) as data:
        json.dump({k: data[k].ravel().astype(float).tolist() for k in data.files}, sys.stdout)


if __name__ == "__main__":
    main(sys.argv[1])
