"""edgecnn: train, prune, quantize, convert and run MobileNet-style CNNs on edge devices.

Importing the package is cheap and imports no torch; training-side modules import it
when used.
"""
__version__ = "0.1.0"


def load(path=None, **options):
    """Open a converted model for inference: `edgecnn.load("model.tflite")`, or
    `edgecnn.load()` for the bundled shapes detector. Returns an
    edgecnn.runtime.model.Model (`.predict(image)`, `.stream(source)`); options:
    backend, threads, card (CardOptions), conf_threshold, iou_threshold, verify (True:
    a file whose weights do not match its card's digest is refused).

    Imported on first use so that `import edgecnn` stays cheap.
    """
    from edgecnn.runtime.model import load as load_model

    return load_model(path, **options)


def annotate(frame, result, status=None):
    """A copy of `frame` (an OpenCV BGR or grey image) with `result` drawn on it: boxes
    and labels for detections, the top class for a classifier; `status` is an optional
    line at the bottom. For a robot program's own window, file or stream."""
    from edgecnn.runtime.annotate import annotate as draw

    return draw(frame, result, status)


def publish(uri, qos=0, retry=False, queue_size=64):
    """Result records to mqtt://[USER:PASS@]HOST[:PORT]/PREFIX, zmq+tcp://HOST:PORT or
    udp://HOST:PORT, the same records and transports as `edgecnn run --publish`, for a
    robot program's own loop: `out = edgecnn.publish(uri)`, then `out.publish(result)`
    per frame (never waits for the network: a bounded queue drops the oldest and counts
    them in `out.dropped`), `out.close()` at the end (or use it in a with-block)."""
    from edgecnn.runtime.publishers import Publishing

    return Publishing(uri, qos=qos, retry=retry, queue_size=queue_size)
