"""The int8 program format: a torch.export .pt2 holding the quantized graph, with the
model card and what rebuilds the quantizer as extra files."""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Dict, Tuple, Union

import numpy as np
import torch

from edgecnn.core.atomic import atomic_path
from edgecnn.core.card import ModelCard
from edgecnn.core.errors import UserError
from edgecnn.compress.quantize.ptq import QuantizedModel


CARD_FILE = "edgecnn_card"


QUANTIZER_FILE = "edgecnn_quantizer"  # per-channel / float layers / QAT: what rebuilds the quantizer


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
    from edgecnn.core.descriptors import quiet

    with quiet():
        import torchao.quantization.pt2e  # noqa: F401


def read_program(path: Union[str, Path]) -> Tuple[Any, Dict[str, str]]:
    """A torch.export program's module (switchable to eval, as the converters expect) and
    edgecnn's extra files (empty strings when absent: not an edgecnn int8 program)."""
    from edgecnn.core.descriptors import quiet

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
