"""Publishers: result records (edgecnn.runtime.schema) sent to another process or
machine, named by URI. A transport is one module here exposing `PUBLISHER`, a
`PublisherType` with the URI schemes it serves:

    mqtt://[USER:PASS@]HOST[:PORT]/PREFIX    MQTT (paho-mqtt); mqtts:// for TLS
    zmq+tcp://HOST:PORT                      a ZeroMQ PUB socket bound there (pyzmq)
    udp://HOST:PORT                          one datagram per record

`edgecnn run --publish URI` (several allowed) and, for a robot program's own loop,
`edgecnn.publish(URI)` use the same transports and the same records. Each is a sink
behind its own queue (edgecnn.runtime.sinks.QueuedSink): a stalled broker never holds
up inference, and what overflows is counted. A URI's password is never printed: every
message names the URI through edgecnn.core.redact. Passwords are taken as typed: the
user information runs to the LAST '@', so a password may hold '@', '/' and ':' raw
(%XX escapes are decoded; a literal '%' before two hex digits is written %25). A
transport without authentication (ZeroMQ, UDP) refuses a URI with credentials rather
than ignore them.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable, Dict, List, Optional
from urllib.parse import SplitResult, unquote, urlsplit

from edgecnn.core.errors import UserError, one_line
from edgecnn.core.redact import has_credentials, redact_uri
from edgecnn.core.registry import Registry
from edgecnn.runtime.schema import encode, records
from edgecnn.runtime.delivery import QueuedSink, Sink

_PUBLISHERS = Registry("edgecnn.runtime.publishers", "PUBLISHER", "publisher")


@dataclass
class PublishOptions:
    qos: int = 0  # MQTT quality of service
    retry: bool = False  # an unreachable destination at start: keep trying instead of failing
    log: Callable[[str], None] = print  # progress lines; the runner passes its own
    discovery: Optional[str] = None  # announce counts and states to this home automation ("homeassistant")
    # {camera ("" for a one-camera run): {"zones": {name: labels}, "lines": {name: labels}}}
    places: Dict[str, Dict[str, Any]] = field(default_factory=dict)


@dataclass
class PublisherType:
    name: str
    schemes: tuple
    opener: Callable[["Address", PublishOptions], "Publisher"]
    modules: tuple = ()  # what it imports: named in the error when missing
    extra: str = "publish"
    credentials: bool = False  # whether it authenticates (USER:PASS@ in its URIs)


@dataclass
class Address:
    """A parsed publish URI. `text` is the URI with any password replaced."""

    scheme: str
    host: str
    port: Optional[int]
    path: str
    username: Optional[str]
    password: Optional[str]
    text: str


class Publisher(Sink):
    """Sends each frame's records. Subclasses define send(record) and close(); `dropped`
    counts records the transport itself could not deliver (the queue in front counts
    its own)."""

    name = "publish"
    uses_image = False  # records only: the queue in front keeps no frames
    dropped = 0
    stats: Any = None  # StreamStats, where the run's summary counts drops

    def count_drop(self, records: int = 1) -> None:
        self.dropped += records
        if self.stats is not None:
            self.stats.count_sink_drop(self.name, records)

    record_options: Dict[str, Any] = {}  # what the tasks' records carry (SinkContext.record_options)

    def write(self, image, result) -> None:
        for record in records(result, **self.record_options):
            self.send(record, encode(record))

    def records_in(self, result) -> int:
        return sum(1 for _ in records(result, **self.record_options))

    def send(self, record: dict, payload: bytes) -> None:
        raise NotImplementedError

    def link_state(self) -> Optional[Dict[str, Any]]:
        """{"connected": bool, "reconnects": int} for a transport that keeps a connection
        (MQTT), for /metrics; None for one that has none to report (UDP, a ZeroMQ PUB)."""
        return None


def parse_uri(uri: str) -> Address:
    """SCHEME://[USER[:PASSWORD]@]HOST[:PORT][/PATH]; the user information runs to the
    last '@' (edgecnn.core.redact's rule), so raw '@', '/' and ':' stay in a password."""
    uri = str(uri)
    text = one_line(redact_uri(uri))
    scheme, separator, rest = uri.partition("://")
    if not separator or not scheme:
        raise UserError(f"--publish {text}: malformed URI; use SCHEME://HOST:PORT, schemes: "
                        f"{', '.join(publish_schemes())}")
    username = password = None
    if has_credentials(uri):
        userinfo, _, rest = rest.rpartition("@")
        user, colon, secret = userinfo.partition(":")
        username, password = unquote(user), unquote(secret) if colon else None
    try:
        parts: SplitResult = urlsplit(f"{scheme}://{rest}")
        port = parts.port
    except ValueError:
        raise UserError(f"--publish {text}: malformed URI (the port must be a number 0-65535, an IPv6 host "
                        f"is written in brackets)") from None
    if not parts.scheme:
        raise UserError(f"--publish {text}: malformed URI; use SCHEME://HOST:PORT, schemes: "
                        f"{', '.join(publish_schemes())}")
    if not parts.hostname:
        raise UserError(f"--publish {text}: the URI names no host")
    return Address(parts.scheme.lower(), parts.hostname, port, parts.path, username, password, text)


def publish_schemes() -> List[str]:
    return [scheme for kind in _PUBLISHERS.all() for scheme in kind.schemes]


def publisher_for(scheme: str) -> PublisherType:
    for kind in _PUBLISHERS.all():
        if scheme in kind.schemes:
            return kind
    raise UserError(f"--publish: unknown scheme {scheme!r}; known: {', '.join(publish_schemes())}")


def check_uri(uri: str) -> PublisherType:
    """The transport of a URI; UserError for a malformed URI, an unknown scheme or a
    missing extra (before anything opens)."""
    import importlib

    address = parse_uri(uri)
    kind = publisher_for(address.scheme)
    if not kind.credentials and address.username is not None:
        raise UserError(f"--publish {address.text}: {address.scheme}:// cannot use credentials ({kind.name} has no "
                        f"authentication); remove USER:PASS@ from the URI")
    for module in kind.modules:
        try:
            importlib.import_module(module)
        except ImportError:
            raise UserError(f"--publish {address.text}: {kind.name} needs {module.split('.')[0]}: "
                            f"pip install 'edgecnn[{kind.extra}]'") from None
    return kind


def open_publisher(uri: str, options: Optional[PublishOptions] = None) -> Publisher:
    kind = check_uri(uri)
    address = parse_uri(uri)
    publisher = kind.opener(address, options or PublishOptions())
    publisher.name = address.text
    return publisher


class Publishing:
    """A publisher behind its own queue and thread, for a robot program's own loop:

        out = edgecnn.publish("mqtt://127.0.0.1/robot")
        for frame, result in model.stream("camera:0", track=True):
            out.publish(result)       # never waits for the network
        out.close()
    """

    def __init__(self, uri: str, qos: int = 0, retry: bool = False, queue_size: int = 64,
                 log: Optional[Callable[[str], None]] = None, stats: Any = None) -> None:
        from edgecnn.runtime.sources import stderr_log

        log = log or stderr_log  # stdout stays the robot program's
        self.publisher = open_publisher(uri, PublishOptions(qos=qos, retry=retry, log=log))
        self.publisher.stats = stats
        self.queue = QueuedSink(self.publisher, self.publisher.name, queue_size, stats)

    def publish(self, result) -> None:
        self.queue.write(None, result)

    @property
    def dropped(self) -> int:
        """Records lost so far: overflowed the queue or undeliverable."""
        return self.queue.dropped + self.publisher.dropped

    def close(self) -> None:
        self.queue.close()

    def __enter__(self) -> "Publishing":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def qos_value(value: Any) -> int:
    if str(value) not in ("0", "1", "2"):
        raise UserError(f"--publish-qos takes 0, 1 or 2, got {value!r}")
    return int(value)


def environment_credentials(address: Address, environ: Dict[str, str]) -> None:
    """A user name and password from EDGECNN_PUBLISH_USERNAME / _PASSWORD where the URI
    gives none (keeps them out of process listings and shell history)."""
    if address.username is None and environ.get("EDGECNN_PUBLISH_USERNAME"):
        address.username = environ["EDGECNN_PUBLISH_USERNAME"]
    if address.password is None and environ.get("EDGECNN_PUBLISH_PASSWORD"):
        address.password = environ["EDGECNN_PUBLISH_PASSWORD"]
