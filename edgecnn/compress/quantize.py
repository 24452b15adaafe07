"""Int8 post-training quantization through PyTorch's PT2E flow (torchao), with the
quantizer litert-torch uses, so that the quantized graph is exactly what the TFLite
converter turns into a full-integer model.

The graph is made channel-last at its input first (litert-torch's
`to_channel_last_io`): the TFLite model then takes NHWC and needs no TRANSPOSE, and
the card of the quantized model says layout "nhwc" so every consumer preprocesses
for it. Calibration images go through `edgecnn.core.preprocess`, the same
definition training used.
"""
from __future__ import annotations

import contextlib
import copy
import json
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any, Callable, Dict, List, Optional, Sequence, Tuple, Union

import numpy as np
import torch
from torch import nn

from edgecnn.core.atomic import atomic_path
from edgecnn.core.card import ModelCard
from edgecnn.core.errors import UserError
from edgecnn.tasks import get_task
from edgecnn.core.files import is_image_file
from edgecnn.core.preprocess import preprocess_batch

CARD_FILE = "edgecnn_card"
QUANTIZER_FILE = "edgecnn_quantizer"  # per-channel / float layers / QAT: what rebuilds the quantizer
# Below this many images the activation ranges of a small CNN visibly depend on which
# images were drawn (measured: digits drop spreads from 0.1 to 0.7 points at 16).
MIN_CALIBRATION_IMAGES = 64
# QAT's SGD learning rate per task. On the shapes detector (expansion taps) one epoch at
# 1e-3 left a 1.96-point drop, at 1e-4 0.96 (benchmarks/RESULTS.md).
QAT_LR = {"classify": 1e-3, "detect": 1e-4}
QAT_BATCH = {"classify": 32, "detect": 16}  # the batches the bundled models were trained with


@dataclass
class CalibrationCheck:
    """What is suspicious about a calibration set, as user-facing warnings."""

    images: int
    warnings: List[str] = field(default_factory=list)


def check_calibration(calibration: np.ndarray, reference: np.ndarray,
                      minimum: int = MIN_CALIBRATION_IMAGES) -> CalibrationCheck:
    """Warn when there are too few calibration images, or when their preprocessed
    statistics differ from the training images' (another camera, another colour order,
    another normalisation: the scales would be computed for the wrong data)."""
    check = CalibrationCheck(images=len(calibration))
    if len(calibration) < minimum:
        check.warnings.append(f"only {len(calibration)} calibration images; use at least {minimum} "
                              "for stable int8 ranges")
    cal_mean, cal_std = float(calibration.mean()), float(calibration.std())
    ref_mean, ref_std = float(reference.mean()), float(reference.std())
    if abs(cal_mean - ref_mean) > 0.25 * ref_std or not 0.67 < cal_std / max(ref_std, 1e-6) < 1.5:
        check.warnings.append(
            f"calibration images differ from the training images after preprocessing (mean {cal_mean:.3f} vs "
            f"{ref_mean:.3f}, std {cal_std:.3f} vs {ref_std:.3f}): the int8 ranges may not fit real inputs")
    return check


def training_images(card: ModelCard, data_spec: str, split: str, count: Optional[int], seed: int = 0
                    ) -> List[np.ndarray]:
    """Up to `count` images (a seeded random subset) of a dataset split, as OpenCV arrays."""
    images = get_task(card.task).training().load_images(data_spec, split)
    if not len(images):
        raise UserError(f"no {split} images in {data_spec}: calibration needs real images")
    if count is not None and count < len(images):
        chosen = np.random.default_rng(seed).choice(len(images), count, replace=False)
        images = [images[i] for i in sorted(chosen)]
    return list(images)


def quantizer(per_channel: bool = True, float_layers: Sequence[str] = (), qat: bool = False):
    """litert-torch's symmetric int8 quantizer; `float_layers` (module names) stay float;
    `qat` puts fake-quantize modules (with straight-through gradients) in the graph."""
    from litert_torch.quantize import pt2e_quantizer

    class PartialQuantizer(pt2e_quantizer.PT2EQuantizer):
        # QAT runs on a graph whose BatchNorms are already folded (see quantization_aware_training),
        # so the conv+BN QAT patterns are not needed (and do not build with this torchao)
        STATIC_QAT_ONLY_OPS: List[str] = []

        def _annotate_all_static_patterns(self, model, quantization_config, filter_fn=None):
            if quantization_config is not None:
                annotate_conv_relu6(model, quantization_config, filter_fn)
            return super()._annotate_all_static_patterns(model, quantization_config, filter_fn)

        def annotate(self, model):
            model = super().annotate(model)
            for node in float_nodes(model.graph, float_layers):
                node.meta.pop("quantization_annotation", None)
            return model

    config = pt2e_quantizer.get_symmetric_quantization_config(is_per_channel=per_channel, is_qat=qat,
                                                              is_dynamic=False)
    if qat:
        config = with_calibrated_activation_ranges(config)
    return PartialQuantizer().set_global(config)


