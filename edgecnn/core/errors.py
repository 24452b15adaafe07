"""Errors that the command line turns into one line and an exit code."""


class UserError(Exception):
    """Bad input or usage that the user can fix: one line, exit code 2."""

    exit_code = 2


class GateRefused(Exception):
    """A model missed its accuracy or parity budget and was not written: exit code 3."""

    exit_code = 3


def one_line(text: str) -> str:
    """`text` with line breaks and other control characters escaped (a newline as \\n):
    a message that quotes what a user typed stays one line."""
    return "".join(c if c.isprintable() or c == " " else repr(c)[1:-1] for c in str(text))
