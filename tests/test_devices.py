from pathlib import Path

import pytest

import devices

pytestmark = pytest.mark.runtime  # torch-free: also run where only edgecnn[runtime] is installed

FIXTURES = Path(__file__).parent / "fixtures" / "devices"


def test_raspberry_pi_is_recognised_from_the_device_tree():
    profile = devices.detect(str(FIXTURES / "pi5"))
    assert profile.kind == "raspberry-pi" and profile.model == "Raspberry Pi 5 Model B Rev 1.0"
    assert profile.camera == "picamera2" and "asimddp" in profile.isa_flags
    assert profile.preferred_backends[0] == "litert"


def test_jetson_is_recognised_from_nv_tegra_release():
    profile = devices.detect(str(FIXTURES / "jetson"))
    assert profile.kind == "jetson" and "Orin" in profile.model and profile.camera == "nvargus"


def test_desktop_reports_cpu_name_and_flags():
    profile = devices.detect(str(FIXTURES / "desktop"))
    assert profile.kind == "desktop" and "Xeon" in profile.model
    assert {"avx512f", "avx512_vnni", "amx_int8"} <= set(profile.isa_flags)
    assert profile.to_dict()["kind"] == "desktop"


def test_int8_saturation_is_expected_on_x86_without_vnni_only():
    from devices.profile import DeviceProfile

    def profile(machine, flags):
        return DeviceProfile("desktop", "cpu", machine, 2, flags)

    assert profile("x86_64", ["avx2"]).int8_dot_products_saturate
    assert not profile("x86_64", ["avx2", "avx512f", "avx512_vnni"]).int8_dot_products_saturate
    assert not profile("x86_64", ["avx2", "avx_vnni"]).int8_dot_products_saturate
    assert not profile("aarch64", ["asimd", "asimddp"]).int8_dot_products_saturate