# ops that only pass a float layer's output on to a model output: left float with it, so
# that a detector's box conv kept float (then its sigmoid and reshapes) keeps its output
# float instead of rounding it to 8 bits, as converters/to_onnx.py does for onnxruntime
PASS_THROUGH_OPS = {f"aten.{op}" for op in (
    "sigmoid.default", "hardsigmoid.default", "_softmax.default", "relu.default", "relu_.default",
    "hardtanh.default", "hardtanh_.default", "permute.default", "permute_copy.default", "view.default",
    "view_copy.default", "reshape.default", "_unsafe_view.default", "flatten.using_ints", "unflatten.int",
    "squeeze.default", "squeeze.dim", "squeeze.dims", "unsqueeze.default", "transpose.int", "clone.default",
    "alias.default")}


def float_nodes(graph, float_layers: Sequence[str]) -> set:
    """The nodes of the named layers, and the pass-through ops that carry their output
    to a model output or to another float layer. Pass-through ops that feed a quantized
    op keep their annotation (a max-pool, for one, shares its input's quantization
    parameters), and the chain is followed through each op's first input only, so ops
    that merge tensors (cat, add, mul) end it."""
    layers = {node for node in graph.nodes if in_modules(node, float_layers)}
    carried = set(layers)
    for node in graph.nodes:  # exported graphs are topologically sorted
        if str(node.target) in PASS_THROUGH_OPS and node.args and node.args[0] in carried:
            carried.add(node)
    kept_float = set()
    for node in reversed(graph.nodes):  # users come after their inputs
        if node in carried and node not in layers and node.users and all(
                user.op == "output" or user in kept_float or user in layers for user in node.users):
            kept_float.add(node)
    return layers | kept_float


RELU6_OPS = ("aten.hardtanh.default", "aten.hardtanh_.default")
CONV_OPS = ("aten.conv2d.default", "aten.convolution.default")


def annotate_conv_relu6(model, config, filter_fn=None) -> None:
    """Quantize a convolution followed by ReLU6 once, after the ReLU6, as litert-torch's
    quantizer already does for convolution + ReLU (and onnxruntime's for Conv + Clip).
    Left to litert-torch, the convolution's output is quantized before the ReLU6 and the
    ReLU6 shares that range, so its negative half and the values above 6 take part of
    the 256 steps: the bundled detector's ReLU6 outputs had 2.7x coarser steps (median;
    benchmarks/investigations/relu6_scales.py)."""
    from litert_torch.quantize import pt2e_quantizer_utils as annotation
    from torchao.quantization.pt2e.quantizer import QuantizationAnnotation

    for relu6 in model.graph.nodes:
        if relu6.op != "call_function" or str(relu6.target) not in RELU6_OPS:
            continue
        bounds = (relu6.args[1] if len(relu6.args) > 1 else relu6.kwargs.get("min_val", -1.0),
                  relu6.args[2] if len(relu6.args) > 2 else relu6.kwargs.get("max_val", 1.0))
        conv = relu6.args[0]
        if (tuple(map(float, bounds)) != (0.0, 6.0) or not isinstance(conv, torch.fx.Node)
                or conv.op != "call_function" or str(conv.target) not in CONV_OPS or len(conv.users) != 1):
            continue
        weight, bias = conv.args[1], conv.args[2] if len(conv.args) > 2 else None
        partition = [relu6, conv, weight] + ([bias] if isinstance(bias, torch.fx.Node) else [])
        if annotation._is_annotated(partition) or (filter_fn and not all(filter_fn(n) for n in partition)):
            continue
        inputs = {conv.args[0]: annotation.get_input_act_qspec(config), weight: annotation.get_weight_qspec(config)}
        if isinstance(bias, torch.fx.Node):
            inputs[bias] = annotation.get_bias_qspec(config)
        conv.meta["quantization_annotation"] = QuantizationAnnotation(input_qspec_map=inputs, _annotated=True)
        relu6.meta["quantization_annotation"] = QuantizationAnnotation(
            output_qspec=annotation.get_output_act_qspec(config), _annotated=True)
        annotation._mark_nodes_as_annotated(partition)


