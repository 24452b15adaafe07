"""Models bundled with the package, each produced and measured by
`python benchmarks/assets/train_models.py PRESET --bundle`."""
from pathlib import Path

ASSETS = Path(__file__).parent
DIGITS_CLASSIFIER = ASSETS / "digits_mobilenet_v2.pt"
SHAPES_DETECTOR = ASSETS / "shapes_detector.pt"
# The same detector converted for the device runtime (which imports no torch):
# made by `python benchmarks/assets/runtime_bundle.py`.
RUNTIME_DEFAULT = ASSETS / "shapes_detector.tflite"


def default_model() -> Path:
    """The embedded default model: the shapes detector."""
    return SHAPES_DETECTOR
