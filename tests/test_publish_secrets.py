"""Publish passwords against the real broker (Debian's mosquitto on loopback with a
password file): a password holding '@', '/', ':' and '%' authenticates as typed and
appears nowhere (stdout, stderr, records, statistics); a wrong one with --publish-retry
is reported, not retried in silence; an unreadable CA file is one line. Needs
edgecnn[publish] (paho-mqtt), so not marked runtime."""
import json
import os
import subprocess
import time
from pathlib import Path

import pytest

from conftest import assert_one_line_error, run_cli, run_cli_batch
from test_publish import MOSQUITTO, Broker, free_port, needs_broker

PASSWORD = "p@ss/w:rd%zz@x"
WRONG = "wr0ng@p/a:s%zz"
# what a half-done redaction would leave: each piece between the reserved characters
FRAGMENTS = ("p@ss", "ss/w", "w:rd", "rd%zz", "%zz@x", "wr0ng", "a:s%")


def assert_nowhere(*texts):
    for text in texts:
        for secret in (PASSWORD, WRONG, *FRAGMENTS):
            assert secret not in text, f"{secret!r} shown in: {text[:500]}"


@pytest.fixture
def secured(tmp_path):
    passwords = tmp_path / "passwd"
    subprocess.run([str(Path(MOSQUITTO).parent.parent / "bin" / "mosquitto_passwd"), "-c", "-b", passwords,
                    "robot", PASSWORD], check=True, capture_output=True)
    broker = Broker(tmp_path, f"allow_anonymous false\npassword_file {passwords}\n")
    broker.start()
    yield broker
    broker.stop()


@needs_broker
def test_a_password_with_reserved_characters_authenticates_and_is_never_shown(secured, tmp_path):
    uri = f"mqtt://robot:{PASSWORD}@127.0.0.1:{secured.port}/secure"
    records = tmp_path / "records.jsonl"
    result = run_cli("run", "--source", "demo?fps=60", "--max-frames", "10", "--json", records, "--publish", uri,
                     "--serve", "127.0.0.1:0")
    assert result.returncode == 0, result.stderr
    shown = f"mqtt://robot:***@127.0.0.1:{secured.port}/secure"
    assert f"publish {shown}: 10 records sent, 0 undeliverable" in result.stderr  # it authenticated
    assert f"publishing to {shown}" in result.stderr
    assert_nowhere(result.stdout, result.stderr, records.read_text())


@needs_broker
@pytest.mark.slow(20)
def test_a_wrong_password_with_retry_is_reported_at_each_backoff_and_never_shown(secured):
    from edgecnn.runtime.runner import RunOptions, run

    lines = []
    uri = f"mqtt://robot:{WRONG}@127.0.0.1:{secured.port}/secure"
    started = time.monotonic()
    summary = run(RunOptions(source="demo?fps=20", max_frames=80, sinks={"publish": [uri], "publish_retry": True,
                                                                         "json": os.devnull}), log=lines.append)
    elapsed = time.monotonic() - started
    shown = f"mqtt://robot:***@127.0.0.1:{secured.port}/secure"
    refused = [line for line in lines if "refused the connection" in line]
    assert refused and all(line == f"publish {shown}: the broker refused the connection: authentication failed "
                           f"(Not authorized); retrying" for line in refused), lines
    # paho tries again after 1, 2, 4, 8 s: one line per attempt, not one per record
    assert 2 <= len(refused) <= 2 + int(elapsed).bit_length(), (len(refused), elapsed)
    assert summary["sink_dropped"][shown] == 80  # the statistics name the destination, redacted
    assert_nowhere("\n".join(lines), json.dumps(summary))


@needs_broker
def test_a_wrong_password_without_retry_is_one_line(secured):
    result = run_cli("run", "--source", "demo", "--max-frames", "1", "--publish",
                     f"mqtt://robot:{WRONG}@127.0.0.1:{secured.port}/secure")
    assert_one_line_error(result, contains="the broker refused the connection: authentication failed")
    assert_nowhere(result.stdout, result.stderr)


def test_an_unreadable_or_unusable_ca_file_is_one_line(tmp_path):
    garbage = tmp_path / "ca.pem"
    garbage.write_text("not a certificate\n")
    uri = f"mqtts://robot:{PASSWORD}@127.0.0.1:{free_port()}/x"
    base = ("run", "--source", "demo", "--max-frames", "1", "--publish", uri)
    missing, unusable = (run_cli_batch(base, env={"EDGECNN_PUBLISH_CA": str(path)})[0]
                         for path in (tmp_path / "missing.pem", garbage))
    assert_one_line_error(missing, contains=f"EDGECNN_PUBLISH_CA={tmp_path / 'missing.pem'}: cannot read the CA file")
    assert_one_line_error(unusable, contains=f"EDGECNN_PUBLISH_CA={garbage}: not a usable CA file")
    assert_nowhere(missing.stderr, unusable.stderr)