def with_calibrated_activation_ranges(config):
    """A QAT config whose activation fake-quantizers take their ranges from a histogram
    observer, as post-training quantization does (litert-torch's QAT config tracks a
    moving min/max instead, whose wider ranges cost a detector 2.4 points of
    mAP@0.5:0.95 before any training). `quantization_aware_training` calibrates these
    ranges on real images, then freezes them while the weights learn."""
    import dataclasses

    from torchao.quantization.pt2e.fake_quantize import FakeQuantize
    from torchao.quantization.pt2e.observer import HistogramObserver

    activation = dataclasses.replace(config.input_activation, observer_or_fake_quant_ctr=FakeQuantize.with_args(
        observer=HistogramObserver, eps=2 ** -12))
    return dataclasses.replace(config, input_activation=activation, output_activation=activation)


def activation_fake_quantizers(module: nn.Module) -> List[nn.Module]:
    from torchao.quantization.pt2e.observer import HistogramObserver

    return [m for m in module.modules() if isinstance(getattr(m, "activation_post_process", None), HistogramObserver)]


CHANNEL_LAST_WRAPPER = "wrapped."


def in_modules(node, names: Sequence[str]) -> bool:
    if not names:
        return False
    stack = node.meta.get("nn_module_stack", {})
    paths = {path.split("'self'", 1)[-1].lstrip(".").replace("]", "").replace("[", ".").replace("'", "")
             for path, _ in stack.values()}
    # litert_torch.to_channel_last_io puts the model under a `wrapped` attribute
    paths = {path[len(CHANNEL_LAST_WRAPPER):] if path.startswith(CHANNEL_LAST_WRAPPER) else path for path in paths}
    return any(in_layers(path, names) for path in paths)


def in_layers(path: str, names: Sequence[str]) -> bool:
    """Whether module `path` is one of the named layers or inside one of them."""
    return any(path == name or path.startswith(name + ".") for name in names)


def channel_last(model: nn.Module, train: bool = False) -> nn.Module:
    from converters.toolchain import quiet

    with quiet():
        import litert_torch

        model.train(train)
        return litert_torch.to_channel_last_io(model, args=[0])


def export_graph(model: nn.Module, sample: torch.Tensor):
    """torch.export with a dynamic batch; strict=True so that every residual ADD is
    annotated (non-strict export leaves them float in the TFLite file)."""
    from converters.toolchain import quiet

    batch = torch.export.Dim("batch", min=1, max=65536)
    try:
        with quiet():
            return torch.export.export(model, (sample,), strict=True, dynamic_shapes=(({0: batch},),)).module()
    except Exception as exc:  # torch.export raises many error types
        raise UserError(f"the model cannot be exported as one graph for quantization: "
                        f"{str(exc).strip().splitlines()[0][:200]}") from None


def calibrate(graph, quant, batches: np.ndarray, batch_size: int = 32):
    """prepare_pt2e, observe the calibration batches, convert_pt2e."""
    from converters.toolchain import quiet

    with quiet():
        from torchao.quantization.pt2e import allow_exported_model_train_eval, move_exported_model_to_eval
        from torchao.quantization.pt2e.quantize_pt2e import convert_pt2e, prepare_pt2e

        prepared = prepare_pt2e(copy.deepcopy(graph), quant)
        with torch.no_grad():
            for start in range(0, len(batches), batch_size):
                prepared(torch.from_numpy(batches[start:start + batch_size]))
        quantized = convert_pt2e(prepared, fold_quantize=False)
    move_exported_model_to_eval(quantized)
    allow_exported_model_train_eval(quantized)
    return quantized


