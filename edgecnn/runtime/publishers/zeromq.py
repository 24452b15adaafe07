"""ZeroMQ (pyzmq): a PUB socket bound to HOST:PORT ("*" for every interface) that
subscribers connect to. Each record is a two-part message: the topic ("frames" or
"events", so a subscriber can filter) and the record's JSON. A PUB socket never waits
for a slow subscriber: beyond its high-water mark ZeroMQ drops, and so does this."""
from __future__ import annotations

from edgecnn.core.errors import UserError
from edgecnn.runtime.publishers import Address, Publisher, PublisherType, PublishOptions

HIGH_WATER_MARK = 1000  # messages queued per subscriber


class ZmqPublisher(Publisher):
    def __init__(self, address: Address, options: PublishOptions) -> None:
        import zmq

        if address.port is None:
            raise UserError(f"--publish {address.text}: give the port to bind (zmq+tcp://HOST:PORT)")
        self.zmq, self.text, self.sent = zmq, address.text, 0
        self.context = zmq.Context.instance()
        self.socket = self.context.socket(zmq.PUB)
        self.socket.setsockopt(zmq.SNDHWM, HIGH_WATER_MARK)
        self.socket.setsockopt(zmq.LINGER, 1000)
        host = "*" if address.host in ("*", "0.0.0.0") else address.host
        try:
            self.socket.bind(f"tcp://{host}:{address.port}")
        except zmq.ZMQError as exc:
            self.socket.close(0)
            raise UserError(f"--publish {address.text}: cannot bind ({exc.strerror})") from None
        self.endpoint = self.socket.getsockopt(zmq.LAST_ENDPOINT).decode()

    def send(self, record: dict, payload: bytes) -> None:
        topic = b"frames" if record["type"] == "frame" else b"events"
        try:
            self.socket.send_multipart([topic, payload], flags=self.zmq.NOBLOCK)
            self.sent += 1
        except self.zmq.Again:
            self.count_drop()

    def close(self, completed: bool = True) -> None:
        self.socket.close()


PUBLISHER = PublisherType(name="zmq", schemes=("zmq+tcp",), opener=ZmqPublisher, modules=("zmq",))
