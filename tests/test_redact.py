"""Secrets never printed: the one redaction (edgecnn/core/redact.py) and where URIs are
parsed and shown without a broker or a camera: publish URIs whose passwords hold raw
'@', '/', ':' and '%', transports that cannot authenticate, the card, the CLI's errors.
(Against a real broker: test_publish_secrets.py.)"""
import pytest

from conftest import assert_one_line_error, run_cli_batch
from edgecnn.core.card import ModelCard
from edgecnn.core.errors import UserError
from edgecnn.core.redact import has_credentials, redact, redact_uri, redact_values
from edgecnn.runtime.publishers import check_uri, parse_uri

pytestmark = pytest.mark.runtime  # torch-free: also run where only edgecnn[runtime] is installed

PASSWORDS = ["p@ss/w:rd%zz@x", "s3cret", "a:b:c", "//@@", "100%", "end@"]


@pytest.mark.parametrize("password", PASSWORDS)
def test_a_publish_uri_keeps_a_raw_password_whole_and_never_shows_it(password):
    address = parse_uri(f"mqtt://robot:{password}@127.0.0.1:1883/cams/front")
    assert (address.username, address.password) == ("robot", password)
    assert (address.host, address.port, address.path) == ("127.0.0.1", 1883, "/cams/front")
    assert address.text == "mqtt://robot:***@127.0.0.1:1883/cams/front"
    assert redact(f"publish {address.text}: lost") == f"publish {address.text}: lost"
    assert has_credentials(f"mqtt://robot:{password}@host/x")


def test_percent_escapes_are_decoded_and_a_lone_percent_is_kept():
    assert parse_uri("mqtt://robot:p%40ss%2F@host/x").password == "p@ss/"
    assert parse_uri("mqtt://robot:50%off@host/x").password == "50%off"
    assert parse_uri("mqtt://[::1]:1884/x").host == "::1"


def test_uris_without_credentials_are_left_alone():
    for uri in ("mqtt://127.0.0.1/robot", "udp://127.0.0.1:9", "mqtt://host/pre/fix@2x", "rtsp://cam/stream"):
        assert redact(uri) == redact_uri(uri) == uri
        assert parse_uri(uri).username is None
    assert not has_credentials("mqtt://host/pre/fix@2x")  # an '@' in the path, after a '/'
    assert has_credentials("mqtt://robot@host/x")  # a user name alone is credentials too
    assert parse_uri("mqtt://robot@host/x").username == "robot"


def test_redaction_in_text_and_in_a_whole_uri():
    line = "cannot open rtsp://admin:p@ss/w:rd@cam.lan:554/s1 and mqtt://u:pw@broker/x"
    assert redact(line) == "cannot open rtsp://admin:***@cam.lan:554/s1 and mqtt://u:***@broker/x"
    assert redact_uri("mqtt://u:two words@host/x") == "mqtt://u:***@host/x"  # a blank inside the password
    assert redact_values({"name": "https://u:pw@data.lan/set", "n": [1, "udp://a:b@c"]}) == \
        {"name": "https://u:***@data.lan/set", "n": [1, "udp://a:***@c"]}


def test_a_card_never_keeps_a_password_from_a_dataset_url():
    card = ModelCard(task="classify", labels=["a"], input_size=(8, 8),
                     dataset={"name": "https://user:pw@data.lan/digits"}, metrics={"dataset": "s3://k:pw@b/x"})
    assert "pw" not in card.to_json() and "https://user:***@data.lan/digits" in card.to_json()


@pytest.mark.parametrize("uri", ["udp://robot:p@ss@127.0.0.1:9", "udp://robot@127.0.0.1:9",
                                 "zmq+tcp://robot:p@ss/w@127.0.0.1:5555"])
def test_transports_without_authentication_refuse_credentials(uri):
    with pytest.raises(UserError, match="cannot use credentials") as raised:
        check_uri(uri)
    assert "p@ss" not in str(raised.value)
    assert str(raised.value).startswith(f"--publish {uri.split(':')[0]}://robot")


def test_cli_errors_show_no_password():
    base = ("run", "--source", "demo", "--max-frames", "1")
    results = run_cli_batch((*base, "--publish", "udp://robot:p@ss/w:rd%zz@127.0.0.1:9"),
                            (*base, "--publish", "zmq+tcp://robot:p@ss/w:rd%zz@127.0.0.1:5555"),
                            (*base, "--publish", "mqtt://robot:p@ss/w:rd%zz@127.0.0.1:99999/x"),
                            (*base, "--publish", "amqp://robot:p@ss/w:rd%zz@127.0.0.1/x"))
    for result, expected in zip(results, ("cannot use credentials", "cannot use credentials", "malformed URI",
                                          "unknown scheme")):
        assert_one_line_error(result, contains=expected)
        for fragment in ("p@ss", "w:rd", "%zz", "ss/w"):
            assert fragment not in result.stderr + result.stdout


def test_window_and_web_view_titles_never_show_a_password(monkeypatch):
    from edgecnn.runtime.sinks import SinkContext, get_sink, window
    from edgecnn.runtime.sinks.webview import WebView
    from edgecnn.runtime.stats import StreamStats

    titles = []
    monkeypatch.setattr(window, "WindowSink", titles.append)
    get_sink("window").opener({}, SinkContext(source_name="rtsp://admin:p@ss/w@cam.lan/s1"))
    assert titles == ["edgecnn: rtsp://admin:***@cam.lan/s1"]
    view = WebView("127.0.0.1:0", StreamStats(), title="gst: rtspsrc location=rtsp://admin:pw@cam.lan/s1 ! appsink")
    try:
        assert view.title == "gst: rtspsrc location=rtsp://admin:***@cam.lan/s1 ! appsink"
    finally:
        view.close()
