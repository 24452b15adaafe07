"""edgecnn convert: ten CNN families to ONNX and TFLite, fp32 and int8, each with a
passing parity report; plus the failure modes (bad sources, unexpressible ops,
refusals, atomic output)."""
import json
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch
from torch import nn
from torch.nn import functional as F

from conftest import ROOT, assert_one_line_error, run_cli, run_cli_batch
from edgecnn.models import build_model


def conv_bn(cin, cout, k=3, s=1, groups=1, act=nn.ReLU):
    return nn.Sequential(nn.Conv2d(cin, cout, k, s, k // 2, groups=groups, bias=False), nn.BatchNorm2d(cout), act())


def head(channels, classes=10):
    return nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(channels, classes))


class AlexNetStyle(nn.Module):
    """Large-kernel strided convs, max pooling, a two-layer classifier with dropout."""

    def __init__(self):
        super().__init__()
        self.features = nn.Sequential(nn.Conv2d(3, 16, 5, 2, 2), nn.ReLU(), nn.MaxPool2d(2),
                                      nn.Conv2d(16, 32, 3, 1, 1), nn.ReLU(), nn.Conv2d(32, 32, 3, 1, 1), nn.ReLU(),
                                      nn.MaxPool2d(2))
        self.classifier = nn.Sequential(nn.Flatten(), nn.Dropout(0.5), nn.Linear(32 * 4 * 4, 64), nn.ReLU(),
                                        nn.Linear(64, 10))

    def forward(self, x):
        return self.classifier(self.features(x))


class VGGStyle(nn.Module):
    """Stacks of 3x3 conv + BN + ReLU between max pools."""

    def __init__(self):
        super().__init__()
        self.features = nn.Sequential(conv_bn(3, 16), conv_bn(16, 16), nn.MaxPool2d(2), conv_bn(16, 32),
                                      conv_bn(32, 32), nn.MaxPool2d(2), conv_bn(32, 64))
        self.head = head(64)

    def forward(self, x):
        return self.head(self.features(x))


class Inception(nn.Module):
    def __init__(self, cin):
        super().__init__()
        self.b1 = conv_bn(cin, 8, 1)
        self.b2 = nn.Sequential(conv_bn(cin, 8, 1), conv_bn(8, 12, 3))
        self.b3 = nn.Sequential(conv_bn(cin, 4, 1), conv_bn(4, 8, 5))
        self.b4 = nn.Sequential(nn.MaxPool2d(3, 1, 1), conv_bn(cin, 4, 1))

    def forward(self, x):
        return torch.cat([self.b1(x), self.b2(x), self.b3(x), self.b4(x)], 1)


class GoogLeNetStyle(nn.Module):
    """Inception blocks: parallel 1x1 / 3x3 / 5x5 / pool branches concatenated."""

    def __init__(self):
        super().__init__()
        self.stem = nn.Sequential(conv_bn(3, 16, 3, 2), nn.MaxPool2d(2))
        self.blocks = nn.Sequential(Inception(16), Inception(32))
        self.head = head(32)

    def forward(self, x):
        return self.head(self.blocks(self.stem(x)))


class DenseLayer(nn.Module):
    def __init__(self, cin, growth=8):
        super().__init__()
        self.body = conv_bn(cin, growth)

    def forward(self, x):
        return torch.cat([x, self.body(x)], 1)


class DenseNetStyle(nn.Module):
    """Dense blocks (every layer sees all earlier feature maps, concatenated) and a
    transition. Conv-BN-ReLU layers: the pre-activation order of the original (a BN on
    the concatenated features) is refused by the TFLite int8 converter ("same scale
    constraint" on the concatenation)."""

    def __init__(self):
        super().__init__()
        self.stem = conv_bn(3, 16, 3, 2)
        self.block1 = nn.Sequential(DenseLayer(16), DenseLayer(24), DenseLayer(32))
        self.transition = nn.Sequential(conv_bn(40, 24, 1), nn.AvgPool2d(2))
        self.block2 = nn.Sequential(DenseLayer(24), DenseLayer(32))
        self.head = head(40)

    def forward(self, x):
        return self.head(self.block2(self.transition(self.block1(self.stem(x)))))


class MBConv(nn.Module):
    """EfficientNet's block: expand, depthwise, squeeze-excitation (SiLU, sigmoid gate), project, skip."""

    def __init__(self, cin, cout, stride, expand=4):
        super().__init__()
        mid = cin * expand
        self.expand = conv_bn(cin, mid, 1, act=nn.SiLU)
        self.depthwise = conv_bn(mid, mid, 3, stride, groups=mid, act=nn.SiLU)
        self.se_reduce, self.se_expand = nn.Conv2d(mid, max(4, cin // 4), 1), nn.Conv2d(max(4, cin // 4), mid, 1)
        self.project = conv_bn(mid, cout, 1, act=nn.Identity)
        self.skip = stride == 1 and cin == cout

    def forward(self, x):
        y = self.depthwise(self.expand(x))
        gate = torch.sigmoid(self.se_expand(F.silu(self.se_reduce(F.adaptive_avg_pool2d(y, 1)))))
        y = self.project(y * gate)
        return x + y if self.skip else y


class EfficientNetStyle(nn.Module):
    def __init__(self):
        super().__init__()
        self.stem = conv_bn(3, 16, 3, 2, act=nn.SiLU)
        self.blocks = nn.Sequential(MBConv(16, 16, 1), MBConv(16, 24, 2), MBConv(24, 24, 1))
        self.head = nn.Sequential(conv_bn(24, 64, 1, act=nn.SiLU), head(64))

    def forward(self, x):
        return self.head(self.blocks(self.stem(x)))


class Stack(nn.Module):
    """stem -> blocks -> global-pool classifier: short versions of the library's families
    (the full-depth ones are converted by benchmarks/convert_reference.py)."""

    def __init__(self, stem, blocks, channels):
        super().__init__()
        self.stem, self.blocks, self.head = stem, nn.Sequential(*blocks), head(channels)

    def forward(self, x):
        return self.head(self.blocks(self.stem(x)))


def resnet_style():
    from edgecnn.models.resnet import BasicBlock

    return Stack(conv_bn(3, 16, 3, 2), [BasicBlock(16, 16, 1), BasicBlock(16, 32, 2)], 32)


def mobilenet_v1_style():
    from edgecnn.models.mobilenet_v1 import DepthwiseSeparable

    return Stack(conv_bn(3, 16, 3, 2), [DepthwiseSeparable(16, 32, 1), DepthwiseSeparable(32, 64, 2),
                                        DepthwiseSeparable(64, 64, 1)], 64)


def mobilenet_v2_style():
    from edgecnn.models.mobilenet_v2 import InvertedResidual

    return Stack(conv_bn(3, 16, 3, 2), [InvertedResidual(16, 16, 1, 4), InvertedResidual(16, 24, 2, 4),
                                        InvertedResidual(24, 24, 1, 4)], 24)


def mobilenet_v3_style():
    from edgecnn.models.mobilenet_v3 import SMALL, MobileNetV3

    return MobileNetV3(SMALL[:5], 256, num_classes=10, width=0.5)


FLATTENS_SPATIAL_MAP = {"lenet5", "alexnet"}
FAMILIES = {
    "lenet5": lambda: build_model("lenet5", num_classes=10, in_channels=3),
    "alexnet": AlexNetStyle,
    "vgg": VGGStyle,
    "resnet": resnet_style,
    "googlenet": GoogLeNetStyle,
    "densenet": DenseNetStyle,
    "mobilenet_v1": mobilenet_v1_style,
    "mobilenet_v2": mobilenet_v2_style,
    "mobilenet_v3": mobilenet_v3_style,
    "efficientnet": EfficientNetStyle,
}


def teach(model: nn.Module, steps: int = 90) -> nn.Module:
    """A few seconds of training on real digit tiles, so that int8 agreement is measured
    on a model with real decision margins rather than random weights."""
    from edgecnn.data import load_classification
    from edgecnn.core.preprocess import preprocess_batch
    from edgecnn.core.card import ModelCard

    data = load_classification("digits", "train").take(range(0, 4000, 8))
    card = ModelCard(task="classify", labels=[str(i) for i in range(10)], input_size=(32, 32))
    x = torch.from_numpy(preprocess_batch(data.images, card))
    y = torch.as_tensor(data.targets)
    optimizer = torch.optim.AdamW(model.parameters(), lr=3e-3)
    model.train()
    generator = torch.Generator().manual_seed(0)
    for _ in range(steps):
        batch = torch.randint(0, len(x), (32,), generator=generator)
        loss = F.cross_entropy(model(x[batch]), y[batch])
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    return model.eval()


@pytest.fixture(scope="module")
def digit_images(tmp_path_factory):
    """100 real digit tiles as PNG files: unlabelled calibration and parity images."""
    from edgecnn.data import load_classification

    root = tmp_path_factory.mktemp("digit_pngs")
    data = load_classification("digits", "val")
    for i in range(100):
        cv2.imwrite(str(root / f"{i:03d}.png"), data.images[i * 10])
    return root


# TFLite fp32 is lowered from the same exported graph as TFLite int8 (less the quantizer),
# and takes a third of a family's time: three families stand for it, all ten go to int8.
TFLITE_FP32_FAMILIES = {"lenet5", "resnet", "mobilenet_v3"}


@pytest.mark.slow  # in CI; `pytest -m 'not slow'` is the inner loop
@pytest.mark.parametrize("family", list(FAMILIES))
def test_family_converts_to_onnx_and_tflite_fp32_and_int8(family, tmp_path, digit_images):
    """The route a user's own model takes (file.py:factory + --weights, real images without
    labels). These briefly trained models have small decision margins, so their int8
    budget is loose (top-1 agreement with PyTorch >= 85%): the accuracy gate proper is
    shown on the trained digits and shapes models (test_quantize, benchmarks)."""
    from edgecnn.runtime.card_options import CardOptions
    from converters.convert import ConvertOptions, convert
    from edgecnn.runtime.integrity import check_weights
    from edgecnn.runtime.model_file import read_card

    torch.manual_seed(0)
    model = teach(FAMILIES[family]())
    torch.save(model.state_dict(), tmp_path / "weights.pt")
    expected = {("onnx", "fp32"), ("tflite", "fp32"), ("onnx", "int8"), ("tflite", "int8")}
    routes = [("all", "both")] if family in TFLITE_FP32_FAMILIES else [("all", "int8"), ("onnx", "fp32")]
    if family not in TFLITE_FP32_FAMILIES:
        expected.discard(("tflite", "fp32"))
    reports = {}
    for to, precision in routes:
        options = ConvertOptions(to=to, precision=precision, out=str(tmp_path / "out"), data=str(digit_images),
                                 calib_images=50, parity_images=50, max_drop=15.0,
                                 weights=str(tmp_path / "weights.pt"), flags=CardOptions(input_size="32"))
        reports.update({(r["format"], r["precision"]): r for r in convert(_factory_spec(tmp_path, family), options,
                                                                          lambda message: None)})
    assert set(reports) == expected
    for (fmt, precision), report in reports.items():
        assert report["passed"] and report["written"], report
        assert report["images"] == 50
        if precision == "fp32":
            assert report["relative_error"] <= 1e-4 and report["agreement"] == 1.0
        else:
            assert report["gate"]["passed"] and report["gate"]["metric"] == "top-1 agreement", report
            if fmt == "tflite":
                # a Flatten of a spatial map into a Linear needs NCHW order: one TRANSPOSE, by design
                assert report["transposes"] == (1 if family in FLATTENS_SPATIAL_MAP else 0), report
            # EfficientNet's SiLU (x * sigmoid(x)) is left float by litert-torch's quantizer: reported, not hidden
            assert (report["float_tensors"] > 0) == (fmt == "tflite" and family == "efficientnet"), report
        assert report["file"].endswith(f"-{precision}.{fmt}")
        card = read_card(report["file"])  # the card written after measuring records the digest of these weights
        assert card.weights_digest and check_weights(report["file"], card).status == "match"
        parity = json.loads(open(report["file"] + ".parity.json").read())
        assert parity["ops"] and parity["passed"]


def _factory_spec(tmp_path, family):
    """A user model file exposing the family as `make()`: the file.py:factory route."""
    module = tmp_path / f"{family}_net.py"
    module.write_text(f"import test_convert\n\ndef make():\n    return test_convert.FAMILIES[{family!r}]()\n")
    return f"{module}:make"


SPECTRAL_NET = """
import torch
from torch import nn


class Spectral(nn.Module):
    def forward(self, x):
        return torch.fft.rfft2(x).abs()


class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(3, 8, 3, padding=1)
        self.spectrum = Spectral()
        self.fc = nn.Linear(8, 10)

    def forward(self, x):
        return self.fc(torch.nn.functional.adaptive_avg_pool2d(self.spectrum(self.conv(x)), 1).flatten(1))


def make():
    return Net()


def not_a_model():
    return 42
"""


@pytest.fixture
def spectral(tmp_path):
    path = tmp_path / "spectral.py"
    path.write_text(SPECTRAL_NET)
    return path


@pytest.mark.slow  # in CI; `pytest -m 'not slow'` is the inner loop
@pytest.mark.parametrize("target,op", [("onnx", "fft_rfft2"), ("tflite", "_fft_r2c")])
def test_op_a_target_cannot_express_names_op_and_layer(spectral, digit_images, tmp_path, target, op):
    result = run_cli("convert", f"{spectral}:make", "--input-size", "32", "--data", digit_images, "--to", target,
                     "--out", tmp_path / "out")
    assert_one_line_error(result, 2, f"op aten.{op} in layer spectrum (Spectral)")
    assert not list((tmp_path / "out").glob("*.onnx")) + list((tmp_path / "out").glob("*.tflite"))


@pytest.mark.slow  # in CI; `pytest -m 'not slow'` is the inner loop
def test_bad_sources_and_outputs_are_one_line_errors(spectral, digit_images, tmp_path):
    out = ["--data", digit_images, "--out", tmp_path / "out"]
    corrupt = tmp_path / "corrupt.pt"
    corrupt.write_bytes(b"\x80\x02 definitely not a model")
    corrupt_program = tmp_path / "corrupt.pt2"
    corrupt_program.write_bytes(b"not a zip archive")
    lenet = tmp_path / "lenet.py"
    lenet.write_text("from edgecnn.models import build_model\n\ndef make():\n"
                     "    return build_model('lenet5', num_classes=10, in_channels=3)\n")
    blocker = tmp_path / "file"
    blocker.write_text("")
    cases = [((tmp_path / "missing.pt", *out), "no such model file"),
             ((corrupt, *out), "not an edgecnn checkpoint, TorchScript"),
             ((corrupt_program, *out), "not a torch.export program"),
             ((f"{spectral}:not_a_model", "--input-size", "32", *out), "returned int, not a torch.nn.Module"),
             ((f"{spectral}:make", *out), "pass --input-size"),
             ((f"{lenet}:make", "--input-size", "7x5", *out), "rejects a 3x7x5 input"),
             ((f"{lenet}:make", "--input-size", "32", "--data", digit_images, "--out", blocker / "sub"),
              "cannot write to"),
             (("edgecnn/assets/digits_mobilenet_v2.pt", "--precision", "int8", "--calib-images", "0", *out),
              "--calib-images must be >= 1")]
    for result, (_, message) in zip(run_cli_batch(*(["convert", *args] for args, _ in cases)), cases):
        assert_one_line_error(result, 2, message)


@pytest.mark.slow  # in CI; `pytest -m 'not slow'` is the inner loop
def test_int8_beyond_the_budget_is_refused_and_nothing_written(tmp_path):
    """Calibrating on blank frames (a camera with its lens cap on) gives int8 ranges that
    do not fit real digits: the gate measures the loss and refuses the file."""
    blank = tmp_path / "blank"
    blank.mkdir()
    for i in range(8):
        cv2.imwrite(str(blank / f"{i}.png"), np.zeros((20, 20), np.uint8))
    args = ["convert", "edgecnn/assets/digits_mobilenet_v2.pt", "--to", "onnx", "--precision", "int8",
            "--calib", blank]
    result, kept = run_cli_batch([*args, "--out", tmp_path / "out"], [*args, "--out", tmp_path / "kept", "--keep-work"])
    assert result.returncode == 3, result.stderr
    assert "refused" in result.stderr and "beyond the budget" in result.stderr
    assert not (tmp_path / "out").exists()  # the output directory it made is removed with its staging
    # --keep-work: nothing is written either, but the refused file stays in the staging directory it names
    assert kept.returncode == 3, kept.stderr
    staging = Path(kept.stderr.split("kept for inspection in ")[1].split()[0].rstrip(")"))
    assert staging.parent == tmp_path / "kept" and [p.name for p in (tmp_path / "kept").iterdir()] == [staging.name]
    assert (staging / "digits_mobilenet_v2-int8.onnx").is_file()


@pytest.mark.slow(30)  # in CI; `pytest -m 'not slow'` is the inner loop
def test_torchscript_and_exported_program_sources_with_auto_precision(tmp_path, digit_images):
    """A TorchScript file and a torch.export program (.pt2) convert like any other source;
    --precision auto times fp32 and int8 here and writes only the faster passing file."""
    torch.manual_seed(0)
    model = teach(FAMILIES["vgg"]())
    sample = torch.zeros(1, 3, 32, 32)
    torch.jit.trace(model, sample).save(str(tmp_path / "vgg.ts"))
    torch.export.save(torch.export.export(model, (sample,)), str(tmp_path / "vgg.pt2"))
    for source in ("vgg.ts", "vgg.pt2"):
        result = run_cli("convert", tmp_path / source, "--input-size", "32", "--data", digit_images, "--to", "onnx",
                         "--precision", "auto", "--max-drop", "15", "--out", tmp_path / source.replace(".", "_"),
                         "--json", check=True)
        (report,) = json.loads(result.stdout)
        assert report["written"] and report["latency_ms"] > 0 and report["format"] == "onnx"
        written = sorted(p.name for p in (tmp_path / source.replace(".", "_")).glob("*.onnx"))
        assert written == [f"vgg-{report['precision']}.onnx"]
        if report["precision"] == "fp32":
            assert report["relative_error"] <= 1e-4


@pytest.mark.slow  # in CI; `pytest -m 'not slow'` is the inner loop
def test_int8_onnx_keeps_the_named_layers_float(tmp_path):
    """--float-layers: onnxruntime quantizes every layer but the named ones, whose weights
    stay float initializers, and the card says which they are."""
    import onnx

    from converters.to_onnx import module_of_node
    from edgecnn.training.checkpoint import load_model
    from edgecnn.runtime.model_file import read_card
    from edgecnn.compress.quantize.ptq import quantizable_layers

    source = "edgecnn/assets/digits_mobilenet_v2.pt"
    layers = quantizable_layers(load_model(ROOT / source)[0])
    kept = [layers[0], layers[-1]]
    result = run_cli("convert", source, "--to", "onnx", "--precision", "int8", "--float-layers", ",".join(kept),
                     "--calib-images", "64", "--out", tmp_path / "out", "--json", cwd=ROOT)
    assert result.returncode == 0, result.stderr
    summary, = json.loads(result.stdout)
    assert summary["written"]
    proto = onnx.load(summary["file"])
    producer = {output: node.op_type for node in proto.graph.node for output in node.output}
    weight_source = {module_of_node(node.name): producer.get(node.input[1], "initializer")
                     for node in proto.graph.node if node.op_type in ("Conv", "Gemm", "MatMul")}
    assert set(weight_source) == set(layers)
    assert {name for name, made_by in weight_source.items() if made_by != "DequantizeLinear"} == set(kept)
    card = read_card(summary["file"])
    assert card.quantization["float_layers"] == kept and card.precision == "int8"
    bad = run_cli("convert", source, "--to", "onnx", "--precision", "int8", "--float-layers", "features.99",
                  "--out", tmp_path / "bad", cwd=ROOT)
    assert_one_line_error(bad, 2, "no convolution or linear layer named features.99")


def test_int8_onnx_ranges_are_not_stretched_by_one_outlier_pixel(tmp_path):
    """onnxruntime calibration spans the central 99.999% of the activations, fed a chunk
    of images at a time: one saturated pixel among 60 images of 64x64 (0.0004% of the input
    values) leaves the input's int8 step where the other 245,759 values put it; a min/max
    range would be 5x coarser."""
    import onnx
    from onnx import numpy_helper

    from converters.to_onnx import calibration_chunk, export_fp32, quantize_int8
    from edgecnn.core.card import ModelCard

    card = ModelCard(task="classify", labels=["a", "b"], input_size=(64, 64), mean=(127.5,) * 3, std=(127.5,) * 3)
    model = nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten(),
                          nn.Linear(8, 2)).eval()
    rng = np.random.default_rng(0)
    images = [rng.integers(115, 141, (64, 64, 3), dtype=np.uint8) for _ in range(60)]
    images[7][10, 20] = 255  # (x - 127.5) / 127.5: the others lie in -0.1..0.1, this one at 1.0
    assert calibration_chunk(60) == 30 and calibration_chunk(7) == 7 and calibration_chunk(53) == 1
    fp32, int8 = str(tmp_path / "fp32.onnx"), str(tmp_path / "int8.onnx")
    export_fp32(model, card, fp32)
    quantize_int8(fp32, int8, card, images)
    graph = onnx.load(int8).graph
    scales = {init.name: float(numpy_helper.to_array(init)) for init in graph.initializer if init.dims == []}
    input_scale, = [scales[node.input[1]] for node in graph.node
                    if node.op_type == "QuantizeLinear" and node.input[0] == "input"]
    assert input_scale < 0.25 / 255  # min/max: 1.1 / 255
