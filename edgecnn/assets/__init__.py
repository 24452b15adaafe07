"""Models bundled with the package, produced by scripts/make_bundled_model.sh."""
from pathlib import Path

ASSETS = Path(__file__).parent
DIGITS_CLASSIFIER = ASSETS / "digits_mobilenet_v2.pt"


def default_model() -> Path:
    """The embedded default model."""
    return DIGITS_CLASSIFIER
