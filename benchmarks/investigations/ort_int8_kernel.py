"""Top-1 agreement with PyTorch of the converter tests' int8 ONNX files (the CNN families
of tests/test_convert.py, trained briefly on digits, converted by `edgecnn convert`),
run by onnxruntime with its default int8 kernels and with its exact x64 int8 kernel
(`session.x64quantprecision`), on 50 held-out digits. On x86-64 CPUs without VNNI the
default u8s8 kernel saturates its 16-bit pair sums; edgecnn's runtime selects the
exact kernel.

    python benchmarks/investigations/ort_int8_kernel.py [FAMILY ...]
"""
from __future__ import annotations

import sys
import tempfile
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[2]
sys.path[:0] = [str(ROOT), str(ROOT / "tests")]

FAILING_BEFORE = ["vgg", "googlenet", "mobilenet_v1", "mobilenet_v2", "mobilenet_v3", "efficientnet"]


def cpu_flags() -> str:
    flags = next((line for line in open("/proc/cpuinfo") if line.startswith("flags")), "").split()
    return ", ".join(f for f in ("avx2", "avx512f", "avx512_vnni", "avx_vnni") if f in flags) or "none listed"


def agreement_and_latency(path: str, images: np.ndarray, reference: np.ndarray, exact: bool):
    """(top-1 agreement, median ms of 300 single-image runs at 1 thread)."""
    import time

    import onnxruntime

    options = onnxruntime.SessionOptions()
    options.intra_op_num_threads = 1
    if exact:
        options.add_session_config_entry("session.x64quantprecision", "1")
    session = onnxruntime.InferenceSession(path, options, providers=["CPUExecutionProvider"])
    name = session.get_inputs()[0].name
    found = np.array([session.run(None, {name: images[i:i + 1]})[0].argmax() for i in range(len(images))])
    times = []
    for i in range(300):
        start = time.perf_counter()
        session.run(None, {name: images[i % len(images)][None]})
        times.append((time.perf_counter() - start) * 1000)
    return float((found == reference).mean()), float(np.median(times))


def main() -> None:
    import cv2
    import torch

    import test_convert
    from converters.sources import CardFlags
    from converters.convert import ConvertOptions, convert
    from edgecnn.core.card import ModelCard
    from edgecnn.core.preprocess import preprocess_batch
    from edgecnn.data import load_classification

    families = sys.argv[1:] or FAILING_BEFORE
    print(f"CPU flags: {cpu_flags()}")
    print("| family | agreement, default kernels | agreement, exact x64 kernel | ms default | ms exact |\n"
          "|---|---|---|---|---|")
    with tempfile.TemporaryDirectory() as scratch:
        scratch = Path(scratch)
        held_out = scratch / "digits"
        held_out.mkdir()
        data = load_classification("digits", "val")
        for i in range(100):
            cv2.imwrite(str(held_out / f"{i:03d}.png"), data.images[i * 10])
        sys.path.insert(0, str(scratch))
        for family in families:
            torch.manual_seed(0)
            model = test_convert.teach(test_convert.FAMILIES[family]())
            torch.save(model.state_dict(), scratch / "weights.pt")
            spec = test_convert._factory_spec(scratch, family)
            options = ConvertOptions(to="onnx", precision="int8", out=str(scratch / family), data=str(held_out),
                                     calib_images=50, parity_images=50, max_drop=100.0, force=True,
                                     weights=str(scratch / "weights.pt"), flags=CardFlags(input_size="32"))
            report = convert(spec, options, lambda message: None)[0]
            card = ModelCard(task="classify", labels=[str(i) for i in range(10)], input_size=(32, 32))
            images = preprocess_batch([data.images[i * 10] for i in range(50)], card)
            with torch.no_grad():
                reference = model.eval()(torch.from_numpy(images)).argmax(1).numpy()
            (default, fast), (exact, slow) = (agreement_and_latency(report["file"], images, reference, flag)
                                              for flag in (False, True))
            print(f"| {family} | {100 * default:.0f}% | {100 * exact:.0f}% | {fast:.3f} | {slow:.3f} |", flush=True)


if __name__ == "__main__":
    main()
