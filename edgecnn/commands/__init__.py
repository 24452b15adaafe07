"""The command seam: each `edgecnn` command is one module here exposing `COMMAND`, a
`Command`: its name (a path such as ("bench", "report") for a subcommand), how it adds
its arguments, and what it runs. edgecnn.cli builds the parser from this registry, and
the commands take their choices from the other registries (tasks, heads, backends,
sources, sinks, trackers, publishers), never from copies.

A command module imports the library lazily inside `run`, so that building the parser
never imports torch: a runtime-only install runs `run`, `info FILE` and `bench`.
"""
from __future__ import annotations

import argparse
from dataclasses import dataclass
from typing import Callable, List, Tuple

from edgecnn.core.errors import UserError
from edgecnn.core.registry import Registry

_COMMANDS = Registry("edgecnn.commands", "COMMAND", "command")


class ArgumentParser(argparse.ArgumentParser):
    """argparse that reports usage errors as one line with exit code 2."""

    def error(self, message: str) -> None:  # type: ignore[override]
        raise UserError(f"{self.prog}: {message}")


@dataclass
class Command:
    """One command. `add(parser)` adds its arguments to the parser made for it (help and
    description given here); `run(args)` returns the exit code. `needs` names the extra
    its library side needs, for the one-line error of an install without it."""

    path: Tuple[str, ...]
    help: str
    add: Callable[[argparse.ArgumentParser], None]
    run: Callable[[argparse.Namespace], int]
    description: str = ""
    needs: str = ""

    @property
    def name(self) -> str:
        return " ".join(self.path)


def commands() -> List[Command]:
    return _COMMANDS.all()


def positive_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
    if not value > 0:
        raise argparse.ArgumentTypeError(f"must be > 0, got {text}")
    return value


def stderr_or_print(json_output: bool) -> Callable[[str], None]:
    """Progress lines: to stderr when stdout carries JSON, else printed."""
    import sys

    return (lambda message: print(message, file=sys.stderr, flush=True)) if json_output else print


def add_card_flags(parser: argparse.ArgumentParser, *, color: bool = False, runtime: bool = True) -> None:
    """The flags that describe a model without a card (edgecnn.runtime.card_options.CardOptions)."""
    from edgecnn.core.task import task_names
    from edgecnn.core.card import COLORS, LAYOUTS
    from edgecnn.runtime.card_options import PRESETS

    card = parser.add_argument_group("models without a card")
    card.add_argument("--task", default=None, choices=task_names())
    card.add_argument("--input-size", default=None, metavar="N|HxW")
    card.add_argument("--mean", default=None, metavar="M[,M,M]", help="pixel units 0..255, input = (pixel - mean) / std")
    card.add_argument("--std", default=None, metavar="S[,S,S]")
    card.add_argument("--labels", default=None, metavar="FILE|a,b,c")
    if color:
        card.add_argument("--color", default=None, choices=list(COLORS))
    if runtime:
        from edgecnn.runtime.heads import head_names

        card.add_argument("--layout", default=None, choices=list(LAYOUTS))
        card.add_argument("--bgr", action="store_true", help="the model takes BGR (default RGB)")
        card.add_argument("--preset", default=None, choices=list(PRESETS), help="the usual mean/std of a family: "
                          "imagenet (torchvision, timm), unit (pixel / 255), symmetric (-1..1)")
        card.add_argument("--head", default=None, metavar="FORMAT[:ARGS]",
                          help=f"detector output format: {', '.join(head_names())} (edgecnn.runtime.heads; "
                          "ltrb-sigmoid takes its strides, e.g. ltrb-sigmoid:8,16,32)")
        card.add_argument("--mask-threshold", type=float, default=None, metavar="P",
                          help="a one-channel segmenter's probability threshold (default 0.5)")


def card_options(args):
    """The CardOptions the card flags given (add_card_flags) describe."""
    from edgecnn.runtime.card_options import CardOptions

    color = getattr(args, "color", None) or ("bgr" if getattr(args, "bgr", False) else None)
    return CardOptions(task=args.task, input_size=args.input_size, layout=getattr(args, "layout", None),
                       mean=args.mean, std=args.std, labels=args.labels, color=color,
                       head=getattr(args, "head", None), preset=getattr(args, "preset", None),
                       mask_threshold=getattr(args, "mask_threshold", None))
