"""`edgecnn deploy` to an arm64 device: the namespaced systemd of tests/namespaced_systemd.py
whose python3 is Debian's arm64 Python 3.11 (devices/emulated_pi's sysroot, run by
qemu-user through a binfmt_misc entry of the test's own), reached through the same ssh
path as any device. The deploy installs edgecnn[runtime] there from a wheel of this
checkout and a wheelhouse of aarch64 wheels (a device without internet), and the service
it starts makes the same detections as x86 on the same images."""
import fcntl
import json
import shutil
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

import pytest

from conftest import run_cli
from namespaced_systemd import ARM64_CPU, arm64_binfmt, free_port, start_ssh_device, usable

from edgecnn.assets import RUNTIME_FP32

DEVICE_ROOT = "/srv/edgecnn"
SCENES = 6  # demo scenes the device's camera (a folder, looped) shows
WORKDIR = Path(tempfile.gettempdir()) / "edgecnn-emulated-pi-device"  # the sysroot and wheels, kept between runs


def _wheelhouse(wheel: Path, workdir: Path) -> Path:
    """The aarch64 CPython 3.11 wheels of edgecnn[runtime]'s dependencies, at this host's
    versions (as devices/emulated_pi pins them), fetched by the host's pip once per set of
    pins and requirements."""
    from devices.emulated_pi.checks import host_environment
    from devices.emulated_pi.install import target_options, wheel_requires
    from devices.emulated_pi.prerequisites import host_versions

    pins = host_versions(sys.executable, host_environment(Path(__file__).resolve().parents[1]))
    wanted = json.dumps({"pins": pins, "requires": wheel_requires(wheel)}, sort_keys=True)
    house = workdir / "wheelhouse"
    stamp = workdir / "wheelhouse.json"
    if stamp.is_file() and stamp.read_text() == wanted and any(house.glob("*.whl")):
        return house
    shutil.rmtree(house, ignore_errors=True)
    house.mkdir(parents=True)
    (workdir / "pins.txt").write_text("".join(f"{name}=={version}\n" for name, version in sorted(pins.items())))
    fetched = subprocess.run([sys.executable, "-m", "pip", "download", "-q", "--disable-pip-version-check", "-d",
                              str(house), *target_options(), "-c", str(workdir / "pins.txt"),
                              f"edgecnn[runtime] @ {wheel.as_uri()}"], capture_output=True, text=True, timeout=1200)
    if fetched.returncode != 0:
        pytest.fail(f"pip download of the aarch64 wheels failed: {fetched.stderr.strip().splitlines()[-1:]}")
    for own in house.glob("edgecnn-*.whl"):  # the deploy sends the edgecnn wheel itself (--wheel)
        own.unlink()
    stamp.write_text(wanted)
    return house


class ArmDevice:
    def __init__(self, ssh_device, wheel, wheelhouse):
        self.ssh, self.wheel, self.wheelhouse = ssh_device, wheel, wheelhouse
        self.systemd = ssh_device.systemd

    def deploy(self, *args, timeout=1500):
        return run_cli("deploy", "dev", "--ssh-config", self.ssh.ssh_config, "--python", "/usr/bin/python3", "--root",
                       DEVICE_ROOT, *args, timeout=timeout)

    def srv(self, *parts):
        return self.systemd.srv.joinpath(*parts)


