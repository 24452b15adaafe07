"""`edgecnn bench --remote` against a private sshd on 127.0.0.1 (its own config, port,
host key and authorized key in a temporary directory, running as this user)."""
import getpass
import os
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
from conftest import assert_one_line_error, run_cli
from test_bench import write_onnx

from edgecnn.bench.measure import read_json_lines
from edgecnn.runtime.backends import backends_for

SSHD = shutil.which("sshd") or next((p for p in ("/usr/sbin/sshd", "/usr/local/sbin/sshd") if os.path.exists(p)),
                                    None)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def keygen(path: Path) -> None:
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(path)], check=True)


def client_config(directory: Path, port: int, name: str = "benchdevice") -> Path:
    config = directory / f"ssh_config_{port}"
    config.write_text(f"Host {name}\n  HostName 127.0.0.1\n  Port {port}\n  User {getpass.getuser()}\n"
                      f"  IdentityFile {directory / 'client_key'}\n  IdentitiesOnly yes\n"
                      f"  UserKnownHostsFile {directory / 'known_hosts'}\n  StrictHostKeyChecking yes\n"
                      "  LogLevel ERROR\n")
    return config


@pytest.fixture(scope="module")
def sshd(tmp_path_factory):
    """A running sshd on a free port; yields (ssh_config path, host alias)."""
    if SSHD is None or shutil.which("ssh") is None or shutil.which("ssh-keygen") is None:
        pytest.skip("OpenSSH server not installed (apt-get install -y openssh-server): --remote untested here")
    directory = tmp_path_factory.mktemp("sshd")
    keygen(directory / "host_key")
    keygen(directory / "client_key")
    (directory / "authorized_keys").write_text((directory / "client_key.pub").read_text())
    os.chmod(directory / "authorized_keys", 0o600)
    port = free_port()
    host_public = (directory / "host_key.pub").read_text().split()[:2]
    (directory / "known_hosts").write_text(f"[127.0.0.1]:{port} {' '.join(host_public)}\n")
    (directory / "sshd_config").write_text(
        f"Port {port}\nListenAddress 127.0.0.1\nHostKey {directory / 'host_key'}\n"
        f"AuthorizedKeysFile {directory / 'authorized_keys'}\nPidFile {directory / 'sshd.pid'}\n"
        "PubkeyAuthentication yes\nPasswordAuthentication no\nKbdInteractiveAuthentication no\n"
        "UsePAM no\nStrictModes no\nPermitRootLogin prohibit-password\n")
    if os.geteuid() == 0:
        os.makedirs("/run/sshd", mode=0o755, exist_ok=True)  # sshd's privilege-separation directory
    process = subprocess.Popen([SSHD, "-D", "-e", "-f", str(directory / "sshd_config")],
                               stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        if process.poll() is not None:
            pytest.skip(f"sshd would not start: {process.stderr.read().strip()[:200]}")
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            break
        except OSError:
            time.sleep(0.1)
    else:
        process.kill()
        pytest.skip("sshd did not listen within 10 s")
    yield client_config(directory, port), directory
    process.terminate()
    process.wait(timeout=10)


@pytest.fixture(scope="module")
def onnx_model(tmp_path_factory):
    return write_onnx(tmp_path_factory.mktemp("remote_model") / "remote-mnv2.onnx", width=0.25, size=64)


def remote_dirs():
    return set(Path("/tmp").glob("edgecnn-bench.*"))


@pytest.mark.slow  # about 4-10 s: in CI, left out of the inner loop
def test_remote_bench_copies_runs_and_brings_back_json(sshd, onnx_model, tmp_path):
    config, _ = sshd
    before = remote_dirs()
    out = tmp_path / "remote.jsonl"
    result = run_cli("bench", onnx_model, "--remote", "benchdevice", "--ssh-config", config, "--remote-python",
                     sys.executable, "--threads", "1", "--runs", "10", "--warmup", "1", "--device-name", "bench-dev",
                     "--json", out, check=True, timeout=300)
    records = read_json_lines([str(out)])
    assert [r["backend"] for r in records] == backends_for(str(onnx_model))  # the device is this machine
    record = records[0]
    assert record["status"] == "ok" and record["remote"] == "benchdevice"
    assert record["model_path"] == str(onnx_model)  # the local file, not the copy on the device
    assert record["device"]["name"] == "bench-dev" and record["latency_ms"]["p50"] > 0
    assert "via benchdevice" in result.stdout
    assert remote_dirs() == before  # the copy on the device was removed


def test_remote_without_edgecnn_there_is_one_line(sshd, onnx_model):
    config, _ = sshd
    result = run_cli("bench", onnx_model, "--remote", "benchdevice", "--ssh-config", config, "--remote-python",
                     "/nonexistent/python3", "--threads", "1", "--runs", "3", timeout=120)
    assert result.returncode == 2 and "--remote-python" in result.stderr.strip().splitlines()[-1]


def test_refused_connection_is_one_line_exit_2(sshd, onnx_model):
    _, directory = sshd
    config = client_config(directory, free_port(), "closedport")
    result = run_cli("bench", onnx_model, "--remote", "closedport", "--ssh-config", config, "--threads", "1",
                     timeout=60)
    assert_one_line_error(result, 2, "cannot reach closedport")


def test_unreachable_host_fails_within_the_connect_timeout(onnx_model):
    """A black-holed address (TEST-NET-1, never routed): ssh gives up after --connect-timeout."""
    if shutil.which("ssh") is None:
        pytest.skip("no ssh client")
    started = time.monotonic()
    result = run_cli("bench", onnx_model, "--remote", "nobody@192.0.2.1", "--connect-timeout", "2", "--threads", "1",
                     timeout=60)
    elapsed = time.monotonic() - started
    assert_one_line_error(result, 2, "cannot reach nobody@192.0.2.1")
    assert elapsed < 2 + 8, elapsed


def test_bad_remote_arguments_are_one_line(onnx_model, tmp_path):
    assert_one_line_error(run_cli("bench", onnx_model, "--remote=-oProxyCommand=x"), 2, "not a USER@HOST")
    assert_one_line_error(run_cli("bench", onnx_model, "--remote", "a@b", "--ssh-config", tmp_path / "none"), 2,
                          "--ssh-config")
    twin = tmp_path / "remote-mnv2.onnx"
    shutil.copy(onnx_model, twin)
    assert_one_line_error(run_cli("bench", onnx_model, twin, "--remote", "a@b"), 2, "distinct names")
