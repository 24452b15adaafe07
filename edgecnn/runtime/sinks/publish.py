"""`--publish URI` (several allowed): result records to MQTT, ZeroMQ or UDP
(edgecnn.runtime.publishers). Each URI is its own sink, so each gets its own queue and
thread: a broker that stalls holds back neither inference nor the other destinations."""
from __future__ import annotations

from edgecnn.core.errors import UserError
from edgecnn.runtime.publishers import PublishOptions, check_uri, open_publisher, qos_value
from edgecnn.runtime.sinks import SinkContext, SinkType


def _open(values: dict, context: SinkContext) -> list:
    options = PublishOptions(qos=qos_value(values.get("publish_qos") or 0), retry=bool(values.get("publish_retry")),
                             log=context.log, discovery=values.get("publish_discovery"), places=dict(context.places))
    publishers = []
    try:
        for uri in values["publish"]:
            publisher = open_publisher(uri, options)
            publisher.stats = context.stats
            publisher.record_options = dict(context.record_options)
            publishers.append(publisher)
            context.log(f"publishing to {publisher.name}")
    except BaseException:
        for publisher in publishers:
            publisher.close(completed=False)
        raise
    return publishers


def _check(values: dict) -> None:
    if not values.get("publish"):
        if values.get("publish_qos") is not None or values.get("publish_retry") or values.get("publish_discovery"):
            raise UserError("--publish-qos, --publish-retry and --publish-discovery are for --publish")
        return
    qos_value(values.get("publish_qos") or 0)
    seen = set()
    for uri in values["publish"]:
        check_uri(uri)
        if uri in seen:
            raise UserError("--publish names the same destination twice")
        seen.add(uri)


SINK = SinkType(
    name="publish",
    options={"publish": dict(action="append", default=None, metavar="URI",
                             help="send result records to mqtt://[USER:PASS@]HOST[:PORT]/PREFIX (mqtts:// for TLS), "
                             "zmq+tcp://HOST:PORT (a PUB socket bound there) or udp://HOST:PORT; may be repeated. "
                             "Credentials may come from EDGECNN_PUBLISH_USERNAME / EDGECNN_PUBLISH_PASSWORD"),
             "publish_qos": dict(default=None, metavar="0|1|2", help="MQTT quality of service (default 0)"),
             "publish_retry": dict(action="store_true", help="a broker unreachable at start: keep trying "
                                   "instead of failing"),
             "publish_discovery": dict(default=None, choices=["homeassistant"], help="MQTT: announce each zone's "
                                       "and line's counts and each camera's state as Home Assistant entities "
                                       "(MQTT discovery), so they appear on its dashboard")},
    opener=_open,
    checker=_check,
    queue_size=64,
    scope="run",
)
