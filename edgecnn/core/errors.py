"""Errors that the command line turns into one line and an exit code."""


class UserError(Exception):
    """Bad input or usage that the user can fix: one line, exit code 2."""

    exit_code = 2


class GateRefused(Exception):
    """A model missed its accuracy or parity budget and was not written: exit code 3."""

    exit_code = 3