@dataclass
class QuantizedModel:
    """A PT2E int8 graph (NHWC input) and its card; `quantizer` feeds the TFLite converter."""

    module: Any
    card: ModelCard
    per_channel: bool = True
    float_layers: List[str] = field(default_factory=list)
    qat: bool = False

    @property
    def quantizer(self):
        return quantizer(self.per_channel, self.float_layers, self.qat)

    @cached_property
    def predict(self) -> Callable[[np.ndarray], Any]:
        """Preprocessed NHWC batch -> outputs, like any edgecnn predictor."""
        from edgecnn.training.evaluate import torch_predictor

        return torch_predictor(self.module)


def quantize_model(model: nn.Module, card: ModelCard, calibration_images: Sequence[np.ndarray],
                   per_channel: bool = True, float_layers: Sequence[str] = (), graph=None) -> QuantizedModel:
    """Post-training int8 quantization of an fp32 model, calibrated on real images."""
    nhwc = card.replace(layout="nhwc")
    batches = preprocess_batch(list(calibration_images), nhwc)
    if graph is None:
        graph = export_graph(channel_last(model), torch.from_numpy(np.repeat(batches[:1], 2, axis=0)))
    with float_layers_explained(float_layers):
        module = calibrate(graph, quantizer(per_channel, float_layers), batches)
    qcard = nhwc.replace(precision="int8", quantization={
        "scheme": "pt2e-symmetric", "weights": "per-channel" if per_channel else "per-tensor",
        "calibration_images": len(batches), "float_layers": list(float_layers)})
    return QuantizedModel(module, qcard, per_channel, list(float_layers))


@contextlib.contextmanager
def float_layers_explained(float_layers: Sequence[str]):
    """torchao's prepare_pt2e raises KeyError on the quantization parameters shared around
    a layer asked to stay float on its own: say so in one line. Without float layers the
    error is not ours to explain and surfaces unchanged."""
    try:
        yield
    except KeyError:
        if not float_layers:
            raise
        raise UserError(f"--float-layers: the PT2E quantizer cannot leave {', '.join(float_layers)} float on "
                        f"its own (it shares quantization parameters with the layers around it); "
                        f"`edgecnn quantize --mixed` lists the layers that can stay float") from None


def check_float_layers(model: nn.Module, names: Sequence[str]) -> None:
    """--float-layers must name convolution or linear layers of this model."""
    layers = quantizable_layers(model)
    unknown = sorted(set(names) - set(layers))
    if unknown:
        raise UserError(f"--float-layers: no convolution or linear layer named {', '.join(unknown)} "
                        f"(this model's run from {layers[0]} to {layers[-1]})")


def quantizable_layers(model: nn.Module) -> List[str]:
    """Names of the convolutions and linear layers, in execution order."""
    return [name for name, module in model.named_modules() if isinstance(module, (nn.Conv2d, nn.Linear))]


def sensitivity(model: nn.Module, card: ModelCard, calibration_images: Sequence[np.ndarray],
                score: Callable[[Callable], float], graph, all_int8: QuantizedModel, per_channel: bool = True,
                progress=None) -> List[Tuple[str, float]]:
    """Per-layer sensitivity: how much the score recovers, against the all-int8 model,
    when only that layer stays in float. `graph` is the exported graph the all-int8
    model was calibrated from. Sorted most sensitive first."""
    base = score(all_int8.predict)
    results = []
    layers = quantizable_layers(model)
    for index, name in enumerate(layers):
        try:
            recovered = score(quantize_model(model, card, calibration_images, per_channel, [name], graph).predict)
        except UserError:  # the quantizer cannot leave this layer float on its own
            if progress:
                progress(index + 1, len(layers), name, None)
            continue
        results.append((name, recovered - base))
        if progress:
            progress(index + 1, len(layers), name, recovered - base)
    return sorted(results, key=lambda item: -item[1])


def save_quantized(path: Union[str, Path], quantized: QuantizedModel, sample: np.ndarray) -> None:
    """Write the int8 graph as a torch.export program (.pt2) with the card inside, atomically."""
    batch = torch.export.Dim("batch", min=1, max=65536)
    program = torch.export.export(quantized.module, (torch.from_numpy(sample),), strict=False,
                                  dynamic_shapes=({0: batch},))
    settings = {"per_channel": quantized.per_channel, "float_layers": list(quantized.float_layers),
                "qat": quantized.qat}
    extra = {CARD_FILE: quantized.card.to_json(), QUANTIZER_FILE: json.dumps(settings)}
    with atomic_path(path) as tmp:
        torch.export.save(program, str(tmp), extra_files=extra)


