"""int8 for an ONNX file edgecnn did not train (a YOLO from Ultralytics, a jetson SSD, a
torchvision classifier): onnxruntime's static quantization (QDQ, per-channel int8
weights, percentile-calibrated uint8 activations, as edgecnn's own ONNX int8 files get;
--weight-bits 7 for CPUs without VNNI, see WEIGHT_BITS), measured on the user's held-out
data beside the fp32 file and refused beyond the budget with nothing written. The kept
file carries a card (the recognised or given one, marked int8, with both measurements)
and gets a parity report beside it.

The nodes after the last convolution on the way to each output (a detector's decode)
stay float in every attempt.

--mixed: when all-int8 misses the budget, each convolution's sensitivity is read off one
int8 pass (the relative error it adds: its output's error against the fp32 file's,
less its input's), and the most sensitive stay float in growing groups (1, 2, 4, 8,
16), each measured by the gate, until the budget holds. With --weight-bits 7 they get
8-bit weights instead (taken from a file quantized alike in 8 bits, whose activation
ranges are the same): on a CPU without VNNI onnxruntime runs each convolution whose
weights fit in 7 bits on its fast int8 kernel and only the others on its exact one.
"""
from __future__ import annotations

import json
import os
import shutil
import tempfile
from typing import Any, Dict, List, Sequence

import numpy as np

from edgecnn.core.card import ModelCard
from edgecnn.core.errors import GateRefused, UserError
from edgecnn.core.preprocess import preprocess, preprocess_batch
from edgecnn.compress.quantize.calibration import check_calibration, load_images, training_images
from edgecnn.core.task import get_task

PARITY_IMAGES = 100
# A budget in points cannot catch the collapse of a model whose own score is near zero: a
# YOLO11n trained for 3 minutes (mAP@0.5:0.95 0.41) went to 0.00 with 0% matched-box
# agreement and stayed "within 1 point" (benchmarks/RESULTS.md, "Models from other
# toolkits"); so the int8 file must also give the fp32 file's answers on at least half
# the held-out images' answers (the shapes detector's int8 file: above 80%).
MIN_PARITY_AGREEMENT = 0.5
WEIGHTED_OPS = ("Conv", "ConvTranspose", "Gemm", "MatMul")
# int8 weights in all 8 bits. --weight-bits 7 (onnxruntime's reduce_range) is for x86 CPUs
# without VNNI: there edgecnn's sessions ask for onnxruntime's exact int8 kernel, which runs
# files with 8-bit weights at about fp32 speed but keeps the fast kernel for weights within
# 7 bits (benchmarks/RESULTS.md, "ONNX int8 on x86-64 CPUs without VNNI"); the gate
# measures what the lost bit costs.
WEIGHT_BITS = 8
# The gate and the parity report run both files on onnxruntime, the engine that calibrates
# and writes them, named rather than left to `auto` (which would time the file's siblings
# of another precision and each backend, and could score a file other than the one named).
GATE_BACKEND = "onnxruntime"


def decode_tail(model) -> List[str]:
    """Names of the nodes between the last weighted op and each output: a YOLO's decode
    (anchor offsets, strides, the concatenation of pixel boxes with 0..1 scores). They
    stay float: one 8-bit scale over boxes up to the input size and scores below 1 rounds
    every score to zero (a 15-minute YOLO11n went from mAP@0.5:0.95 31.49 to 0.00 that way,
    with or without its 16 most sensitive convolutions kept float). None in a graph
    without weighted ops."""
    if not any(node.op_type in WEIGHTED_OPS for node in model.graph.node):
        return []
    producers = {output: node for node in model.graph.node for output in node.output}
    tail, seen, pending = [], set(), [output.name for output in model.graph.output]
    while pending:
        node = producers.get(pending.pop())
        if node is None or id(node) in seen or node.op_type in WEIGHTED_OPS:
            continue
        seen.add(id(node))
        if node.name:
            tail.append(node.name)
        pending.extend(node.input)
    return tail


