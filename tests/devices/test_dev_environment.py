"""Environment capture against fake /proc, /sys and /etc trees and stand-in commands."""

from __future__ import annotations

import platform

import pytest

from mdnet_deploy.devices import capture_environment, detect_kind, read_temperatures
from mdnet_deploy.devices.environment import (
    cpu_model,
    decode_throttled,
    detect_emulation,
    parse_l4t_release,
    parse_nvpmodel,
)
from tests.helpers.devices import executable, write

ORIN_CPUINFO = "".join(
    f"processor\t: {i}\nBogoMIPS\t: 62.50\nFeatures\t: fp asimd evtstrm aes\nCPU implementer\t: 0x41\n"
    f"CPU architecture: 8\nCPU variant\t: 0x1\nCPU part\t: 0xd42\nCPU revision\t: 1\n\n"
    for i in range(6)
)
PI5_CPUINFO = (
    "".join(
        f"processor\t: {i}\nBogoMIPS\t: 108.00\nFeatures\t: fp asimd\nCPU implementer\t: 0x41\nCPU part\t: 0xd0b\n\n"
        for i in range(4)
    )
    + "Revision\t: d04170\nSerial\t\t: 0123\nModel\t\t: Raspberry Pi 5 Model B Rev 1.0\n"
)
X86_CPUINFO = "processor\t: 0\nvendor_id\t: GenuineIntel\nmodel name\t: Intel(R) Core(TM) i7-8700 CPU @ 3.20GHz\nflags\t\t: fpu sse\n"


@pytest.fixture
def roots(tmp_path, monkeypatch):
    paths = {name: tmp_path / name for name in ("sys", "proc", "etc")}
    for name, env in (("sys", "SYSFS"), ("proc", "PROC"), ("etc", "ETC")):
        paths[name].mkdir()
        monkeypatch.setenv(f"MDNET_DEPLOY_{env}_ROOT", str(paths[name]))
    return paths


def thermal(sysfs, zones):
    for n, (kind, milli) in enumerate(zones):
        write(sysfs / "class" / "thermal" / f"thermal_zone{n}" / "type", kind + "\n")
        write(sysfs / "class" / "thermal" / f"thermal_zone{n}" / "temp", f"{milli}\n")


def test_jetson_environment(roots, tmp_path, monkeypatch):
    write(roots["proc"] / "device-tree" / "model", "NVIDIA Jetson Orin Nano Developer Kit\x00")
    write(roots["proc"] / "cpuinfo", ORIN_CPUINFO)
    for policy in ("policy0", "policy4"):
        write(roots["sys"] / "devices" / "system" / "cpu" / "cpufreq" / policy / "scaling_governor", "schedutil\n")
    thermal(roots["sys"], [("cpu-thermal", 50031), ("gpu-thermal", 49031), ("tj-thermal", 50250), ("absent", -256000)])
    write(
        roots["etc"] / "nv_tegra_release",
        "# R36 (release), REVISION: 3.0, GCID: 36191598, BOARD: generic, EABI: aarch64, DATE: Mon May  6 17:34:21 UTC 2024\n",
    )
    nvpmodel = executable(
        tmp_path / "bin" / "nvpmodel",
        "import sys\nassert sys.argv[1:] == ['-q']\nprint('NV Power Mode: 15W')\nprint('0')\n",
    )
    monkeypatch.setenv("MDNET_DEPLOY_NVPMODEL", str(nvpmodel))

    env = capture_environment("jetson")
    assert env["kind"] == "jetson"
    assert env["device_model"] == "NVIDIA Jetson Orin Nano Developer Kit"
    assert env["cpu_model"] == "Cortex-A78AE"
    assert env["cpu_governor"] == "schedutil"
    assert env["temperatures_c"] == {"cpu-thermal": 50.031, "gpu-thermal": 49.031, "tj-thermal": 50.25}
    assert env["l4t_release"] == "36.3.0"
    assert env["power_mode"] == {"name": "15W", "id": 0}
    assert env["python"] == platform.python_version()
    assert env["numpy"]
    assert detect_kind() == "jetson"


