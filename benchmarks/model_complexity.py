"""Parameters and MACs of every architecture, counted by PyTorch's FLOP counter.

    python benchmarks/model_complexity.py
"""
from edgecnn.models import build_model
from edgecnn.models.complexity import complexity
from edgecnn.models.detector import MobileNetDetector

ROWS = [("mobilenet_v1", 1.0, 224), ("mobilenet_v2", 1.0, 224), ("mobilenet_v3_small", 1.0, 224),
        ("mobilenet_v3_large", 1.0, 224), ("resnet18", 1.0, 224), ("lenet5", 1.0, 32),
        ("mobilenet_v2", 0.5, 80)]


def main() -> None:
    print("| model | width | input | parameters | MACs |\n|---|---|---|---|---|")
    for name, width, size in ROWS:
        channels = 1 if name == "lenet5" or size == 80 else 3
        classes = 10 if channels == 1 else 1000
        counts = complexity(build_model(name, classes, width, channels), (1, channels, size, size))
        print(f"| {name} ({classes} classes) | {width} | {channels}x{size}x{size} | "
              f"{counts['parameters'] / 1e6:.3f}M | {counts['macs'] / 1e6:.1f}M |")
    detector = MobileNetDetector(3, "mobilenet_v2", 0.5).eval()
    counts = complexity(detector, (1, 3, 192, 192))
    print(f"| shapes detector (mobilenet_v2 backbone, 3 classes) | 0.5 | 3x192x192 | "
          f"{counts['parameters'] / 1e6:.3f}M | {counts['macs'] / 1e6:.1f}M |")


if __name__ == "__main__":
    main()