def _with_outputs(model, names: Sequence[str]) -> bytes:
    from onnx import helper

    copy = type(model)()
    copy.CopyFrom(model)
    present = {o.name for o in copy.graph.output}
    copy.graph.output.extend(helper.make_empty_tensor_value_info(n) for n in names if n not in present)
    return copy.SerializeToString()


def sensitivity(prepared: str, int8_path: str, blobs: Sequence[np.ndarray]) -> List[tuple]:
    """(node name, relative error it adds) for each weighted node, most sensitive first:
    the relative error of its output against the fp32 file's, less that of the (already
    quantized) input it reads in the int8 file; one pass of both files over `blobs` with
    the tensors exposed."""
    import onnx
    import onnxruntime

    fp32, int8 = onnx.load(prepared), onnx.load(int8_path)
    int8_nodes = {node.name: node for node in int8.graph.node}
    pairs = {}  # node name -> ((fp32 input, int8 input), (fp32 output, int8 output))
    for node in fp32.graph.node:
        twin = int8_nodes.get(node.name)
        if node.op_type in WEIGHTED_OPS and node.name and twin is not None:
            pairs[node.name] = ((node.input[0], twin.input[0]), (node.output[0], twin.output[0]))
    inputs = {fp32.graph.input[0].name}

    def run(model, names):
        session = onnxruntime.InferenceSession(_with_outputs(model, names), providers=["CPUExecutionProvider"])
        feed = session.get_inputs()[0].name
        wanted = [n for n in dict.fromkeys(names) if n not in inputs]
        return [dict(zip(wanted, session.run(wanted, {feed: blob})), **{feed: blob}) for blob in blobs]

    reference = run(fp32, [t[0] for pair in pairs.values() for t in pair])
    quantized = run(int8, [t[1] for pair in pairs.values() for t in pair])

    def error(fp32_name: str, int8_name: str) -> float:
        a = [np.asarray(r[fp32_name], np.float64) for r in reference]
        b = [np.asarray(q[int8_name], np.float64) for q in quantized]
        signal = sum(float(np.square(x).sum()) for x in a)
        noise = sum(float(np.square(x - y).sum()) for x, y in zip(a, b))
        return (noise / signal) ** 0.5 if signal > 0 else 0.0

    ranking = [(name, error(*output) - error(*input_)) for name, (input_, output) in pairs.items()]
    return sorted(ranking, key=lambda item: -item[1])


def weight_initializers(model) -> Dict[str, List[str]]:
    """Per weighted node of a QDQ file: the initializers of its quantized weight and bias
    (values, scales, zero points; a bias's scale follows its weight's)."""
    producers = {output: node for node in model.graph.node for output in node.output}
    constants = {tensor.name for tensor in model.graph.initializer}
    found: Dict[str, List[str]] = {}
    for node in model.graph.node:
        if node.op_type not in WEIGHTED_OPS or not node.name:
            continue
        names = []
        for name in node.input[1:]:
            source = producers.get(name)
            if source is not None and source.op_type == "DequantizeLinear":
                names += [n for n in source.input if n in constants]
        if names:
            found[node.name] = names
    return found


def widen(narrow: str, wide: str, nodes: Sequence[str], out: str) -> None:
    """`narrow` (7-bit weights) with the weights and biases of `nodes` taken from `wide`
    (8-bit), both quantized from the same prepared file and calibration: their activation
    ranges, node and tensor names are the same, only the weighted nodes' initializers differ."""
    import onnx

    model, donor = onnx.load(narrow), onnx.load(wide)
    per_node = weight_initializers(model)
    missing = [node for node in nodes if node not in per_node]
    if missing:
        raise ValueError(f"no quantized weights for node(s) {', '.join(missing)}")
    taken = {name for node in nodes for name in per_node[node]}
    replacements = {tensor.name: tensor for tensor in donor.graph.initializer if tensor.name in taken}
    for tensor in model.graph.initializer:
        if tensor.name in replacements:
            tensor.CopyFrom(replacements[tensor.name])
    onnx.save(model, out)


