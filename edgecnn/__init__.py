"""edgecnn: train, prune, quantize, convert and run MobileNet-style CNNs on edge devices.

Importing the package is cheap and imports no torch; training-side modules import it
when used.
"""
__version__ = "0.1.0"


def load(path=None, **options):
    """Open a converted model for inference: `edgecnn.load("model.tflite")`, or
    `edgecnn.load()` for the bundled shapes detector. Returns an
    edgecnn.runtime.model.Model (`.predict(image)`, `.stream(source)`); options:
    backend, threads, card (CardOptions), conf_threshold, iou_threshold.

    Imported on first use so that `import edgecnn` stays cheap.
    """
    from edgecnn.runtime.model import load as load_model

    return load_model(path, **options)
