"""The parity report: a converted file against the PyTorch model it came from, on
held-out real images, plus what the file is made of (op histogram, TRANSPOSE ops,
float tensors left in an int8 model)."""
from __future__ import annotations

from collections import Counter
from dataclasses import asdict, dataclass, field
from typing import Callable, Dict, List, Optional, Sequence

import numpy as np

from edgecnn.core.card import ModelCard
from edgecnn.core.preprocess import preprocess
from edgecnn.core.task import get_task
from edgecnn.training.evaluate import as_list

FP32_MAX_RELATIVE_ERROR = 1e-4
_COMPUTE_OPS = {"Conv", "ConvTranspose", "MatMul", "Gemm", "Add", "Mul", "Sub", "Div", "Relu", "Clip",
                "Sigmoid", "HardSwish", "HardSigmoid", "GlobalAveragePool", "AveragePool", "MaxPool",
                "Concat", "Resize", "Softmax"}


@dataclass
class ParityReport:
    path: str
    format: str
    precision: str
    images: int
    max_abs_error: float
    relative_error: float  # max |converted - torch| / max |torch|, over every output
    agreement: float  # top-1 agreement (classifiers) or matched-box agreement (detectors)
    agreement_kind: str
    ops: Dict[str, int]
    transposes: int
    float_tensors: int
    metrics: Dict[str, float] = field(default_factory=dict)
    gate: Optional[dict] = None
    problems: List[str] = field(default_factory=list)
    latency_ms: Optional[float] = None

    @property
    def passed(self) -> bool:
        return not self.problems

    def to_dict(self) -> dict:
        return {**asdict(self), "passed": self.passed}

    def describe(self) -> str:
        lines = [f"{self.path} ({self.format} {self.precision}): {'PASS' if self.passed else 'FAIL'}",
                 f"  {self.images} held-out images: max abs error {self.max_abs_error:.3g}, relative "
                 f"{self.relative_error:.3g}, {self.agreement_kind} {100 * self.agreement:.2f}%"]
        if self.gate:
            lines.append(f"  gate: {self.gate['metric']} {100 * self.gate['before']:.2f} -> "
                         f"{100 * self.gate['after']:.2f} (drop {self.gate['drop']:+.2f}, budget {self.gate['max_drop']:.2f})")
        top = ", ".join(f"{op} {n}" for op, n in sorted(self.ops.items(), key=lambda kv: -kv[1]))
        lines.append(f"  ops: {top}")
        lines.append(f"  TRANSPOSE ops: {self.transposes}, float tensors: {self.float_tensors}")
        if self.latency_ms is not None:
            lines.append(f"  median latency: {self.latency_ms:.2f} ms")
        lines.extend(f"  problem: {p}" for p in self.problems)
        return "\n".join(lines)


def tflite_structure(path: str):
    """(op histogram, TRANSPOSE count, float32 tensors) of a .tflite file."""
    from ai_edge_litert.interpreter import Interpreter

    interpreter = Interpreter(model_path=path, experimental_preserve_all_tensors=False)
    interpreter.allocate_tensors()
    ops = Counter(op["op_name"] for op in interpreter._get_ops_details())
    floats = sum(1 for t in interpreter.get_tensor_details() if np.dtype(t["dtype"]) == np.float32)
    return dict(ops), ops.get("TRANSPOSE", 0), floats


def onnx_structure(path: str):
    """(op histogram, Transpose count, compute ops fed by a float tensor that no
    DequantizeLinear produced: the float islands of a QDQ model)."""
    import onnx

    graph = onnx.load(path).graph
    ops = Counter(node.op_type for node in graph.node)
    dequantized = {out for node in graph.node if node.op_type == "DequantizeLinear" for out in node.output}
    constants = {init.name for init in graph.initializer}
    islands = sum(1 for node in graph.node if node.op_type in _COMPUTE_OPS and any(
        name and name not in dequantized and name not in constants for name in node.input))
    return dict(ops), ops.get("Transpose", 0), islands


def one_at_a_time(predict_one: Callable) -> Callable[[np.ndarray], List[np.ndarray]]:
    """A batch predictor over a batch-1 model (one image at a time)."""
    def predict(batch: np.ndarray):
        rows = [as_list(predict_one(batch[i:i + 1])) for i in range(len(batch))]
        outputs = [np.concatenate([row[k] for row in rows]) for k in range(len(rows[0]))]
        return outputs if len(outputs) > 1 else outputs[0]
    return predict


def backend_predictor(backend) -> Callable[[np.ndarray], List[np.ndarray]]:
    return one_at_a_time(backend.infer)


def compare(path: str, fmt: str, card: ModelCard, torch_card: ModelCard, reference_predict: Callable,
            converted_predict: Callable, images: Sequence[np.ndarray]) -> ParityReport:
    """Run both models on `images` (each through its own card's preprocessing)."""
    fit = get_task(card.task).preprocessing(card)
    ref_in = np.concatenate([preprocess(image, torch_card, fit) for image in images])
    conv_in = np.concatenate([preprocess(image, card, fit) for image in images])
    reference = as_list(reference_predict(ref_in))
    converted = as_list(converted_predict(conv_in))
    max_abs = max(float(np.abs(c - r).max()) for c, r in zip(converted, reference))
    scale = max(float(np.abs(r).max()) for r in reference)
    task = get_task(card.task)
    agreement = task.agreement(card, reference, converted, [image.shape[:2] for image in images])
    kind = task.agreement_kind
    ops, transposes, floats = tflite_structure(path) if fmt == "tflite" else onnx_structure(path)
    report = ParityReport(path, fmt, card.precision, len(images), max_abs, max_abs / max(scale, 1e-12),
                          agreement, kind, ops, transposes, floats)
    if card.precision == "fp32" and report.relative_error > FP32_MAX_RELATIVE_ERROR:
        report.problems.append(f"relative error {report.relative_error:.3g} exceeds {FP32_MAX_RELATIVE_ERROR:g} "
                               "for an fp32 model")
    return report
