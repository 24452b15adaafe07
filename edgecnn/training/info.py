"""`edgecnn info`: what a model file is, what it expects and how big it is."""
from __future__ import annotations

from typing import Any, Dict


def describe(path: str) -> Dict[str, Any]:
    from edgecnn.training.checkpoint import load_model
    from edgecnn.models.complexity import complexity

    model, card, payload = load_model(path)
    height, width = card.input_size
    counts = complexity(model, (1, card.channels, height, width))
    return {"path": str(path), "format": "checkpoint", "card": card.to_dict(),
            "parameters": counts["parameters"], "macs": counts["macs"],
            "epoch": payload.get("epoch")}


def format_description(info: Dict[str, Any]) -> str:
    card = info["card"]
    arch = card.get("architecture", {})
    metrics = card.get("metrics", {})
    lines = [
        f"{info['path']}  ({info['format']})",
        f"  task          {card['task']}  ({len(card['labels'])} classes: {', '.join(card['labels'][:12])}"
        f"{' ...' if len(card['labels']) > 12 else ''})",
        f"  architecture  {arch.get('name', '?')}"
        f"{'  backbone ' + arch['backbone'] if 'backbone' in arch else ''}  width {arch.get('width', '?')}",
        f"  input         {card['input_size'][0]}x{card['input_size'][1]} {card['layout']} {card['color']}"
        f"  mean {card['mean']} std {card['std']}",
        f"  precision     {card['precision']}",
        f"  parameters    {info['parameters']:,} ({info['parameters'] / 1e6:.2f}M)",
        f"  MACs          {info['macs']:,} ({info['macs'] / 1e6:.1f}M)",
    ]
    if metrics:
        from edgecnn.core.task import format_metric

        shown = ", ".join(format_metric(k, v) for k, v in metrics.items())
        lines.append(f"  measured      {shown}")
    return "\n".join(lines)
