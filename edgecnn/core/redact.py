"""One redaction for every URI a person or a log may see: a camera's, a broker's, a
stream's. Passwords are written raw by people (`rtsp://admin:p@ss/w:rd@cam`), so the
user information is taken to run to the LAST '@' before the next blank or quote, and
everything after the user name is replaced: a path that holds an '@' loses a little
to the mask, a password never shows.

`redact(text)` is for any text (a message, a log line); `redact_uri(uri)` for a string
that is one URI as given (an option's value), where a blank may be part of the
password; `redact_values` for the strings inside a record (a model card)."""
from __future__ import annotations

import re
from typing import Any

MASK = "***"
_URI = re.compile(r"([A-Za-z][A-Za-z0-9+.\-]*://)([^\s'\"<>]*)")
_SCHEME = re.compile(r"\s*([A-Za-z][A-Za-z0-9+.\-]*://)")


def _masked(scheme: str, rest: str) -> str:
    userinfo, at, after = rest.rpartition("@")
    if not at:
        return scheme + rest
    user, colon, _ = userinfo.partition(":")
    if not colon:  # no password: the user name alone is kept
        return scheme + rest
    return f"{scheme}{user}:{MASK}@{after}"


def redact(text: str) -> str:
    """`text` with the password of every URI in it replaced by ***."""
    return _URI.sub(lambda match: _masked(match.group(1), match.group(2)), str(text))


def redact_uri(uri: str) -> str:
    """One URI with its password replaced by ***, the user information running to the
    last '@' of the whole string (blanks and quotes included)."""
    text = str(uri)
    match = _SCHEME.match(text)
    if not match:
        return redact(text)
    return text[:match.start(1)] + _masked(match.group(1), text[match.end():])


def redact_values(value: Any) -> Any:
    """A copy of a JSON-like value (dicts, lists, strings) with every string redacted."""
    if isinstance(value, str):
        return redact(value)
    if isinstance(value, dict):
        return {key: redact_values(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return type(value)(redact_values(item) for item in value)
    return value


def has_credentials(uri: str) -> bool:
    """Whether a URI carries user information: an '@' after `scheme://` whose user part
    holds a ':' (a password) or no '/' (a user name before the host)."""
    text = str(uri)
    match = _SCHEME.match(text)
    if not match:
        return False
    userinfo, at, _ = text[match.end():].rpartition("@")
    return bool(at) and (":" in userinfo or "/" not in userinfo)