def register_quantized_ops() -> None:
    """Importing torchao's PT2E module registers the quantized_decomposed ops that an
    int8 program is written in; torch.export.load needs them."""
    from converters.toolchain import quiet

    with quiet():
        import torchao.quantization.pt2e  # noqa: F401


def read_program(path: Union[str, Path]) -> Tuple[Any, Dict[str, str]]:
    """A torch.export program's module (switchable to eval, as the converters expect) and
    edgecnn's extra files (empty strings when absent: not an edgecnn int8 program)."""
    from converters.toolchain import quiet

    extra = {CARD_FILE: "", QUANTIZER_FILE: ""}
    try:
        with quiet():  # torchao's import notices and torch.export's logged traceback on a bad file
            from torchao.quantization.pt2e import allow_exported_model_train_eval

            register_quantized_ops()
            program = torch.export.load(str(path), extra_files=extra)
    except Exception as exc:  # torch raises many types for foreign or truncated archives
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise UserError(f"cannot read {path}: not a torch.export program ({first[:120]})") from None
    module = program.module()
    allow_exported_model_train_eval(module)
    return module, extra


def quantized_from_program(module, extra: Dict[str, str]) -> QuantizedModel:
    settings = json.loads(extra[QUANTIZER_FILE] or "{}")
    return QuantizedModel(module, ModelCard.from_json(extra[CARD_FILE]), settings.get("per_channel", True),
                          settings.get("float_layers", []), settings.get("qat", False))


def load_quantized(path: Union[str, Path]) -> QuantizedModel:
    module, extra = read_program(path)
    if not extra[CARD_FILE]:
        raise UserError(f"{path} carries no edgecnn model card")
    return quantized_from_program(module, extra)


def qat_task(card: ModelCard, data_spec: str, seed: int, max_images: Optional[int] = None):
    """The training task (data, augmentation, preprocessing, loss) that QAT fine-tunes with."""
    from edgecnn.training.train import TrainConfig

    config = TrainConfig(task=card.task, data=data_spec, imgsz=card.input_size[0], seed=seed,
                         max_train_images=max_images, max_val_images=1)
    return get_task(card.task).training().make_training(config, card)


