"""MQTT (paho-mqtt), in Frigate's spirit. For a one-camera run CAMERA/ is left out of
every topic below.

    PREFIX/CAMERA/frames               frame records
    PREFIX/CAMERA/events               track events, zone enter/exit/dwell, line crossings
    PREFIX/CAMERA/ZONE/LABEL           objects of LABEL in ZONE now (retained, sent on change)
    PREFIX/CAMERA/LINE/in/LABEL        crossings of LINE since the run began, each way (retained)
    PREFIX/CAMERA/LINE/out/LABEL
    PREFIX/CAMERA/state                the camera's state (retained; runs of several cameras)
    PREFIX/available                   "online" (retained) once connected, "offline" at a clean end
                                       and, as the broker's last will, when the process dies

A dashboard or a robot's state machine reads the current counts and states on connect.
With discovery (`--publish-discovery homeassistant`) every count and state is announced
as a Home Assistant entity (retained config under homeassistant/sensor/...), so it
appears on a dashboard without hand-written YAML. A camera's state is sent when it
changes and again at every connection, so a consumer that subscribes late reads every
camera's state at once; read it together with PREFIX/available, which says whether the
process reporting it is still there. A lost broker is reconnected with
exponential backoff (1 s doubling to 8 s) by paho's network thread; meanwhile this
publisher waits and the records pile up in its sink queue, whose oldest are dropped and
counted. A broker that refuses the connection (a wrong password) is one line at start,
or with --publish-retry a warning at each refused attempt, so at most one per backoff.
mqtts:// uses TLS (the system's CAs, or the file in EDGECNN_PUBLISH_CA).
"""
from __future__ import annotations

import os
import ssl
import threading
import time
import uuid
from typing import Any, Dict, Optional

from edgecnn.core.errors import UserError
from edgecnn.runtime.publishers import Address, PublisherType, Publisher, PublishOptions, environment_credentials

CONNECT_TIMEOUT = 5.0  # seconds to wait for the broker's answer at start
GRACE = 2.0  # seconds a closing run still waits for a broker that is down
PAHO_QUEUE = 256  # messages paho holds for QoS 1/2 while unacknowledged
KEEPALIVE = 10
RECONNECT_MIN, RECONNECT_MAX = 1, 8  # seconds between attempts, doubling
AUTHENTICATION_REFUSED = (134, 135)  # CONNACK "Bad user name or password", "Not authorized"
DISCOVERY_PREFIX = "homeassistant"  # Home Assistant's default discovery prefix


def refusal_reason(reason) -> str:
    """What a CONNACK refusal means, in the words a person can act on."""
    if getattr(reason, "value", None) in AUTHENTICATION_REFUSED:
        return f"authentication failed ({reason})"
    return str(reason)


def tls_settings(client, environ, text: str) -> None:
    """TLS with the system's CAs or the file EDGECNN_PUBLISH_CA names; a file that cannot
    be read or holds no certificate is one line."""
    ca = environ.get("EDGECNN_PUBLISH_CA") or None
    if ca is not None:
        try:
            with open(ca, "rb"):
                pass
        except OSError as exc:
            raise UserError(f"EDGECNN_PUBLISH_CA={ca}: cannot read the CA file ({exc.strerror or exc})") from None
    try:
        client.tls_set(ca_certs=ca)
    except (ssl.SSLError, OSError, ValueError) as exc:
        reason = getattr(exc, "reason", None) or getattr(exc, "strerror", None) or type(exc).__name__
        where = f"EDGECNN_PUBLISH_CA={ca}: not a usable CA file" if ca else f"--publish {text}: cannot set up TLS"
        raise UserError(f"{where} ({reason})") from None


