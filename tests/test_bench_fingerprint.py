"""Device fingerprint and throttling judgement, on fixture filesystem trees."""
from pathlib import Path

import pytest

from devices.fingerprint import arm_cores, default_name, fingerprint, thermal_snapshot, throttling_seen

pytestmark = pytest.mark.runtime  # torch-free: also run where only edgecnn[runtime] is installed

FIXTURES = Path(__file__).parent / "fixtures" / "devices"


def test_pi_fingerprint_names_the_board_and_its_isa():
    facts = fingerprint(str(FIXTURES / "pi5"))
    assert facts["kind"] == "raspberry-pi" and facts["name"] == "Raspberry Pi 5 Model B Rev 1.0"
    assert "asimddp" in facts["isa_flags"]
    assert facts["python"] and "numpy" in facts["versions"] and facts["versions"]["numpy"]
    assert len(facts["id"]) == 12


def test_desktop_fingerprint_reads_os_release_and_cpu():
    facts = fingerprint(str(FIXTURES / "desktop"))
    assert facts["os"] == "Ubuntu 24.04.1 LTS" and "Xeon" in facts["cpu"]
    assert facts["name"] == default_name(facts) and facts["name"].endswith("cores)")
    assert fingerprint(str(FIXTURES / "desktop"), name="lab-box")["name"] == "lab-box"
    assert fingerprint(str(FIXTURES / "desktop"))["id"] != fingerprint(str(FIXTURES / "pi5"))["id"]


def test_pi_thermal_snapshot_reads_temperature_clocks_and_firmware_bits():
    snap = thermal_snapshot(str(FIXTURES / "pi5"))
    assert snap["temps"] == {"cpu-thermal": {"c": 54.3, "passive_trip_c": None}}
    assert snap["mhz"] == [2400.0] * 4 and snap["max_mhz"] == 2400.0
    assert snap["pi_throttled"] == 0
    assert throttling_seen(snap, snap) == []


def test_jetson_zones_with_the_same_type_are_kept_apart():
    snap = thermal_snapshot(str(FIXTURES / "jetson"))
    assert set(snap["temps"]) == {"cpu-thermal", "cpu-thermal-1"}
    assert snap["temps"]["cpu-thermal"] == {"c": 47.5, "passive_trip_c": 99.0}
    assert len(snap["mhz"]) == 6 and "pi_throttled" not in snap


def test_unreadable_nodes_give_an_empty_snapshot(tmp_path):
    assert thermal_snapshot(str(tmp_path)) == {"temps": {}, "mhz": [], "max_mhz": None}
    assert throttling_seen({}, {}) == []


def test_throttling_is_seen_from_clock_drop_trip_point_and_firmware_bits():
    cool = {"temps": {"cpu": {"c": 50.0, "passive_trip_c": 85.0}}, "mhz": [2400.0, 2400.0]}
    slowed = {"temps": {"cpu": {"c": 60.0, "passive_trip_c": 85.0}}, "mhz": [1500.0, 1500.0]}
    hot = {"temps": {"cpu": {"c": 86.0, "passive_trip_c": 85.0}}, "mhz": [2400.0, 2300.0]}
    assert throttling_seen(cool, cool) == []
    assert "fell from 2400 to 1500 MHz" in throttling_seen(cool, slowed)[0]
    assert "throttle point" in throttling_seen(cool, hot)[0]
    # Pi firmware: bit 2 = throttled now; bit 18 = throttled since boot (new during the run)
    assert throttling_seen({"pi_throttled": 0}, {"pi_throttled": 0x4})
    assert throttling_seen({"pi_throttled": 0}, {"pi_throttled": 0x40000})
    assert throttling_seen({"pi_throttled": 0x40000}, {"pi_throttled": 0x40000}) == []
    assert throttling_seen({"pi_throttled": 0}, {"pi_throttled": 0x1}) == []  # under-voltage alone


def test_arm_cpu_is_named_from_its_part_number():
    facts = fingerprint(str(FIXTURES / "pi4"))
    assert facts["kind"] == "raspberry-pi" and facts["board"] == "Raspberry Pi 4 Model B Rev 1.5"
    assert facts["cpu"] == "4x Cortex-A72" and facts["isa_flags"] == ["asimd"]


def test_big_little_cores_are_listed_big_first():
    def core(part):
        return f"processor\t: 0\nCPU implementer\t: 0x41\nCPU part\t: {part}\n\n"

    text = core("0xd05") * 4 + core("0xd0b") * 2 + core("0xfff")
    assert arm_cores(text) == "1x ARM part 0xfff + 2x Cortex-A76 + 4x Cortex-A55"
    assert arm_cores("model name\t: Intel(R) Xeon(R)\n") is None
