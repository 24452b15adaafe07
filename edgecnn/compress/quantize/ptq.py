"""Post-training int8 through PyTorch's PT2E flow (torchao), with the quantizer litert-torch
uses, so that the quantized graph is exactly what the TFLite converter turns into a
full-integer model.

The graph is made channel-last at its input first (litert-torch's
`to_channel_last_io`): the TFLite model then takes NHWC and needs no TRANSPOSE, and
the card of the quantized model says layout "nhwc" so every consumer preprocesses
for it. Calibration images go through `edgecnn.core.preprocess`, the same
definition training used. Also the per-layer sensitivity that --mixed keeps float by."""
from __future__ import annotations

import contextlib
import copy
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any, Callable, List, Sequence, Tuple

import numpy as np
import torch
from torch import nn

from edgecnn.core.card import ModelCard
from edgecnn.core.errors import UserError
from edgecnn.core.preprocess import preprocess_batch


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
    from edgecnn.core.descriptors import quiet

    with quiet():
        import litert_torch

        model.train(train)
        return litert_torch.to_channel_last_io(model, args=[0])


def export_graph(model: nn.Module, sample: torch.Tensor):
    """torch.export with a dynamic batch; strict=True so that every residual ADD is
    annotated (non-strict export leaves them float in the TFLite file)."""
    from edgecnn.core.descriptors import quiet

    batch = torch.export.Dim("batch", min=1, max=65536)
    try:
        with quiet():
            return torch.export.export(model, (sample,), strict=True, dynamic_shapes=(({0: batch},),)).module()
    except Exception as exc:  # torch.export raises many error types
        raise UserError(f"the model cannot be exported as one graph for quantization: "
                        f"{str(exc).strip().splitlines()[0][:200]}") from None


def calibrate(graph, quant, batches: np.ndarray, batch_size: int = 32):
    """prepare_pt2e, observe the calibration batches, convert_pt2e."""
    from edgecnn.core.descriptors import quiet

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


def output_error(reference: Callable, batches: np.ndarray) -> Callable[[Callable], float]:
    """A label-free score for sensitivity analysis: minus the relative L2 error of every
    output against the fp32 model on training images (so the held-out split is only
    ever used by the gate)."""
    from edgecnn.training.evaluate import as_list

    expected = as_list(reference(batches))

    def score(predict: Callable) -> float:
        got = as_list(predict(batches))
        return -float(sum(np.linalg.norm(g - e) / max(np.linalg.norm(e), 1e-12) for g, e in zip(got, expected)))

    return score
