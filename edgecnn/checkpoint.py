"""Reading and writing edgecnn checkpoints: weights plus the model card, in one file.

Checkpoints hold only tensors and plain Python values, so they load with
`torch.load(weights_only=True)`: opening a checkpoint never runs code from it.
"""
from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any, Dict, Tuple, Union

import torch
from torch import nn

from edgecnn.atomic import atomic_path
from edgecnn.card import ModelCard
from edgecnn.errors import UserError

FORMAT = "edgecnn.checkpoint"
VERSION = 1


def file_hash(path: Union[str, Path]) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return "sha256:" + digest.hexdigest()


def save_checkpoint(path: Union[str, Path], card: ModelCard, model: nn.Module, **extra: Any) -> None:
    """Write atomically: a kill at any moment leaves the previous file intact."""
    state = model.module.state_dict() if hasattr(model, "module") else model.state_dict()
    payload = {"format": FORMAT, "version": VERSION, "card": card.to_dict(), "model": state, **extra}
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
    from edgecnn.models import build_model

    arch = card.architecture
    if "name" not in arch:
        raise UserError("model card has no architecture name")
    if card.task == "detect":
        from edgecnn.models.detector import MobileNetDetector

        return MobileNetDetector(card.num_classes, arch.get("backbone", "mobilenet_v2"),
                                 float(arch.get("width", 0.5)), card.channels)
    return build_model(arch["name"], num_classes=card.num_classes, width=float(arch.get("width", 1.0)),
                       in_channels=card.channels)


def load_model(path: Union[str, Path]) -> Tuple[nn.Module, ModelCard, Dict[str, Any]]:
    """Checkpoint -> (model in eval mode, card, raw payload)."""
    payload = load_checkpoint(path)
    card = ModelCard.from_dict(payload["card"])
    model = build_from_card(card)
    try:
        model.load_state_dict(payload["model"])
    except (RuntimeError, KeyError) as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise UserError(f"weights in {path} do not match its architecture: {first[:160]}") from None
    return model.eval(), card, payload


def strip_checkpoint(source: Union[str, Path], destination: Union[str, Path]) -> None:
    """Keep only what a deployed model needs (card and weights), dropping training state."""
    payload = load_checkpoint(source)
    kept = {key: payload[key] for key in ("format", "version", "card", "model", "epoch")}
    kept["source_hash"] = file_hash(source)
    with atomic_path(destination) as tmp:
        torch.save(kept, tmp)
