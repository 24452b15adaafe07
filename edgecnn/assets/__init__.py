"""Models bundled with the package, each produced and measured by
`python benchmarks/assets/train_models.py PRESET --bundle`."""
from pathlib import Path

ASSETS = Path(__file__).parent
DIGITS_CLASSIFIER = ASSETS / "digits_mobilenet_v2.pt"
SHAPES_DETECTOR = ASSETS / "shapes_detector.pt"
# The same detector converted for the device runtime (which imports no torch), fp32 and
# full int8 (within the accuracy budget, its card says by how much): made by
# `python benchmarks/assets/runtime_bundle.py`. `edgecnn run` with no model picks the
# faster of the two on the device (edgecnn/runtime/bundled.py). RUNTIME_DEFAULT names the
# int8 file: it passes its gate and is the faster where int8 dot products are native.
RUNTIME_FP32 = ASSETS / "shapes_detector.tflite"
RUNTIME_INT8 = ASSETS / "shapes_detector-int8.tflite"
RUNTIME_VARIANTS = (RUNTIME_INT8, RUNTIME_FP32)
RUNTIME_DEFAULT = RUNTIME_INT8


def default_model() -> Path:
    """The embedded default model: the shapes detector."""
    return SHAPES_DETECTOR