def prepare(source: str, prepared: str) -> None:
    from onnxruntime.quantization.shape_inference import quant_pre_process

    from edgecnn.core.descriptors import quiet

    with quiet():
        quant_pre_process(source, prepared)


def quantize_file(prepared: str, out_path: str, card: ModelCard, images: Sequence[np.ndarray],
                  per_channel: bool, float_nodes: Sequence[str], weight_bits: int = WEIGHT_BITS) -> None:
    from onnxruntime.quantization import (CalibrationDataReader, CalibrationMethod, QuantFormat, QuantType,
                                          quantize_static)

    from converters.to_onnx import ImageReader, calibration_chunk
    from edgecnn.core.descriptors import quiet
    from edgecnn.runtime.backends import open_backend

    CalibrationDataReader.register(ImageReader)
    input_name = open_backend(prepared).input_name
    with quiet():
        quantize_static(prepared, out_path, ImageReader(images, card, input_name), quant_format=QuantFormat.QDQ,
                        per_channel=per_channel, reduce_range=weight_bits == 7,
                        weight_type=QuantType.QInt8, activation_type=QuantType.QUInt8,
                        nodes_to_exclude=list(float_nodes), calibrate_method=CalibrationMethod.Percentile,
                        extra_options={"CalibStridedMinMax": calibration_chunk(len(images))})


def parity(card: ModelCard, fp32_model, int8_model, images: Sequence[np.ndarray]) -> Dict[str, Any]:
    """The task's agreement of the two files on held-out images, through the runtime."""
    fit = get_task(card.task).preprocessing(card)
    reference, converted = [], []
    for image in images:
        blob = preprocess(image, card, fit)
        reference.append(fp32_model.backend.infer(blob))
        converted.append(int8_model.backend.infer(blob))
    stack = lambda rows: [np.concatenate([r[k] for r in rows]) for k in range(len(rows[0]))]  # noqa: E731
    task = get_task(card.task)
    return {"kind": task.agreement_kind, "images": len(images),
            "agreement": task.agreement(card, stack(reference), stack(converted), [i.shape[:2] for i in images])}