def test_rpi_environment(roots, tmp_path, monkeypatch):
    write(roots["proc"] / "device-tree" / "model", "Raspberry Pi 5 Model B Rev 1.0\x00")
    write(roots["proc"] / "cpuinfo", PI5_CPUINFO)
    write(roots["sys"] / "devices" / "system" / "cpu" / "cpufreq" / "policy0" / "scaling_governor", "ondemand\n")
    thermal(roots["sys"], [("cpu-thermal", 61250)])
    vcgencmd = executable(
        tmp_path / "bin" / "vcgencmd",
        "import sys\nassert sys.argv[1:] == ['get_throttled']\nprint('throttled=0x50005')\n",
    )
    monkeypatch.setenv("MDNET_DEPLOY_VCGENCMD", str(vcgencmd))

    env = capture_environment("rpi")
    assert env["device_model"] == "Raspberry Pi 5 Model B Rev 1.0"
    assert env["cpu_model"] == "Cortex-A76"
    assert env["cpu_governor"] == "ondemand"
    assert env["temperatures_c"] == {"cpu-thermal": 61.25}
    assert env["throttled"] == {
        "raw": "0x50005",
        "flags": ["under_voltage", "throttled", "under_voltage_occurred", "throttling_occurred"],
    }
    assert detect_kind() == "rpi"


def test_missing_everything_gives_none_not_errors(roots):
    for kind in ("jetson", "rpi", "host", "cuda"):
        env = capture_environment(kind)
        assert env["device_model"] is None and env["cpu_model"] is None
        assert env["cpu_governor"] is None and env["temperatures_c"] is None
    assert capture_environment("jetson")["power_mode"] is None
    assert capture_environment("jetson")["l4t_release"] is None
    assert capture_environment("rpi")["throttled"] is None
    assert read_temperatures() == {}


def test_mixed_governors_and_duplicate_zone_types(roots):
    base = roots["sys"] / "devices" / "system" / "cpu" / "cpufreq"
    write(base / "policy0" / "scaling_governor", "schedutil\n")
    write(base / "policy4" / "scaling_governor", "performance\n")
    thermal(roots["sys"], [("cpu", 40000), ("cpu", 41000)])
    env = capture_environment("host")
    assert env["cpu_governor"] == {"policy0": "schedutil", "policy4": "performance"}
    assert env["temperatures_c"] == {"cpu": 40.0, "cpu.thermal_zone1": 41.0}


def test_parsers():
    assert (
        parse_l4t_release("# R32 (release), REVISION: 7.1, GCID: 29818004, BOARD: t210ref, EABI: aarch64") == "32.7.1"
    )
    assert parse_l4t_release("garbage") is None
    assert parse_nvpmodel("NV Fan Mode:quiet\nNV Power Mode: MAXN\n0\n") == {"name": "MAXN", "id": 0}
    assert parse_nvpmodel("") is None
    assert decode_throttled("throttled=0x0") == {"raw": "0x0", "flags": []}
    assert decode_throttled("error") is None
    assert cpu_model(X86_CPUINFO) == "Intel(R) Core(TM) i7-8700 CPU @ 3.20GHz"
    big_little = "CPU implementer : 0x41\nCPU part : 0xd05\n\nCPU implementer : 0x41\nCPU part : 0xd05\n\nCPU implementer : 0x41\nCPU part : 0xd0b\n"
    assert cpu_model(big_little) == "2x Cortex-A55 + 1x Cortex-A76"


def test_emulation_signals():
    assert detect_emulation(PI5_CPUINFO, "aarch64", {}) == (False, None)
    emulated, why = detect_emulation(X86_CPUINFO, "aarch64", {})
    assert emulated and "x86" in why
    assert detect_emulation("processor : 0\n", "aarch64", {})[0] is True
    assert detect_emulation(X86_CPUINFO, "x86_64", {}) == (False, None)
    assert detect_emulation(PI5_CPUINFO, "aarch64", {"QEMU_LD_PREFIX": "/usr/aarch64-linux-gnu"})[0] is True
    assert detect_emulation(X86_CPUINFO, "aarch64", {"MDNET_DEPLOY_EMULATED": "0"})[0] is False


def test_emulation_via_binfmt_handler(roots):
    assert detect_emulation(PI5_CPUINFO, "aarch64", {}) == (False, None)
    write(
        roots["proc"] / "sys" / "fs" / "binfmt_misc" / "qemu-aarch64",
        "enabled\ninterpreter /usr/bin/qemu-aarch64-static\n",
    )
    emulated, why = detect_emulation(PI5_CPUINFO, "aarch64", {})
    assert emulated and "binfmt" in why
    # The same handler on an x86 host says nothing about an x86 process.
    assert detect_emulation(X86_CPUINFO, "x86_64", {}) == (False, None)


def test_capture_records_emulation(roots, monkeypatch):
    write(roots["proc"] / "cpuinfo", X86_CPUINFO)
    monkeypatch.setattr(platform, "machine", lambda: "aarch64")
    env = capture_environment("rpi")
    assert env["emulated"] is True and env["emulation_hint"]
