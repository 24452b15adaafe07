"""PyTorch -> TFLite through litert-torch (no TensorFlow needed).

The model is made channel-last at its input (`to_channel_last_io`), so the file takes
NHWC and carries no TRANSPOSE. fp32 converts the float model; int8 converts the PT2E
graph from edgecnn.compress.quantize (strict export, so residual ADDs are int8 too) into an
integer model with int8 input and int8 outputs (an output computed by layers kept
float stays float32), whose scales go into the card.
"""
from __future__ import annotations

import os
import tempfile

import numpy as np
import torch

from converters.card_embed import embed_tflite
from converters.errors import conversion_error
from edgecnn.core.descriptors import quiet
from edgecnn.core.atomic import write_bytes_atomic
from edgecnn.core.card import ModelCard


def tensor_quantization(path: str) -> dict:
    """Input and output (scale, zero point) of a converted file, for the card."""
    from ai_edge_litert.interpreter import Interpreter

    interpreter = Interpreter(model_path=path)
    entry = lambda d: {"scale": float(d["quantization"][0]), "zero_point": int(d["quantization"][1]),
                       "dtype": np.dtype(d["dtype"]).name, "name": d["name"]}
    return {"input": entry(interpreter.get_input_details()[0]),
            "outputs": [entry(d) for d in interpreter.get_output_details()]}


def convert(model: torch.nn.Module, card: ModelCard, out_path: str, precision: str = "fp32",
            quantized=None) -> ModelCard:
    """fp32: `model`; int8: `quantized` (an edgecnn.compress.quantize.QuantizedModel)."""
    with quiet():
        import litert_torch

    card = card.replace(layout="nhwc", precision=precision)
    height, width = card.input_size
    sample = torch.zeros(1, height, width, card.channels)
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "model.tflite")
        try:
            with quiet():
                if precision == "int8":
                    from litert_torch.quantize.quant_config import QuantConfig

                    edge = litert_torch.convert(quantized.module, (sample,),
                                                quant_config=QuantConfig(pt2e_quantizer=quantized.quantizer))
                else:
                    from edgecnn.compress.quantize.ptq import channel_last

                    edge = litert_torch.convert(channel_last(model), (sample,))
                edge.export(path)
        except Exception as exc:  # litert-torch raises many types
            source = model if model is not None else quantized.module
            nchw = torch.zeros(1, card.channels, height, width)
            raise conversion_error("TFLite", exc, source, nchw if model is not None else sample) from None
        if precision == "int8":
            card = card.replace(quantization={**quantized.card.quantization, **tensor_quantization(path)})
        with open(path, "rb") as handle:
            data = handle.read()
    write_bytes_atomic(out_path, embed_tflite(data, card))
    return card