def quantize_onnx_file(source: str, out: str, options, log=print) -> Dict[str, Any]:
    """A third-party (or edgecnn) .onnx -> a measured int8 QDQ .onnx, or GateRefused with
    nothing written."""
    from converters.card_embed import embed_onnx
    from edgecnn.compress.gate import compare, enforce
    from edgecnn.core.atomic import write_bytes_atomic
    from edgecnn.core.files import file_hash
    from edgecnn.runtime.model import load
    from edgecnn.training.evaluate import file_predictor

    import onnx

    if not str(out).endswith(".onnx"):
        raise UserError(f"--out must end in .onnx for an ONNX source, got {out}")
    if not options.data:
        raise UserError("a model file needs --data: the held-out dataset the int8 file is measured on")
    if options.qat or options.float_layers or options.distill or options.teacher or options.distill_weight is not None:
        raise UserError("--qat (with its --distill, --distill-weight and --teacher) and --float-layers are for "
                        "edgecnn checkpoints; a model file takes --mixed")
    weight_bits = options.weight_bits or WEIGHT_BITS
    fp32_model = load(source, card=options.card_options, backend=GATE_BACKEND)
    if fp32_model.backend.format != "onnx":
        raise UserError(f"{source}: not an ONNX file")
    card = fp32_model.card
    if card.precision == "int8":
        raise UserError(f"{source} is already int8")
    training = get_task(card.task).training()
    fit = get_task(card.task).preprocessing(card)
    calibration = load_images(options.calib or options.data, card, options.calib_images, options.seed)
    reference = training_images(card, options.data, "val", 256, options.seed + 1)
    check = check_calibration(preprocess_batch(calibration, card, fit), preprocess_batch(reference, card, fit))
    for warning in check.warnings:
        log(f"warning: {warning}")
    fp32 = training.evaluate(file_predictor(fp32_model), card, options.data, "val", plot="")
    float_nodes: List[str] = []
    ranking: List[tuple] = []
    with tempfile.TemporaryDirectory(prefix=".quantize-", dir=os.path.dirname(os.path.abspath(out))) as staging:
        staged, prepared = os.path.join(staging, os.path.basename(out)), os.path.join(staging, "prepared.onnx")
        prepare(source, prepared)
        tail = decode_tail(onnx.load(prepared))

        def measure(what: str):
            proto = onnx.load(staged)
            embed_onnx(proto, card.replace(precision="int8"))  # read back exactly as the source is
            onnx.save(proto, staged)
            model = load(staged, backend=GATE_BACKEND)
            measured = training.evaluate(file_predictor(model), card, options.data, "val", plot="")
            gate = compare(card.task, fp32, measured, options.max_drop)
            log(f"int8 ({what}): {gate.describe()}")
            return model, measured, gate

        def attempt(float_nodes: List[str]):
            quantize_file(prepared, staged, card, calibration, options.per_channel, tail + float_nodes, weight_bits)
            return measure(f"{len(float_nodes)} most sensitive node(s) float" if float_nodes else "all nodes")

        int8_model, int8, gate = attempt([])
        eight_bit_nodes: List[str] = []
        if not gate.passed and options.mixed:
            narrow = os.path.join(staging, "narrow.onnx")
            shutil.copy(staged, narrow)
            probe = [preprocess(image, card, fit) for image in reference[:8]]
            ranking = sensitivity(prepared, narrow, probe)
            log("most sensitive nodes (relative error each adds): "
                + ", ".join(f"{name} {value:+.4f}" for name, value in ranking[:5]))
            wide = os.path.join(staging, "wide.onnx")
            if weight_bits < WEIGHT_BITS:
                quantize_file(prepared, wide, card, calibration, options.per_channel, tail, WEIGHT_BITS)
            for keep in (1, 2, 4, 8, 16):
                if keep > len(ranking) // 2:
                    break
                chosen = [name for name, _ in ranking[:keep]]
                if weight_bits < WEIGHT_BITS:
                    eight_bit_nodes = chosen
                    widen(narrow, wide, chosen, staged)
                    int8_model, int8, gate = measure(f"{keep} most sensitive node(s) with {WEIGHT_BITS}-bit weights")
                else:
                    float_nodes = chosen
                    int8_model, int8, gate = attempt(chosen)
                if gate.passed:
                    break
        metric = gate.metric
        summary = {"source": str(source), "out": str(out), "gate": gate.to_dict(), "fp32": fp32, "int8": int8,
                   "calibration_images": check.images, "warnings": check.warnings, "float_nodes": float_nodes,
                   "sensitivity": ranking[:10], "float_tail": tail, "weight_bits": weight_bits,
                   "eight_bit_nodes": eight_bit_nodes}
        summary["parity"] = parity(card, fp32_model, int8_model, reference[:PARITY_IMAGES])
        log(f"parity: {summary['parity']['kind']} {100 * summary['parity']['agreement']:.1f}% on "
            f"{summary['parity']['images']} held-out images")
        enforce(gate, options.force, what=str(out))
        if summary["parity"]["agreement"] < MIN_PARITY_AGREEMENT and not options.force:
            raise GateRefused(f"{out} not written: the int8 file agrees with the fp32 one on "
                              f"{100 * summary['parity']['agreement']:.1f}% of its answers on held-out images "
                              f"(at least {100 * MIN_PARITY_AGREEMENT:.0f}% needed); pass --force to write it anyway")
        int8_card = card.replace(precision="int8", source_hash=file_hash(source), metrics={
            metric: int8[metric], f"fp32_{metric}": fp32[metric], "drop_points": gate.drop, "split": "val",
            "dataset": options.data, "images": int8.get("images"), "max_drop_points": options.max_drop})
        proto = onnx.load(staged)
        embed_onnx(proto, int8_card)  # the source's own metadata (names, imgsz...) stays beside the card
        write_bytes_atomic(out, proto.SerializeToString())
        write_bytes_atomic(f"{out}.parity.json", json.dumps(summary, indent=1, default=float).encode())
    return summary

