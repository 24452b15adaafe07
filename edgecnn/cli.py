"""The `edgecnn` command: the parser is built from the command registry
(edgecnn/commands/, one module a command), and every error a user can cause is one
line with its exit code.

Exit codes: 0 done, 2 bad input or usage (one line), 3 refused by a gate,
130 interrupted.
"""
from __future__ import annotations

import os
import sys
from typing import Dict, List, Optional, Tuple

from edgecnn.commands import ArgumentParser, Command, commands
from edgecnn.core.errors import GateRefused, UserError, one_line
from edgecnn.core.redact import redact


def _parser_for(command: Command, parent) -> ArgumentParser:
    parser = parent.add_parser(command.path[-1], help=command.help, description=command.description or command.help)
    command.add(parser)
    return parser


def build_parser() -> Tuple[ArgumentParser, Dict[Tuple[str, ...], ArgumentParser]]:
    """The top-level parser, and a parser of its own for each subcommand (`bench report`)."""
    from edgecnn import __version__

    parser = ArgumentParser(prog="edgecnn", description="Train, compress, convert and run CNNs on edge devices.")
    parser.add_argument("--version", action="version", version=f"edgecnn {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=ArgumentParser)
    nested: Dict[Tuple[str, ...], ArgumentParser] = {}
    for command in sorted(commands(), key=lambda c: len(c.path)):
        if len(command.path) == 1:
            _parser_for(command, sub)
        else:
            group = ArgumentParser(prog=f"edgecnn {command.path[0]}").add_subparsers(parser_class=ArgumentParser)
            nested[command.path] = _parser_for(command, group)
            nested[command.path].prog = f"edgecnn {command.name}"
    return parser, nested


def _command_of(path: Tuple[str, ...]) -> Command:
    return next(command for command in commands() if command.path == path)


def _missing_extra(command: Command, exc: ImportError) -> UserError:
    """An install without the extra a command's library side needs: one line naming it."""
    missing = (exc.name or str(exc)).split(".")[0]
    extra = command.needs or "all"
    return UserError(f"`edgecnn {command.name}` needs {missing}, which is not installed: "
                     f"pip install 'edgecnn[{extra}]'")


def main(argv: Optional[List[str]] = None) -> None:
    argv = list(sys.argv[1:] if argv is None else argv)
    command = None
    try:
        parser, nested = build_parser()
        path = tuple(argv[:2])
        if path in nested:  # a subcommand (`bench report`) has a parser of its own
            command, args = _command_of(path), nested[path].parse_args(argv[2:])
        else:
            args = parser.parse_args(argv)
            if not args.command:
                parser.print_help()
                sys.exit(2)
            command = _command_of((args.command,))
        code = command.run(args)
    except UserError as exc:  # a message may quote a URI the user gave: never its password
        print(f"edgecnn: error: {one_line(redact(str(exc)))}", file=sys.stderr)
        code = exc.exit_code
    except GateRefused as exc:
        print(f"edgecnn: refused: {one_line(redact(str(exc)))}", file=sys.stderr)
        code = exc.exit_code
    except ModuleNotFoundError as exc:
        if command is None or exc.name is None or exc.name.split(".")[0] == "edgecnn":
            raise
        print(f"edgecnn: error: {_missing_extra(command, exc)}", file=sys.stderr)
        code = 2
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        code = 130
    except BrokenPipeError:  # output piped into `head` and the like: stop quietly
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        code = 0
    sys.exit(code)
