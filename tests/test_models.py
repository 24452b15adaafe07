import pytest
import torch

from edgecnn.core.errors import UserError
from edgecnn.models import CLASSIFIERS, build_model
from edgecnn.models.complexity import complexity


def test_mobilenet_v2_reference_complexity():
    """MobileNetV2-1.0 at 224: 300.8M MACs and 3.50M parameters (the paper's figures)."""
    counts = complexity(build_model("mobilenet_v2", 1000), (1, 3, 224, 224))
    assert abs(counts["macs"] / 300.8e6 - 1) < 0.01, counts
    assert abs(counts["parameters"] / 3.50e6 - 1) < 0.01, counts


@pytest.mark.parametrize("name,macs,params", [
    ("mobilenet_v1", 569e6, 4.23e6),         # paper: 569M mult-adds, 4.2M parameters
    ("mobilenet_v3_small", 56.5e6, 2.54e6),  # torchvision reference: 0.06 GFLOPs, 2.54M
    ("mobilenet_v3_large", 216.6e6, 5.48e6), # torchvision reference: 0.22 GFLOPs, 5.48M
    ("mobilenet_v3_large_minimal", 209e6, 3.9e6),  # TF model garden's minimalistic: 209M MACs, 3.9M
    ("resnet18", 1.814e9, 11.69e6),          # torchvision reference: 1.81 GFLOPs, 11.69M
])
def test_reference_complexities(name, macs, params):
    counts = complexity(build_model(name, 1000), (1, 3, 224, 224))
    assert abs(counts["macs"] / macs - 1) < 0.01, counts
    assert abs(counts["parameters"] / params - 1) < 0.01, counts


@pytest.mark.parametrize("name", sorted(CLASSIFIERS))
@pytest.mark.parametrize("size", [32, 45, 96])
def test_every_model_takes_any_input_size(name, size):
    model = build_model(name, num_classes=7, width=0.5, in_channels=1).eval()
    with torch.no_grad():
        out = model(torch.randn(2, 1, size, size))
    assert out.shape == (2, 7)
    assert torch.isfinite(out).all()


def test_minimalistic_mobilenet_v3_has_no_hard_swish_or_squeeze_excitation():
    """The int8-friendly variant: ReLU and 3x3 depthwise kernels only (the model garden's
    small minimalistic has 2.0M parameters)."""
    model = build_model("mobilenet_v3_small_minimal", 1000)
    kinds = {type(m).__name__ for m in model.modules()}
    assert "Hardswish" not in kinds and "SqueezeExcitation" not in kinds and "ReLU" in kinds
    kernels = {m.kernel_size for m in model.modules() if isinstance(m, torch.nn.Conv2d) and m.groups > 1}
    assert kernels == {(3, 3)}
    assert abs(complexity(model, (1, 3, 224, 224))["parameters"] / 2.0e6 - 1) < 0.03


def test_width_multiplier_scales_the_model():
    small = complexity(build_model("mobilenet_v2", 10, width=0.5), (1, 3, 64, 64))
    large = complexity(build_model("mobilenet_v2", 10, width=1.0), (1, 3, 64, 64))
    assert small["parameters"] < large["parameters"] / 2
    assert small["macs"] < large["macs"] / 2


def test_bad_names_and_widths_are_user_errors():
    with pytest.raises(UserError, match="unknown model"):
        build_model("mobilenet_v9", 10)
    for width in (0, -1.0):
        with pytest.raises(UserError, match="width"):
            build_model("mobilenet_v2", 10, width=width)
