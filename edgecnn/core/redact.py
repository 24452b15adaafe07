"""One redaction for every URI a person or a log may see: a camera's, a broker's, a
stream's. Passwords are written raw by people (`rtsp://admin:p@ss/w:rd@cam`), so the
user information is taken to run to the LAST '@' before the next blank or quote, and
everything after the user name is replaced: a path that holds an '@' loses a little
to the mask, a password never shows."""
from __future__ import annotations

import re

MASK = "***"
_URI = re.compile(r"([A-Za-z][A-Za-z0-9+.\-]*://)([^\s'\"<>]*)")


def _mask(match: "re.Match") -> str:
    scheme, rest = match.group(1), match.group(2)
    userinfo, at, after = rest.rpartition("@")
    if not at:
        return match.group(0)
    user, colon, _ = userinfo.partition(":")
    if not colon:  # no password: the user name alone is kept
        return match.group(0)
    return f"{scheme}{user}:{MASK}@{after}"


def redact(text: str) -> str:
    """`text` with the password of every URI in it replaced by ***."""
    return _URI.sub(_mask, str(text))


def has_credentials(uri: str) -> bool:
    """Whether a URI carries user information: an '@' after `scheme://` whose user part
    holds a ':' (a password) or no '/' (a user name before the host)."""
    match = _URI.match(str(uri).strip())
    if not match or "@" not in match.group(2):
        return False
    userinfo = match.group(2).rpartition("@")[0]
    return ":" in userinfo or "/" not in userinfo
