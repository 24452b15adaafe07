"""UDP: one datagram per record (the record's JSON), to HOST:PORT. Nothing to install,
nothing to connect: the simplest way into a robot's control loop on the same machine
or LAN. A datagram that cannot go (too large, no route) is counted as dropped."""
from __future__ import annotations

import socket

from edgecnn.core.errors import UserError
from edgecnn.runtime.publishers import Address, Publisher, PublisherType, PublishOptions

MAX_DATAGRAM = 65507  # UDP payload over IPv4


class UdpPublisher(Publisher):
    def __init__(self, address: Address, options: PublishOptions) -> None:
        if address.port is None or address.port == 0:
            raise UserError(f"--publish {address.text}: give the port (udp://HOST:PORT)")
        try:
            family, kind, proto, _, target = socket.getaddrinfo(address.host, address.port, type=socket.SOCK_DGRAM)[0]
        except socket.gaierror as exc:
            raise UserError(f"--publish {address.text}: unknown host ({exc.strerror})") from None
        self.target, self.sent = target, 0
        self.socket = socket.socket(family, kind, proto)

    def send(self, record: dict, payload: bytes) -> None:
        if len(payload) > MAX_DATAGRAM:
            self.count_drop()
            return
        try:
            self.socket.sendto(payload, self.target)
            self.sent += 1
        except OSError:  # no route, refused by the last datagram's ICMP answer, ...
            self.count_drop()

    def close(self, completed: bool = True) -> None:
        self.socket.close()


PUBLISHER = PublisherType(name="udp", schemes=("udp",), opener=UdpPublisher)
