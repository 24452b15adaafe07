"""The fp32 models of the RESULTS "Bench" table, as .onnx and .tflite files with cards.

- MobileNetV2-1.0 and MobileNetV3-Small at 224x224, 1000 classes: the standard
  edge-latency yardsticks. Weights are random (seeded): latency does not depend on
  the weight values and no ImageNet weights are available offline, so their cards
  carry no accuracy.
- the bundled digits classifier and shapes detector, with the accuracy measured
  for them (from their checkpoints' cards).

ONNX: torch.onnx.export (opset 17, NCHW). TFLite: litert_torch.convert after
`to_channel_last_io`, so the file takes NHWC and carries no TRANSPOSE in front of
each conv (the count is printed as a check).

int8 (`--int8`): `edgecnn convert SRC --to all --precision int8`, the converter users
run. The bundled models calibrate on and are gated by their own datasets. The
random-weight MobileNets are saved as checkpoints and calibrated on real video
frames (tests/data/tree.avi); with random weights their parity check says nothing
about accuracy, so they are written with --force.

    python benchmarks/bench_models.py [--out runs/bench-models] [--only NAME ...] [--int8]
"""
from __future__ import annotations

import argparse
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def imagenet_model(name: str):
    import torch

    from edgecnn.core.card import ModelCard
    from edgecnn.models import build_model

    torch.manual_seed(0)
    model = build_model(name, num_classes=1000, width=1.0).eval()
    card = ModelCard(task="classify", labels=[f"class{i}" for i in range(1000)], input_size=(224, 224),
                     architecture={"name": name, "width": 1.0})
    return model, card


def bundled_model(path):
    from edgecnn.core.files import file_hash
    from edgecnn.training.checkpoint import load_model

    model, card, _ = load_model(path)
    return model, card.replace(source_hash=card.source_hash or file_hash(path))


def sources():
    from edgecnn.assets import DIGITS_CLASSIFIER, SHAPES_DETECTOR

    return {
        "mobilenet_v2-1.0-224": lambda: imagenet_model("mobilenet_v2"),
        "mobilenet_v3_small-224": lambda: imagenet_model("mobilenet_v3_small"),
        "digits-mobilenet_v2-0.5-80": lambda: bundled_model(DIGITS_CLASSIFIER),
        "shapes-detector-192": lambda: bundled_model(SHAPES_DETECTOR),
    }


def write_onnx(model, card, path: Path) -> None:
    import onnx
    import torch

    from converters.card_embed import embed_onnx

    height, width = card.input_size
    torch.onnx.export(model, (torch.zeros(1, card.channels, height, width),), str(path), dynamo=False,
                      opset_version=17)
    proto = onnx.load(str(path))
    embed_onnx(proto, card.replace(layout="nchw", precision="fp32"))
    onnx.save(proto, str(path))


def write_tflite(model, card, path: Path) -> int:
    """Returns the number of TRANSPOSE ops in the converted file (0 expected)."""
    import litert_torch
    import torch
    from ai_edge_litert.interpreter import Interpreter

    from converters.card_embed import embed_tflite

    height, width = card.input_size
    nhwc = litert_torch.to_channel_last_io(model, args=[0])
    raw = path.with_suffix(".raw.tflite")
    with torch.no_grad():
        litert_torch.convert(nhwc.eval(), (torch.zeros(1, height, width, card.channels),)).export(str(raw))
    path.write_bytes(embed_tflite(raw.read_bytes(), card.replace(layout="nhwc", precision="fp32")))
    raw.unlink()
    interpreter = Interpreter(model_path=str(path))
    ops = interpreter._get_ops_details()  # pylint: disable=protected-access
    return sum(op["op_name"] == "TRANSPOSE" for op in ops)


def video_frames(directory: Path, every: int = 4) -> Path:
    """Real images for calibration: every 4th frame of the test video, as PNG files."""
    import cv2

    directory.mkdir(parents=True, exist_ok=True)
    capture = cv2.VideoCapture(str(ROOT / "tests" / "data" / "tree.avi"))
    index = 0
    while True:
        ok, frame = capture.read()
        if not ok:
            break
        if index % every == 0:
            cv2.imwrite(str(directory / f"frame{index:04d}.png"), frame)
        index += 1
    capture.release()
    return directory


def convert_int8(name: str, out: Path) -> None:
    """`edgecnn convert ... --precision int8` into OUT/int8."""
    from edgecnn.assets import DIGITS_CLASSIFIER, SHAPES_DETECTOR
    from edgecnn.training.checkpoint import save_checkpoint

    bundled = {"digits-mobilenet_v2-0.5-80": DIGITS_CLASSIFIER, "shapes-detector-192": SHAPES_DETECTOR}
    extra = []
    if name in bundled:
        source = Path(bundled[name])
    else:
        model, card = sources()[name]()
        source = out / f"{name}.pt"
        save_checkpoint(source, card, model)
        frames = str(video_frames(out / "frames"))
        extra = ["--data", frames, "--calib", frames, "--force"]
    command = [sys.executable, "-m", "edgecnn", "convert", str(source), "--to", "all", "--precision", "int8",
               "--out", str(out / "int8"), *extra]
    print("$ " + " ".join(command[1:]), flush=True)
    start = time.perf_counter()
    subprocess.run(command, check=True)
    print(f"{name}: int8 in {time.perf_counter() - start:.0f} s", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", default="runs/bench-models")
    parser.add_argument("--only", nargs="*", default=None, help="model names (default: all)")
    parser.add_argument("--int8", action="store_true", help="make the int8 files with `edgecnn convert` instead")
    args = parser.parse_args()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    for name, make in sources().items():
        if args.only and name not in args.only:
            continue
        if args.int8:
            convert_int8(name, out)
            continue
        model, card = make()
        start = time.perf_counter()
        write_onnx(model, card, out / f"{name}-fp32.onnx")
        onnx_s = time.perf_counter() - start
        start = time.perf_counter()
        transposes = write_tflite(model, card, out / f"{name}-fp32.tflite")
        print(f"{name}: onnx {onnx_s:.1f} s, tflite {time.perf_counter() - start:.1f} s, "
              f"{transposes} TRANSPOSE ops in the .tflite", flush=True)


if __name__ == "__main__":
    main()
