"""Write demo scenes as PNG files, one folder per camera: frames that both sides read
as files, every one in order, so that a run of several cameras sees the same frames
emulated and on x86 (a live demo source drops frames under emulation).

Run by the host Python with one JSON argument:
{"demo": [size, fps], "frames": N, "cameras": {"NAME": {"seed": S, "dir": PATH}, ...}}.
Frame t of a camera is DemoCapture(size, seed, fps).scene(t), saved as PATH/NNNN.png.
"""
import json
import os
import sys

import cv2

from edgecnn.runtime.demo import DemoCapture


def main(argument: str) -> None:
    spec = json.loads(argument)
    size, fps = int(spec["demo"][0]), float(spec["demo"][1])
    for name, camera in spec["cameras"].items():
        os.makedirs(camera["dir"], exist_ok=True)
        scenes = DemoCapture(size, int(camera["seed"]), fps)
        for t in range(int(spec["frames"])):
            if not cv2.imwrite(os.path.join(camera["dir"], f"{t:04d}.png"), scenes.scene(t)):
                raise SystemExit(f"{camera['dir']}: cannot write frame {t}")
    print(json.dumps({name: sorted(os.listdir(camera["dir"])) for name, camera in spec["cameras"].items()}))


if __name__ == "__main__":
    main(sys.argv[1])