def quantization_aware_training(model: nn.Module, card: ModelCard, data_spec: str, epochs: int,
                                calibration_images: Sequence[np.ndarray], lr: Optional[float] = None,
                                batch: Optional[int] = None, per_channel: bool = True,
                                float_layers: Sequence[str] = (), seed: int = 0, max_images: Optional[int] = None,
                                log=print) -> QuantizedModel:
    """QAT: the int8 graph (fake-quantized, straight-through gradients) is fine-tuned on
    the training split with the training augmentation, preprocessing and loss, then
    converted; for when post-training quantization misses the budget. The graph is the
    deployed one (a detector's outputs are probabilities), so what is trained is what ships."""
    from torch.utils.data import DataLoader
    from tqdm import tqdm

    from converters.toolchain import quiet

    if epochs < 1:
        raise UserError("--qat needs --epochs >= 1")
    task = qat_task(card, data_spec, seed, max_images)
    calibration = preprocess_batch(list(calibration_images), card.replace(layout="nhwc"))
    batch = batch or QAT_BATCH[card.task]
    sample = torch.zeros(2, *card.input_size, card.channels)
    batch_dim = torch.export.Dim("batch", min=1, max=65536)
    with quiet():
        from torchao.quantization.pt2e import move_exported_model_to_eval, move_exported_model_to_train
        from torchao.quantization.pt2e.quantize_pt2e import convert_pt2e, prepare_qat_pt2e

        # Frozen BatchNorm statistics (a standard QAT variant): the BatchNorms are folded into
        # the convolutions of the exported graph, as post-training quantization folds them.
        # (Folding them before the export cost a detector 1 point of mAP@0.5:0.95, and leaving
        # them to torchao's QAT fusion made the conversion take 40 s.) The export is of eval mode,
        # the deployed graph: a detector's training mode changes its outputs.
        from torchao.quantization.pt2e.utils import _fuse_conv_bn_

        graph = torch.export.export(channel_last(copy.deepcopy(model), train=False), (sample,), strict=True,
                                    dynamic_shapes=(({0: batch_dim},),)).module()
        _fuse_conv_bn_(graph)
        with float_layers_explained(float_layers):
            prepared = prepare_qat_pt2e(graph, quantizer(per_channel, float_layers, qat=True))
    # activation ranges: measured on the calibration images through the float graph, then frozen
    fake_quantizers = activation_fake_quantizers(prepared)
    for fake_quantizer in fake_quantizers:
        fake_quantizer.disable_fake_quant()
    move_exported_model_to_eval(prepared)
    with torch.no_grad():
        for start in range(0, len(calibration), batch):
            prepared(torch.from_numpy(calibration[start:start + batch]))
    for fake_quantizer in fake_quantizers:
        fake_quantizer.enable_fake_quant()
        fake_quantizer.disable_observer()
    move_exported_model_to_train(prepared)  # dropout on (BatchNorms are folded)
    optimizer = torch.optim.SGD(prepared.parameters(), lr=lr or QAT_LR[card.task], momentum=0.9, nesterov=True,
                                foreach=True)
    steps = epochs * -(-len(task.train_dataset) // batch)
    schedule = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, steps)
    for epoch in range(epochs):
        task.train_dataset.epoch = epoch
        order = torch.randperm(len(task.train_dataset), generator=torch.Generator().manual_seed(seed * 1009 + epoch))
        loader = DataLoader(task.train_dataset, batch_size=batch, sampler=order.tolist(), collate_fn=task.collate)
        total, seen = 0.0, 0
        for items in tqdm(loader, desc=f"QAT epoch {epoch + 1}/{epochs}", leave=False, disable=None):
            with quiet():
                outputs = prepared(items[0].permute(0, 2, 3, 1).contiguous())
                loss = task.deployed_loss(outputs, items)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            schedule.step()
            total, seen = total + float(loss.detach()) * len(items[0]), seen + len(items[0])
        log(f"QAT epoch {epoch + 1}/{epochs}  loss {total / seen:.4f}")
    move_exported_model_to_eval(prepared)
    with quiet():
        from torchao.quantization.pt2e import allow_exported_model_train_eval

        quantized = convert_pt2e(prepared, fold_quantize=False)
        move_exported_model_to_eval(quantized)
        allow_exported_model_train_eval(quantized)
    qcard = card.replace(layout="nhwc", precision="int8", quantization={
        "scheme": "pt2e-symmetric-qat", "weights": "per-channel" if per_channel else "per-tensor",
        "qat_epochs": epochs, "float_layers": list(float_layers)})
    return QuantizedModel(quantized, qcard, per_channel, list(float_layers), qat=True)


def output_error(reference: Callable, batches: np.ndarray) -> Callable[[Callable], float]:
    """A label-free score for sensitivity analysis: minus the relative L2 error of every
    output against the fp32 model on training images (so the held-out split is only
    ever used by the gate)."""
    from converters.parity import as_list

    expected = as_list(reference(batches))

    def score(predict: Callable) -> float:
        got = as_list(predict(batches))
        return -float(sum(np.linalg.norm(g - e) / max(np.linalg.norm(e), 1e-12) for g, e in zip(got, expected)))

    return score


def image_files(spec: str) -> List[str]:
    """Image files directly in a directory or matching a glob ([] for a dataset spec)."""
    import glob
    import os

    pattern = os.path.join(spec, "*") if os.path.isdir(spec) else spec
    return sorted(f for f in glob.glob(pattern) if is_image_file(f))


def load_images(spec: str, card: ModelCard, count: Optional[int], seed: int = 0) -> List[np.ndarray]:
    """Calibration images from a dataset spec (its train split), or a directory/glob of
    image files (e.g. frames saved from the deployment camera)."""
    import os

    import cv2

    files = image_files(spec)
    if not files:
        if os.path.isdir(spec) and not any(os.scandir(spec)):
            raise UserError(f"no calibration images in {spec}")
        return training_images(card, spec, "train", count, seed)
    if count is not None and count < len(files):
        files = [files[i] for i in sorted(np.random.default_rng(seed).choice(len(files), count, replace=False))]
    images = []
    for file in files:
        image = cv2.imread(file, cv2.IMREAD_UNCHANGED)
        if image is None:
            raise UserError(f"{file}: not a readable image")
        images.append(image)
    return images


