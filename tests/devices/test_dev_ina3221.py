"""INA3221 discovery and reading on JetPack 4 (iio) and JetPack 5/6 (hwmon) sysfs trees."""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest

from mdnet_deploy.devices import Ina3221Meter, make_meter
from mdnet_deploy.devices.ina3221 import discover_rails
from mdnet_deploy.errors import UnavailableError
from tests.helpers.devices import write


def i2c_device(sysfs: Path, driver: str, addr: str, chip_name: str) -> Path:
    """A device folder under /sys/devices with the bus and driver links real sysfs has."""
    dev = sysfs / "devices" / "platform" / "bus@0" / "i2c-1" / addr
    write(dev / "name", chip_name + "\n")
    for link in (sysfs / "bus" / "i2c" / "devices" / addr, sysfs / "bus" / "i2c" / "drivers" / driver / addr):
        link.parent.mkdir(parents=True, exist_ok=True)
        os.symlink(os.path.relpath(dev, link.parent), link)
    return dev


def jp4_iio(sysfs: Path, rails: list[tuple[str, int]], addr: str = "6-0040") -> None:
    """JetPack 4: rail_name_N + in_powerN_input (mW), plus current/voltage files."""
    iio = i2c_device(sysfs, "ina3221x", addr, "ina3221x") / "iio:device0"
    for n, (name, mw) in enumerate(rails):
        write(iio / f"rail_name_{n}", name + "\n")
        write(iio / f"in_power{n}_input", f"{mw}\n")
        write(iio / f"in_voltage{n}_input", "5000\n")
        write(iio / f"in_current{n}_input", f"{mw // 5}\n")
        write(iio / f"warn_current_limit_{n}", "32760\n")
    write(iio / "name", "ina3221x\n")


def jp5_hwmon(sysfs: Path, rails: list[tuple[str, int, int]], addr: str = "1-0040", hwmon: str = "hwmon3") -> None:
    """JetPack 5/6: inN_label, inN_input (mV), currN_input (mA); channel 7 is the shunt sum."""
    folder = i2c_device(sysfs, "ina3221", addr, "ina3221") / "hwmon" / hwmon
    write(folder / "name", "ina3221\n")
    for n, (label, mv, ma) in enumerate(rails, start=1):
        write(folder / f"in{n}_label", label + "\n")
        write(folder / f"in{n}_input", f"{mv}\n")
        write(folder / f"curr{n}_input", f"{ma}\n")
        write(folder / f"curr{n}_max", "32760\n")
        write(folder / f"in{n + 3}_input", "4000\n")  # shunt voltage channels 4-6: not rails
    write(folder / "in7_label", "sum of shunt voltages\n")
    write(folder / "in7_input", "12000\n")
    write(folder / "curr4_input", "999\n")


def test_jetpack4_nano_iio(sysfs):
    jp4_iio(sysfs, [("POM_5V_IN", 4520), ("POM_5V_GPU", 0), ("POM_5V_CPU", 1078)])
    rails = discover_rails()
    assert [r.name for r in rails] == ["POM_5V_IN", "POM_5V_GPU", "POM_5V_CPU"]
    assert {r.name: r.read_w() for r in rails} == {"POM_5V_IN": 4.52, "POM_5V_GPU": 0.0, "POM_5V_CPU": 1.078}
    meter = Ina3221Meter()
    ok, why = meter.available()
    assert ok, why
    assert meter.scope == "POM_5V_IN (module input rail)"
    assert meter.partial is False


def test_jetpack5_orin_nano_hwmon(sysfs):
    jp5_hwmon(sysfs, [("VDD_IN", 5000, 964), ("VDD_CPU_GPU_CV", 5000, 103), ("VDD_SOC", 5000, 295)], hwmon="hwmon7")
    rails = discover_rails()
    # Channel 7 (sum of shunt voltages) and shunt channels are not rails.
    assert [r.name for r in rails] == ["VDD_IN", "VDD_CPU_GPU_CV", "VDD_SOC"]
    watts = {r.name: r.read_w() for r in rails}
    assert watts["VDD_IN"] == pytest.approx(5.000 * 0.964)
    assert watts["VDD_SOC"] == pytest.approx(5.000 * 0.295)
    meter = Ina3221Meter(sysfs_root=sysfs)
    assert meter.available()[0]
    assert meter.scope.startswith("VDD_IN")


def test_agx_orin_has_no_vdd_in_so_rails_are_summed_and_partial(sysfs):
    jp5_hwmon(sysfs, [("VDD_GPU_SOC", 5000, 600), ("VDD_CPU_CV", 5000, 200), ("VIN_SYS_5V0", 5000, 400)], addr="1-0040")
    jp5_hwmon(sysfs, [("NC", 0, 0), ("VDDQ_VDD2_1V8AO", 5000, 100), ("NC", 0, 0)], addr="1-0041", hwmon="hwmon4")
    rails = discover_rails()
    assert sorted(r.name for r in rails) == ["VDDQ_VDD2_1V8AO", "VDD_CPU_CV", "VDD_GPU_SOC", "VIN_SYS_5V0"]
    meter = Ina3221Meter()
    assert meter.available()[0]
    assert meter.partial is True
    assert "partial" in meter.scope
    meter.start()
    time.sleep(0.05)
    trace = meter.stop()
    # 5 V x (0.6 + 0.2 + 0.4 + 0.1) A
    assert trace.avg_power_w == pytest.approx(6.5)
    assert trace.partial is True
    assert "NC" not in trace.rails


def test_meter_integrates_constant_rails_over_the_window(sysfs):
    jp4_iio(sysfs, [("POM_5V_IN", 4520), ("POM_5V_GPU", 0), ("POM_5V_CPU", 1078)])
    meter = make_meter("ina3221", "jetson")
    meter.start()
    time.sleep(0.15)
    trace = meter.stop()
    assert trace.meter == "ina3221" and trace.method == "integrated samples"
    assert trace.samples >= 2 and trace.sample_rate_hz is not None
    assert trace.joules == pytest.approx(4.52 * trace.window_s)
    assert trace.rails == pytest.approx({"POM_5V_IN": 4.52, "POM_5V_GPU": 0.0, "POM_5V_CPU": 1.078})


def test_no_monitors_is_unavailable(sysfs):
    meter = Ina3221Meter()
    ok, why = meter.available()
    assert not ok and "INA3221" in why and "csv:FILE" in why
    with pytest.raises(UnavailableError) as err:
        make_meter("ina3221", "jetson")
    assert "\n" not in str(err.value)