class MqttPublisher(Publisher):
    def __init__(self, address: Address, options: PublishOptions, environ=os.environ) -> None:
        import paho.mqtt.client as mqtt

        environment_credentials(address, environ)
        self.text, self.qos, self.log = address.text, options.qos, options.log
        self.prefix = address.path.strip("/") or "edgecnn"
        self.available = f"{self.prefix}/available"
        self.connected = threading.Event()
        self.answered = threading.Event()
        self.refusal = None
        self.retry = options.retry
        self._warned_at = None  # when a refusal was last reported
        self.reconnects = 0
        self.sent = 0
        self._states: Dict[str, str] = {}  # each camera's state, as last told (runs of several cameras)
        self._states_version = 0
        self._states_lock = threading.Lock()
        self._was_connected = False
        self._ending_since = None
        self.discovery, self.places = options.discovery, dict(options.places)
        self._retained: Dict[str, int] = {}  # count topics as last published (sent again only on change)
        self._labels_seen: Dict[tuple, set] = {}
        tls = address.scheme == "mqtts"
        client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=f"edgecnn-{uuid.uuid4().hex[:12]}")
        if address.username:
            client.username_pw_set(address.username, address.password)
        if tls:
            tls_settings(client, environ, self.text)
        client.will_set(self.available, "offline", qos=1, retain=True)
        client.reconnect_delay_set(min_delay=RECONNECT_MIN, max_delay=RECONNECT_MAX)
        client.max_queued_messages_set(PAHO_QUEUE)
        client.on_connect = self._on_connect
        client.on_disconnect = self._on_disconnect
        self.client = client
        port = address.port or (8883 if tls else 1883)
        try:
            client.connect(address.host, port, keepalive=KEEPALIVE)
        except (OSError, ssl.SSLError) as exc:
            reason = getattr(exc, "strerror", None) or exc.__class__.__name__
            if not options.retry:
                raise UserError(f"--publish {self.text}: cannot reach the broker ({reason}); "
                                f"--publish-retry keeps trying") from None
            self.log(f"publish {self.text}: broker unreachable ({reason}); retrying in the background")
            client.connect_async(address.host, port, keepalive=KEEPALIVE)
            client.loop_start()
            return
        client.loop_start()
        if not self.answered.wait(CONNECT_TIMEOUT) and not options.retry:
            self._stop()
            raise UserError(f"--publish {self.text}: the broker did not answer in {CONNECT_TIMEOUT:.0f} s")
        if self.refusal is not None and not options.retry:
            self._stop()
            raise UserError(f"--publish {self.text}: the broker refused the connection: {self.refusal}")

    def _on_connect(self, client, userdata, flags, reason, properties) -> None:
        if reason.is_failure:
            self.refusal = refusal_reason(reason)
            if self.retry:
                self._warn_refused()
            self.answered.set()
            return
        self.refusal = None
        client.publish(self.available, "online", qos=1, retain=True)
        if self._was_connected:
            self.reconnects += 1
            self.log(f"publish {self.text}: reconnected")
        self._was_connected = True
        if self.discovery == "homeassistant":
            self._announce()
        for topic, value in list(self._retained.items()):  # a broker that restarted lost its retained counts
            client.publish(topic, str(value), qos=1, retain=True)
        self.connected.set()
        self._publish_all_states()
        self.answered.set()

    def _warn_refused(self) -> None:
        """One line per refused attempt: paho tries again after its backoff (1 s doubling
        to 8 s), and a faster retry would still not print more than once a half second."""
        now = time.monotonic()
        if self._warned_at is not None and now - self._warned_at < RECONNECT_MIN / 2:
            return
        self._warned_at = now
        self.log(f"publish {self.text}: the broker refused the connection: {self.refusal}; retrying")

    def _on_disconnect(self, client, userdata, flags, reason, properties) -> None:
        if self.connected.is_set() and self._ending_since is None:
            self.log(f"publish {self.text}: connection lost ({reason}); reconnecting")
        self.connected.clear()

    def states_changed(self, states: Dict[str, str]) -> None:
        """Publish the cameras whose state changed (retained, QoS 1); while the broker is
        away, only remember them: the connection publishes them all. Never waits."""
        with self._states_lock:
            changed = {name: state for name, state in states.items() if self._states.get(name) != state}
            self._states.update(states)
            self._states_version += 1
            connected = self.connected.is_set()  # read after the update: a connection after it sends it
        if connected:
            for name, state in changed.items():
                self.client.publish(self.state_topic(name), state, qos=1, retain=True)

    def state_topic(self, camera: str) -> str:
        return f"{self.prefix}/{camera}/state"

    def _publish_all_states(self) -> None:
        """Every camera's state, at each connection (the broker may have restarted without
        its retained messages); again if one changed meanwhile, so the last sent is the
        newest. Our lock is never held while paho's is taken."""
        while True:
            with self._states_lock:
                version, states = self._states_version, dict(self._states)
            for name, state in states.items():
                self.client.publish(self.state_topic(name), state, qos=1, retain=True)
            with self._states_lock:
                if self._states_version == version:
                    return

    def link_state(self) -> Optional[Dict[str, Any]]:
        return {"connected": self.connected.is_set(), "reconnects": self.reconnects}

    def interrupt(self) -> None:
        self._ending_since = time.monotonic()

    def topic(self, camera: Optional[str], *parts: str) -> str:
        return "/".join([self.prefix, *([camera] if camera else []), *parts])

    def send(self, record: dict, payload: bytes) -> None:
        while not self.connected.wait(0.2):
            if self._ending_since is not None and time.monotonic() - self._ending_since > GRACE:
                self.count_drop()
                return
        camera = record.get("camera")
        if record["type"] == "counts":
            self._send_counts(camera, record)
            return
        topic = self.topic(camera, "frames" if record["type"] == "frame" else "events")
        if self.client.publish(topic, payload, qos=self.qos).rc == 0:
            self.sent += 1
        else:  # the connection went between the check and the call, or paho's own queue is full
            self.count_drop()

    def _send_counts(self, camera: Optional[str], record: dict) -> None:
        """Each count that changed on its own retained topic; a label no longer counted
        goes to 0 (a retained topic keeps its last value otherwise)."""
        values: Dict[str, int] = {}
        for zone, labels in record.get("zones", {}).items():
            for label in set(labels) | self._labels_seen.get((camera, zone), set()):
                values[self.topic(camera, zone, label)] = int(labels.get(label, 0))
            self._labels_seen.setdefault((camera, zone), set()).update(labels)
        for line, counts in record.get("lines", {}).items():
            for way in ("in", "out"):
                for label, count in counts[way].items():
                    values[self.topic(camera, line, way, label)] = int(count)
        delivered = True
        for topic, value in values.items():
            if self._retained.get(topic) == value:
                continue
            if self.client.publish(topic, str(value), qos=max(self.qos, 1), retain=True).rc == 0:
                self._retained[topic] = value
            else:
                delivered = False
        if delivered:
            self.sent += 1
        else:
            self.count_drop()

    def _announce(self) -> None:
        """Home Assistant MQTT discovery: a sensor per zone and label (objects inside), per
        line, way and label (crossings), and per camera (its state)."""
        import json

        device = {"identifiers": [f"edgecnn_{self.prefix}"], "name": f"edgecnn {self.prefix}",
                  "manufacturer": "edgecnn"}
        common = {"availability_topic": self.available, "payload_available": "online",
                  "payload_not_available": "offline", "device": device}
        entities = []
        for camera, places in self.places.items():
            for zone, labels in places.get("zones", {}).items():
                for label in labels:
                    entities.append((f"{camera} {zone} {label}".strip(), self.topic(camera, zone, label),
                                     {"state_class": "measurement", "unit_of_measurement": "objects"}))
            for line, labels in places.get("lines", {}).items():
                for way in ("in", "out"):
                    for label in labels:
                        entities.append((f"{camera} {line} {label} {way}".strip(),
                                         self.topic(camera, line, way, label),
                                         {"state_class": "total_increasing", "unit_of_measurement": "objects"}))
            if camera:
                entities.append((f"{camera} state", self.state_topic(camera),
                                 {"device_class": "enum",
                                  "options": ["starting", "live", "reconnecting", "ended", "failed"]}))
        for name, state_topic, extra in entities:
            unique = "edgecnn_" + "_".join(part for part in f"{self.prefix} {name}".replace("/", " ").split())
            config = {"name": name, "unique_id": unique, "object_id": unique, "state_topic": state_topic,
                      **common, **extra}
            self.client.publish(f"{DISCOVERY_PREFIX}/sensor/{unique}/config", json.dumps(config), qos=1,
                                retain=True)

    def close(self, completed: bool = True) -> None:
        if self.connected.is_set():
            try:
                self.client.publish(self.available, "offline", qos=1, retain=True).wait_for_publish(GRACE)
            except (RuntimeError, ValueError):  # the connection went meanwhile: the last will says it
                pass
        self._stop()
        self.log(f"publish {self.text}: {self.sent} records sent, {self.dropped} undeliverable"
                 + (f", {self.reconnects} reconnects" if self.reconnects else ""))

    def _stop(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


PUBLISHER = PublisherType(name="mqtt", schemes=("mqtt", "mqtts"), opener=MqttPublisher,
                          modules=("paho.mqtt.client",), credentials=True)
