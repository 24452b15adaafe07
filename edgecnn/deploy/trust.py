"""Trust carries to the device: a model goes there only if its card records a passing
gate (edgecnn.runtime.bundled.passes_gate: the fp32 reference, or a compressed file
whose measured drop is within its budget) and its weights match the card's digest
(edgecnn.runtime.integrity, what `edgecnn info FILE` shows). Checked before anything is
copied.

Exit codes follow the project's: a file whose weights were changed after conversion is
bad input (2, as `edgecnn run` refuses it); a model that did not pass, or never went
through, an accuracy gate is a gate refusal (3, as convert and quantize refuse one), so
that a pipeline can tell "wrong file" from "not good enough". --allow-ungated lets a
model without a card or a gate through (a third party's, run with card flags); a
failed gate and a digest mismatch never pass.
"""
from __future__ import annotations

from typing import List

from edgecnn.core.errors import GateRefused, UserError


def has_gate(card) -> bool:
    """Whether the card records a gate at all (passed or not)."""
    return card is not None and (card.precision == "fp32" or (card.metrics.get("drop_points") is not None and
                                                              card.metrics.get("max_drop_points") is not None))


def gate_summary(card) -> str:
    if card is None:
        return "no model card"
    if card.precision == "fp32":
        return "fp32 reference"
    drop, budget = card.metrics.get("drop_points"), card.metrics.get("max_drop_points")
    if drop is None or budget is None:
        return f"{card.precision}, no gate recorded"
    return f"{card.precision}, drop {float(drop):.2f} {'within' if float(drop) <= float(budget) else 'over'} " \
           f"{float(budget):.2f} points"


def check_models(paths: List[str], allow_ungated: bool = False) -> List[str]:
    """One line per model saying why it is trusted; raises for the first that is not."""
    from edgecnn.runtime.bundled import passes_gate
    from edgecnn.runtime.integrity import MISMATCH, check_weights
    from edgecnn.runtime.model_file import read_card

    lines = []
    for path in paths:
        try:
            card = read_card(path)
        except UserError as exc:
            raise UserError(f"{path}: {exc}") from None
        weights = check_weights(path, card)
        if weights.status == MISMATCH:
            raise UserError(f"{path}: its weights do not match the digest in its model card (changed or corrupted "
                            f"after conversion; edgecnn info shows it): not deployed")
        summary = gate_summary(card)
        if not passes_gate(card):
            ungated = not has_gate(card)
            if not (ungated and allow_ungated):
                raise GateRefused(f"{path}: {summary}: deploy takes models whose card records a passing gate"
                                  + (" (--allow-ungated for a model without one)" if ungated else ""))
        lines.append(f"{path}: {summary}, weights {weights.status}")
    return lines