@pytest.fixture(scope="module")
def arm_device(tmp_path_factory):
    from devices.emulated_pi.steps import Failed, Missing
    from devices.emulated_pi.sysroot import Layout, debian_mirror, ensure_qemu, ensure_sysroot, write_board_files

    from edgecnn.deploy.install_source import built_wheel

    reason = usable()
    if reason is None and (shutil.which("sshd") is None and not Path("/usr/sbin/sshd").exists()):
        reason = "needs the OpenSSH server and client (apt-get install -y openssh-server)"
    if reason is None and "binfmt_misc" not in Path("/proc/filesystems").read_text():
        reason = "needs the kernel's binfmt_misc"
    if reason is not None:
        pytest.skip(f"an arm64 namespaced systemd device {reason}")
    layout = Layout(WORKDIR)
    WORKDIR.mkdir(parents=True, exist_ok=True)
    with open(WORKDIR / ".lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # one build of the sysroot at a time
        try:
            qemu = ensure_qemu(layout, shutil.which("qemu-aarch64-static"), None)
            ensure_sysroot(layout, debian_mirror(), None)
            write_board_files(layout, ARM64_CPU)
        except (Missing, Failed) as exc:
            pytest.fail(f"the arm64 userland: {exc}")
        wheel, _ = built_wheel(print)
        wheelhouse = _wheelhouse(wheel, WORKDIR)
    with arm64_binfmt(qemu):
        ssh_device = start_ssh_device(tmp_path_factory.mktemp("arm-device"), arm64_sysroot=layout.root)
        try:
            yield ArmDevice(ssh_device, wheel, wheelhouse)
        finally:
            ssh_device.stop()


def _scenes(folder: Path) -> None:
    import cv2

    from edgecnn.runtime.demo import DemoCapture

    folder.mkdir(parents=True)
    capture = DemoCapture(size=256, seed=5, fps=2.0, objects=3)
    for t in range(SCENES):
        assert cv2.imwrite(str(folder / f"scene{t:02d}.png"), capture.scene(t))


def _records(text):
    return [json.loads(line) for line in text.splitlines() if line.strip()]


@pytest.mark.slow(150)
def test_deploy_to_an_aarch64_device_serves_the_detections_x86_makes(arm_device, tmp_path):
    """The first deploy to the arm64 device (a venv made there by its own arm64 Python and
    pip, offline, from the wheel and the wheelhouse), its /healthz, its service's records of
    every scene against x86's records of the same files (box IoU and score within the
    parity tolerances), the device's machine, and --remove leaving it as before. (An
    update and a rollback are the x86 device's tests: the same code on the desktop, and
    two more service starts under emulation here.)"""
    from devices.emulated_pi.compare import compare_records

    _scenes(tmp_path / "scenes")
    shutil.copytree(tmp_path / "scenes", arm_device.srv("scenes"))
    reference = tmp_path / "x86.jsonl"
    # the fp32 file: its outputs on ARM are x86's within float rounding, so the detections
    # meet the parity tolerances (an int8 file's may differ by a quantization step, which
    # tests/test_emulated_pi.py checks on the raw outputs)
    run_cli("run", RUNTIME_FP32, "--backend", "litert", "--source", tmp_path / "scenes", "--json", reference,
            check=True)

    port = free_port()
    config = tmp_path / "config" / "pi.yaml"
    config.parent.mkdir()
    shutil.copy(RUNTIME_FP32, config.parent / RUNTIME_FP32.name)
    config.write_text(f"model: {{path: {RUNTIME_FP32.name}, backend: litert}}\nhealth: 127.0.0.1:{port}\n"
                      "cameras:\n  front: {source: '/srv/scenes?loop=1', json: front.jsonl}\n")
    started = time.monotonic()
    result = arm_device.deploy("--config", config, "--wheel", arm_device.wheel, "--wheelhouse", arm_device.wheelhouse,
                               "--timeout", "600", "--start-timeout", "600")
    first_deploy_s = time.monotonic() - started
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.strip().splitlines()[-1].split()[:2] == ["dev", "deployed"]
    assert "installing" in result.stdout  # a venv made on the device
    machine = arm_device.systemd.enter(f"{DEVICE_ROOT}/current/venv/bin/python", "-c",
                                       "import platform; print(platform.machine())", timeout=120)
    assert machine.stdout.strip() == "aarch64", machine.stdout + machine.stderr

    def first_pass():
        text = arm_device.systemd.enter("cat", "/var/lib/edgecnn/front.jsonl").stdout
        records = _records(text)
        return records[:SCENES] if len(records) >= SCENES else None

    deadline = time.monotonic() + 300
    device_records = first_pass()
    while device_records is None and time.monotonic() < deadline:
        time.sleep(1)
        device_records = first_pass()
    assert device_records, "the service wrote fewer records than scenes in 300 s"
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=10) as response:
        health = json.loads(response.read())
    assert response.status == 200 and health["cameras"]["front"]["live"], health
    x86 = _records(reference.read_text())
    assert [r["frame"] for r in device_records] == [r["frame"] for r in x86] == list(range(SCENES))
    agreement = compare_records(x86, device_records)
    assert agreement["agree"], agreement["problems"]
    assert agreement["frames_compared"] == SCENES and agreement["objects_paired"] >= SCENES
    assert agreement["min_iou"] >= 0.99 and agreement["max_score_diff"] <= 0.01

    print(f"arm64 device: first deploy {first_deploy_s:.1f} s; parity {json.dumps(agreement)[:300]}")

    result = arm_device.deploy("--remove")
    assert result.returncode == 0 and "removed" in result.stdout, result.stdout + result.stderr
    assert arm_device.systemd.enter("test", "-e", DEVICE_ROOT).returncode != 0
    assert arm_device.systemd.enter("id", "edgecnn").returncode != 0