@dataclass
class QuantizeOptions:
    data: Optional[str] = None  # held-out evaluation data (default: the card's dataset)
    calib: Optional[str] = None  # calibration images (default: the training split of `data`)
    calib_images: int = 256
    per_channel: bool = True
    max_drop: float = 1.0
    mixed: bool = False
    float_layers: Sequence[str] = ()  # module names kept float from the start
    qat: bool = False
    epochs: int = 0  # QAT epochs
    lr: Optional[float] = None  # QAT learning rate (default: QAT_LR of the task)
    force: bool = False
    seed: int = 0


def quantize_checkpoint(source: str, out: str, options: QuantizeOptions, log=print) -> Dict[str, Any]:
    """fp32 checkpoint -> measured int8 program (.pt2), or GateRefused with nothing written."""
    from edgecnn.core.files import file_hash
    from edgecnn.training.checkpoint import load_for_compression
    from edgecnn.training.evaluate import evaluate_predictor, torch_predictor
    from edgecnn.compress.gate import compare, enforce

    if not str(out).endswith(".pt2"):
        raise UserError(f"--out must end in .pt2 (a torch.export program), got {out}")
    model, card, data_spec = load_for_compression(source, options.data, "quantize")
    if options.calib_images < 1:
        raise UserError("--calib-images must be >= 1")
    check_float_layers(model, options.float_layers)
    calibration = load_images(options.calib or data_spec, card, options.calib_images, options.seed)
    reference = training_images(card, data_spec, "train", 256, options.seed + 1)
    nhwc = card.replace(layout="nhwc")
    check = check_calibration(preprocess_batch(calibration, nhwc), preprocess_batch(reference, nhwc))
    for warning in check.warnings:
        log(f"warning: {warning}")

    fp32 = evaluate_predictor(torch_predictor(model), card, data_spec)
    sample = np.repeat(preprocess_batch(calibration[:1], nhwc), 2, 0)
    graph = None if options.qat else export_graph(channel_last(model), torch.from_numpy(sample))
    if options.qat:
        quantized = quantization_aware_training(model, card, data_spec, options.epochs, calibration, options.lr,
                                                per_channel=options.per_channel, float_layers=options.float_layers,
                                                seed=options.seed, log=log)
    else:
        quantized = quantize_model(model, card, calibration, options.per_channel, options.float_layers, graph)
    int8 = evaluate_predictor(quantized.predict, quantized.card, data_spec)
    gate = compare(card.task, fp32, int8, options.max_drop)
    kept = f"{', '.join(options.float_layers)} float" if options.float_layers else "all layers"
    log(f"int8 ({'QAT, ' if options.qat else ''}{kept}): {gate.describe()}")
    ranking: List[Tuple[str, float]] = []
    if not gate.passed and options.mixed and not options.qat:
        probe = preprocess_batch(reference[:64], nhwc)
        channel_last_model = channel_last(model)
        score = output_error(torch_predictor(channel_last_model), probe)
        log("per-layer sensitivity (error recovered when the layer stays float):")
        ranking = sensitivity(model, card, calibration, score, graph, quantized, options.per_channel,
                              progress=lambda i, n, name, gain: log(
                                  f"  [{i}/{n}] {name}: " + ("cannot stay float alone" if gain is None else f"{gain:+.4f}")))
        for keep in (1, 2, 4, 8, 16):
            if keep > len(ranking) // 2:
                break
            float_layers = list(dict.fromkeys([*options.float_layers, *(name for name, _ in ranking[:keep])]))
            quantized = quantize_model(model, card, calibration, options.per_channel, float_layers, graph)
            int8 = evaluate_predictor(quantized.predict, quantized.card, data_spec)
            gate = compare(card.task, fp32, int8, options.max_drop)
            log(f"int8 with {keep} float layer(s) {', '.join(float_layers)}: {gate.describe()}")
            if gate.passed:
                break
    metric = gate.metric
    summary = {"source": str(source), "out": str(out), "gate": gate.to_dict(), "fp32": fp32, "int8": int8,
               "calibration_images": check.images, "warnings": check.warnings,
               "float_layers": quantized.float_layers, "sensitivity": ranking[:10]}
    enforce(gate, options.force, what=str(out))
    quantized.card = quantized.card.replace(
        source_hash=file_hash(source),
        metrics={metric: int8[metric], f"fp32_{metric}": fp32[metric], "drop_points": gate.drop,
                 "split": int8.get("split", "val"), "dataset": data_spec, "images": int8.get("images")})
    save_quantized(out, quantized, sample)
    return summary
