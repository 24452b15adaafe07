"""Reading and writing edgecnn checkpoints: weights plus the model card, in one file.

Checkpoints hold only tensors and plain Python values, so they load with
`torch.load(weights_only=True)`: opening a checkpoint never runs code from it.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any, Dict, Optional, Tuple, Union

import torch
from torch import nn

from edgecnn.core.atomic import atomic_path
from edgecnn.core.card import ModelCard
from edgecnn.core.errors import UserError
from edgecnn.core.files import file_hash
from edgecnn.core.task import get_task

FORMAT = "edgecnn.checkpoint"
VERSION = 1


def save_checkpoint(path: Union[str, Path], card: ModelCard, model: nn.Module, **extra: Any) -> None:
    """Write atomically: a kill at any moment leaves the previous file intact."""
    model = model.module if hasattr(model, "module") else model
    payload = {"format": FORMAT, "version": VERSION, "card": card.to_dict(), "model": model.state_dict(), **extra}
    if card.architecture.get("pruned"):
        payload["layer_shapes"] = layer_shapes(model)
    with atomic_path(path) as tmp:
        torch.save(payload, tmp)


def load_checkpoint(path: Union[str, Path]) -> Dict[str, Any]:
    file = Path(path)
    if not file.is_file():
        raise UserError(f"checkpoint not found: {path}")
    try:
        payload = torch.load(file, map_location="cpu", weights_only=True)
    except Exception as exc:  # torch raises many types for truncated or foreign files
        reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise UserError(f"cannot read checkpoint {path}: not a readable PyTorch file ({reason[:120]})") from None
    if not isinstance(payload, dict) or payload.get("format") != FORMAT:
        raise UserError(f"{path} is not an edgecnn checkpoint (no model card inside)")
    if int(payload.get("version", 0)) > VERSION:
        raise UserError(f"{path} was written by a newer edgecnn (checkpoint version {payload['version']})")
    return payload


def build_from_card(card: ModelCard) -> nn.Module:
    if "name" not in card.architecture:
        raise UserError("model card has no architecture name")
    return get_task(card.task).training().build_model(card)


_SHAPE_ATTRIBUTES = {nn.Conv2d: ("in_channels", "out_channels", "groups"), nn.BatchNorm2d: ("num_features",),
                     nn.Linear: ("in_features", "out_features")}


def layer_shapes(model: nn.Module) -> Dict[str, Dict[str, int]]:
    """Channel counts of every layer: with the weights, all a pruned network needs to be
    rebuilt from its unpruned architecture (plain ints, so weights_only loading works)."""
    return {name: {attr: int(getattr(module, attr)) for attr in attrs}
            for name, module in model.named_modules()
            for kind, attrs in _SHAPE_ATTRIBUTES.items() if type(module) is kind}


def restore_layer_shapes(model: nn.Module, shapes: Dict[str, Dict[str, int]], state: Dict[str, Any]) -> None:
    """Shrink an unpruned model's layers to the saved channel counts and tensors."""
    modules = dict(model.named_modules())
    for name, attrs in shapes.items():
        for attr, value in attrs.items():
            setattr(modules[name], attr, value)
    for key, tensor in state.items():
        owner, _, leaf = key.rpartition(".")
        module = modules.get(owner)
        if module is not None and leaf in module._parameters:
            module._parameters[leaf] = nn.Parameter(tensor.clone())
        elif module is not None and leaf in module._buffers:
            module._buffers[leaf] = tensor.clone()


def load_model(path: Union[str, Path]) -> Tuple[nn.Module, ModelCard, Dict[str, Any]]:
    """Checkpoint -> (model in eval mode, card, raw payload)."""
    payload = load_checkpoint(path)
    card = ModelCard.from_dict(payload["card"])
    model = build_from_card(card)
    try:
        if card.architecture.get("pruned"):
            restore_layer_shapes(model, payload.get("layer_shapes", {}), payload["model"])
        model.load_state_dict(payload["model"])
    except (RuntimeError, KeyError) as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise UserError(f"weights in {path} do not match its architecture: {first[:160]}") from None
    return model.eval(), card, payload


def strip_checkpoint(source: Union[str, Path], destination: Union[str, Path]) -> None:
    """Keep only what a deployed model needs (card and weights), dropping training state."""
    payload = load_checkpoint(source)
    kept = {key: payload[key] for key in ("format", "version", "card", "model", "epoch", "layer_shapes")
            if key in payload}
    kept["source_hash"] = file_hash(source)
    with atomic_path(destination) as tmp:
        torch.save(kept, tmp)


def load_for_compression(source: Union[str, Path], data: Optional[str], action: str
                         ) -> Tuple[nn.Module, ModelCard, str]:
    """The fp32 model that prune or quantize starts from, and the dataset its accuracy
    is measured on (--data, else the one its card names)."""
    if str(source).endswith(".pt2"):
        raise UserError(f"{source} is already quantized; {action} the fp32 checkpoint")
    model, card, _ = load_model(source)
    data_spec = data or card.dataset.get("name")
    if not data_spec:
        raise UserError("the model card names no dataset: pass --data")
    return model, card, data_spec
